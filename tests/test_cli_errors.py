"""Bad input to the CLI: one line on stderr, a non-zero exit, no traceback."""

import subprocess
import sys

import pytest


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "python_jobs.cli", *args], capture_output=True, text=True, timeout=300)


def test_missing_interactions_file(tmp_path):
    result = _cli("evaluate", "--interactions", str(tmp_path / "nope.csv"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"encore-recs: error: {tmp_path / 'nope.csv'}: no such file; pass --interactions PATH to a CSV or Parquet file"]


@pytest.mark.parametrize(
    "content, args, message",
    [
        ("user,item\n1,2\n", ["--user-col", "uid", "--item-col", "item"], "no column uid; columns are user, item"),
        ("uid,listing_id,w\n1,2,abc\n1,3,2\n", ["--weight-col", "w"], "non-numeric value 'abc'"),
        ("uid,listing_id\n1,2\n", [], "fewer than two usable interactions"),
    ],
)
def test_bad_interactions_files(tmp_path, content, args, message):
    path = tmp_path / "interactions.csv"
    path.write_text(content)
    result = _cli("evaluate", "--interactions", str(path), *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len([line for line in lines if line.startswith("encore-recs: error:")]) == 1
    assert message in lines[-1]
    assert "Traceback" not in result.stderr


def test_bad_flag_value():
    result = _cli("evaluate", "--interactions", "x.csv", "--k", "zero")
    assert result.returncode == 2
    assert "invalid int value" in result.stderr


def test_a_seed_generate_cannot_use_is_one_line():
    result = _cli("generate", "--users", "10", "--seed", "-1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "encore-recs: error: --seed -1 is out of range; use 0 to 4294967295"


@pytest.mark.parametrize("where, reason", [("/dev/full", "No space left on device"), ("folder", "is a folder")])
def test_a_json_path_that_cannot_be_written_fails_before_the_evaluation(tmp_path, where, reason):
    """D6: --json /dev/full used to fail after the whole evaluation; now it fails before any model is fitted."""
    path = tmp_path / "interactions.csv"
    path.write_text("uid,listing_id\n" + "".join(f"{u},{i}\n" for u in range(1, 30) for i in range(1, 8)))
    target = where if where.startswith("/") else str(tmp_path)
    result = _cli("evaluate", "--interactions", str(path), "--json", target)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert reason in result.stderr.strip().splitlines()[-1]
    assert "ALS engine" not in result.stdout and "nDCG" not in result.stdout  # nothing was evaluated
