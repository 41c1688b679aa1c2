"""Every command a data team types, with a service it needs unreachable: one line naming the service and what to
do, exit 2, no traceback (issue 21). `down` has nothing to reach and says what it stopped."""

import os
import socket
import subprocess
import sys

import pytest

COMMANDS = {
    "run": ["run"],
    "run --from": ["run", "--from", "marts", "--run-id", "20261203T100000Z-abcdef"],
    "step": ["step", "marts", "--run-id", "20261203T100000Z-abcdef"],
    "serve": ["serve", "--port", "1"],
    "up": ["up"],
    "generate": ["generate", "--users", "10"],
}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def _cli(args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "python_jobs.cli", *args], capture_output=True, text=True,
                          timeout=240, env=env)


def _env(tmp_path, **overrides) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "PG"))}
    return {**env, "ENCORE_STATE_DIR": str(tmp_path / "state"), **overrides}


def _one_line(result: subprocess.CompletedProcess) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("encore-recs: error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr and len(errors) == 1, result.stderr[-2000:]
    return errors[0]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_postgres_unreachable(tmp_path, command):
    env = _env(tmp_path, ENCORE_PG_DSN=f"postgresql://encore:secret@127.0.0.1:{_closed_port()}/encore",
               ENCORE_S3_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")
    line = _one_line(_cli(COMMANDS[command], env))
    assert "PostgreSQL is unreachable" in line and "secret" not in line


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("credentials", [True, False], ids=["keys", "no-keys"])
def test_s3_unreachable(stack, tmp_path, command, credentials):
    from python_jobs.stack import postgres

    keys = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example"} if credentials else {}
    env = _env(tmp_path, ENCORE_PG_DSN=postgres.pg_dsn(stack), ENCORE_S3_ENDPOINT=f"http://127.0.0.1:{_closed_port()}",
               **keys)
    line = _one_line(_cli(COMMANDS[command], env))
    assert ("is unreachable" if credentials else "no credentials for S3") in line


def test_down_with_nothing_reachable(tmp_path):
    env = _env(tmp_path, ENCORE_PG_DSN=f"postgresql://u:p@127.0.0.1:{_closed_port()}/x",
               ENCORE_S3_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")
    result = _cli(["down"], env)
    assert result.returncode == 0 and result.stdout.strip() == "stopped: nothing was running", result.stderr
