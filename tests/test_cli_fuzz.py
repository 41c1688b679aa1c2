"""Every subcommand, driven with generated bad arguments and environment values, fails the same way:
a non-zero exit, exactly one `encore-recs: error:` line naming the bad value, no traceback, nothing written
outside the state folder. In-process (fast, many examples), plus a few real processes for the whole path."""

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from python_jobs.cli import main

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# text a user or a script could type, without quotes or backslashes (so the value's repr is the value)
plain = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="'\"\\"), min_size=1, max_size=60)
path_like = st.sampled_from(["../../etc", "/etc/passwd", "a/b", "..", ".", "~", "runs/../x", "C:\\x"]).filter(
    lambda s: "\\" not in s)
over_long = st.text(st.sampled_from("abcxyz0123/-._"), min_size=100, max_size=400)
bad_run_ids = st.one_of(plain, path_like, over_long).filter(
    lambda s: not re.fullmatch(r"\d{8}T\d{6}Z-[a-z0-9]{1,16}", s) and not s.startswith("-"))


def _parses(kind, text: str) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


# Python's int() and float() take Unicode digits, underscores and spaces: only what they refuse is "not a number"
not_integers = st.one_of(plain.filter(lambda s: not _parses(int, s)),
                         st.sampled_from(["1.5", "1e3", "ten", "0x10", "\udcff"]))
not_numbers = st.one_of(plain.filter(lambda s: not _parses(float, s)),
                        st.sampled_from(["nan", "inf", "-1", "-0.5", "1e309", "\udcff"]))


def _snapshot(*folders: Path) -> set[str]:
    return {str(p) for folder in folders for p in folder.iterdir()}


def _invoke(argv: list[str], env: dict[str, str], tmp_path: Path) -> tuple[int, list[str]]:
    state = tmp_path / "state"
    before = _snapshot(PROJECT, tmp_path)
    saved = dict(os.environ)
    os.environ.update({"ENCORE_STATE_DIR": str(state), **env})
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert _snapshot(PROJECT, tmp_path) - {str(state)} <= before, "wrote outside the state folder"
    return code, err.getvalue().strip().splitlines()


def _one_error_naming(code, lines, value: str) -> None:
    assert code not in (0, None), lines
    assert len(lines) == 1 and lines[0].startswith("encore-recs: error: "), lines
    assert "Traceback" not in lines[0]
    shown = repr(value)[1:-1][:40]
    assert shown in lines[0], (shown, lines[0])


@EXAMPLES
@given(run_id=bad_run_ids, command=st.sampled_from(["run", "step"]))
def test_bad_run_ids(tmp_path, run_id, command):
    argv = ["run", "--run-id", run_id] if command == "run" else ["step", "train", "--run-id", run_id]
    _one_error_naming(*_invoke(argv, {}, tmp_path), run_id)


@EXAMPLES
@given(stage=plain.filter(lambda s: not s.startswith("-")), flag=st.from_regex(r"--[a-z]{3,12}", fullmatch=True),
       command=st.sampled_from(["up", "down", "env", "generate", "run", "expectations", "evaluate"]))
def test_unknown_stages_and_flags(tmp_path, stage, flag, command):
    from orchestration.stages import NAMES

    if stage not in NAMES:
        _one_error_naming(*_invoke(["step", stage, "--run-id", "20261124T000000Z-x"], {}, tmp_path), stage)
    known = {"--cluster", "--users", "--seed", "--dirty", "--run", "--from", "--help", "--interactions", "--json",
             "--sep", "--user", "--item", "--weight", "--k", "--test", "--no", "--header", "--time", "--text"}
    if not any(k.startswith(flag) or flag.startswith(k) for k in known):
        _one_error_naming(*_invoke([command, flag], {}, tmp_path), flag)


@EXAMPLES
@given(scope=plain.filter(lambda s: not s.startswith("-") and not set(map(str.strip, s.split(","))) <= {"read", "events"}),
       name=plain.filter(lambda s: not s.startswith("-") and not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", s)),
       key_id=plain.filter(lambda s: not s.startswith("-")))
def test_bad_api_key_commands(tmp_path, scope, name, key_id):
    _one_error_naming(*_invoke(["keys", "create", "--scope", scope], {}, tmp_path), scope)
    _one_error_naming(*_invoke(["keys", "create", "--scope", "read", "--name", name], {}, tmp_path), name)
    _one_error_naming(*_invoke(["keys", "revoke", key_id], {}, tmp_path), key_id)


@EXAMPLES
@given(users=st.one_of(st.integers(max_value=9), st.integers(min_value=10_000_001)),
       rate=st.one_of(st.floats(allow_nan=True, allow_infinity=True).filter(lambda r: not 0 <= r <= 0.9)),
       seed=st.one_of(st.integers(max_value=-1), st.integers(min_value=2**32)))
def test_bad_numbers_for_generate(tmp_path, users, rate, seed):
    _one_error_naming(*_invoke(["generate", f"--users={users}"], {}, tmp_path), str(users))
    _one_error_naming(*_invoke(["generate", f"--dirty-rate={rate}"], {}, tmp_path), str(rate))
    _one_error_naming(*_invoke(["generate", f"--seed={seed}"], {}, tmp_path), str(seed))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(users=st.integers(10, 40), seed=st.integers(0, 2**32 - 1), rate=st.floats(0, 0.9), events=st.booleans())
@example(users=20, seed=3, rate=0.05, events=True)
def test_generate_flags_against_a_running_stack(stack, no_events_left, users, seed, rate, events):
    """Any flags in range: generate writes the raw tables (with the dirty rate's extra users) and the app's events,
    no line on stderr. A dirty rate with events on used to end in a traceback after the raw tables were written."""
    argv = ["generate", f"--users={users}", f"--seed={seed}", f"--dirty-rate={rate!r}"]
    argv += [] if events else ["--no-events"]
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(argv)
    assert code == 0 and not err.getvalue(), err.getvalue()
    assert out.getvalue().startswith(f"generated users={users + (max(1, round(rate * users / 2)) if rate else 0)},")
    assert ("events=" in out.getvalue()) is events


@EXAMPLES
@given(k=st.integers(max_value=0), fraction=st.floats().filter(lambda f: not 0 < f < 1), name=plain)
def test_bad_evaluate_arguments(tmp_path, k, fraction, name):
    data = tmp_path / "ratings.csv"
    data.write_text("uid,listing_id\n1,2\n")
    base = ["evaluate", "--interactions", str(data)]
    _one_error_naming(*_invoke([*base, f"--k={k}"], {}, tmp_path), str(k))
    _one_error_naming(*_invoke([*base, f"--test-fraction={fraction}"], {}, tmp_path), str(fraction))
    missing = str(tmp_path / "missing" / name.replace("/", "_"))
    _one_error_naming(*_invoke(["evaluate", "--interactions", missing], {}, tmp_path), missing)
    _one_error_naming(*_invoke(["load", "--table", "bids", "--csv", missing], {}, tmp_path), missing)


@EXAMPLES
@given(bucket=plain.filter(lambda s: not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", s) and not s.startswith("-")),
       flag=st.sampled_from(["--artifact-bucket", "--log-bucket", "--dags-bucket"]))
def test_bad_bucket_names_for_deploy(tmp_path, bucket, flag):
    """Refused before anything is built or uploaded."""
    argv = {"--artifact-bucket": "acme-artifacts", "--log-bucket": "acme-logs", "--dags-bucket": "acme-mwaa",
            flag: bucket}
    _one_error_naming(*_invoke(["deploy", *[f"{k}={v}" for k, v in argv.items()]], {}, tmp_path), bucket)


INT_VARIABLES = ["ENCORE_TOP_N", "ENCORE_PG_PORT", "ENCORE_S3_PORT", "ENCORE_KEEP_RUNS", "ENCORE_SEED",
                 "ENCORE_EVAL_USERS", "ENCORE_SHUFFLE_PARTITIONS", "ENCORE_URL_EXPIRY_SECONDS",
                 "ENCORE_SPARK_MASTER_PORT", "ENCORE_SPARK_THRIFT_PORT", "ENCORE_EVENTS_RATE_PER_KEY",
                 "ENCORE_EVENTS_BURST_PER_KEY", "ENCORE_EVENTS_SPOOL_MAX_MB"]
NUMBER_VARIABLES = ["ENCORE_MAX_REJECT_RATE", "ENCORE_COUNT_WEIGHT", "ENCORE_AMOUNT_WEIGHT",
                    "ENCORE_POPULARITY_HALF_LIFE_DAYS", "ENCORE_MIN_BIDS_FOR_ALS"]
WORD_VARIABLES = ["ENCORE_TUNING_GRID", "ENCORE_METASTORE_DB", "ENCORE_DBT_SPARK_TARGET", "ENCORE_SPARK_MASTER",
                  "ENCORE_SPARK_DRIVER_MEMORY", "ENCORE_LAKE_BUCKET", "ENCORE_PUBLISH_BUCKET", "ENCORE_S3_ENDPOINT",
                  "ENCORE_TUNE"]


@EXAMPLES
@given(name=st.sampled_from(INT_VARIABLES), value=st.one_of(not_integers, st.integers(min_value=10**10).map(str),
                                                             st.integers(max_value=-1).map(str)),
       command=st.sampled_from(["run", "up", "generate", "env"]))
def test_malformed_integer_settings(tmp_path, name, value, command):
    _one_error_naming(*_invoke([command], {name: value}, tmp_path), value)


@EXAMPLES
@given(name=st.sampled_from(NUMBER_VARIABLES),
       value=not_numbers,
       command=st.sampled_from(["run", "up", "generate"]))
def test_malformed_number_settings(tmp_path, name, value, command):
    _one_error_naming(*_invoke([command], {name: value}, tmp_path), value)


@EXAMPLES
@given(name=st.sampled_from(WORD_VARIABLES),
       value=st.one_of(st.sampled_from(["Bad Name!", "rank=0x", "sp@rk", "12 pigeons", "ftp://x", "-"]),
                       plain.filter(lambda s: " " in s or "!" in s)),
       command=st.sampled_from(["run", "up", "generate"]))
def test_malformed_word_settings(tmp_path, name, value, command):
    _one_error_naming(*_invoke([command], {name: value}, tmp_path), value)


@pytest.mark.parametrize("argv,env,named", [
    (["run", "--run-id", "../../etc"], {}, "../../etc"),
    (["step", "nope", "--run-id", "20261124T000000Z-x"], {}, "nope"),
    (["generate", "--users", "ten"], {}, "ten"),
    (["run"], {"ENCORE_TOP_N": "\udcff"}, "\\udcff"),
    (["up", "--bogus"], {}, "--bogus"),
])
def test_a_real_process_prints_one_line_and_writes_nothing_outside_state(tmp_path, argv, env, named):
    before = _snapshot(PROJECT)
    full_env = {**os.environ, "ENCORE_STATE_DIR": str(tmp_path / "state"), **env}
    result = subprocess.run([sys.executable, "-m", "python_jobs.cli", *argv], capture_output=True, text=True,
                            errors="backslashreplace", env={k: v for k, v in full_env.items()}, cwd=tmp_path,
                            timeout=120, stdin=subprocess.DEVNULL)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("encore-recs: error: "), lines
    assert named in lines[0]
    assert _snapshot(PROJECT) <= before and list(tmp_path.iterdir()) in ([], [tmp_path / "state"])
