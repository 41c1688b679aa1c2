"""The fault-injection suite (issue 21): each kind of fault a daily run meets, injected into real processes of a
stack of its own (its own state folder and ports, driven through the CLI as an operator would), then the next run
succeeds without manual cleanup, every input row is accounted for, and `latest` never points at a half-published
run. `make test` runs the kinds marked fast; `make test-faults` (pytest --all-faults) runs every kind.

The table in docs/operations.md (Faults) lists each kind with its outcome."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.faults
USERS = 120
STAGE_TITLES = {
    "events": "ingest the app's events", "marts": "dbt marts", "validate-inputs": "validate inputs",
    "train": "evaluate every model", "validate-outputs": "validate outputs", "publish": "publish JSON",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stack:
    """A stack of its own, reached only through `encore-recs` with its environment."""

    def __init__(self, root: Path) -> None:
        self.state = root / "state"
        self.logs = root / "logs"
        self.logs.mkdir(parents=True)
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG", "ENCORE_"))}
        self.env = {**keep, "ENCORE_STATE_DIR": str(self.state), "ENCORE_PG_PORT": str(_free_port()),
                    "ENCORE_S3_PORT": str(_free_port()), "ENCORE_SHUFFLE_PARTITIONS": "2",
                    "ENCORE_TUNING_GRID": "rank=8", "ENCORE_SPARK_DRIVER_MEMORY": "1g", "PYTHONUNBUFFERED": "1"}
        self.count = 0

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """A command to its end; past `timeout`, it and every process it started (Spark's JVM, dbt) are killed,
        so a run that hangs cannot hold the run lock over the kinds after it."""
        proc = subprocess.Popen([sys.executable, "-m", "python_jobs.cli", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            raise
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

    def ok(self, *args: str) -> subprocess.CompletedProcess:
        result = self.cli(*args)
        assert result.returncode == 0, (args, result.stdout[-3000:], result.stderr[-3000:])
        return result

    def start(self, *args: str) -> tuple[subprocess.Popen, Path]:
        """A command in its own process group, its output in a file (read while it runs)."""
        self.count += 1
        out = self.logs / f"{self.count:02d}-{args[0]}.log"
        proc = subprocess.Popen([sys.executable, "-m", "python_jobs.cli", *args], env=self.env, start_new_session=True,
                                stdout=open(out, "w"), stderr=subprocess.STDOUT)
        return proc, out

    def run_id(self) -> str:
        self.count += 1
        return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-fault{self.count}"

    def s3(self):
        import boto3

        creds = json.loads((self.state / "s3" / "credentials.json").read_text())
        return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.env['ENCORE_S3_PORT']}",
                            aws_access_key_id=creds["access_key"], aws_secret_access_key=creds["secret_key"],
                            region_name="us-east-1")

    def latest(self) -> str | None:
        try:
            body = self.s3().get_object(Bucket="encore-publish", Key="latest.json")["Body"].read()
        except Exception:  # noqa: BLE001 - none yet
            return None
        return json.loads(body)["run_id"]

    def summary(self, run_id: str) -> dict:
        return json.loads((self.state / "runs" / run_id / "summary.json").read_text())

    def pid(self, name: str) -> int:
        path = {"postgres": self.state / "postgres" / "data" / "postmaster.pid",
                "s3": self.state / "s3" / "server.pid"}[name]
        return int(path.read_text().split()[0])


def wait_for(out: Path, text: str, proc: subprocess.Popen, seconds: float = 600) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if text in out.read_text(errors="replace"):
            return
        assert proc.poll() is None, f"ended before {text!r}:\n{out.read_text()[-3000:]}"
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} within {seconds}s")


def kill_tree(pid: int) -> None:
    """kill -9 of a server and every process under it, as the kernel's OOM killer or a crash leaves it."""
    children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == pid]
    os.kill(pid, signal.SIGKILL)
    for child in children:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _parent(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def accounted(stack: Stack, run_id: str) -> None:
    """The run published, every raw row is clean or rejected with a reason, every landed event line is ingested
    or quarantined, every user has a list, and each published object matches its manifest."""
    summary = stack.summary(run_id)
    assert summary["status"] == "ok", summary.get("error")
    assert summary["reconciliation"] and all(r["raw"] == r["clean"] + r["rejected"] for r in summary["reconciliation"])
    events = summary["events"]
    assert events["lines"] == events["ingested"] + events["quarantined"], events
    published_whole(stack, run_id)


def published_whole(stack: Stack, run_id: str) -> None:
    """`latest` names the run, and each object its manifest lists downloads with the manifest's checksum."""
    assert stack.latest() == run_id
    manifest = json.loads(stack.s3().get_object(Bucket="encore-publish", Key=f"runs/{run_id}/manifest.json")["Body"].read())
    assert manifest["row_counts"]["user_index"] == USERS
    for entry in manifest["files"]:
        with urllib.request.urlopen(entry["url"], timeout=30) as response:
            assert hashlib.sha256(response.read()).hexdigest() == entry["sha256"], entry["key"]


def one_line(result: subprocess.CompletedProcess | str) -> str:
    text = result if isinstance(result, str) else result.stderr
    assert "Traceback" not in text, text[-3000:]
    errors = [line for line in text.splitlines() if line.startswith("encore-recs: error:")]
    assert len(errors) == 1, text[-3000:]
    return errors[0]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Up, a small market with its events, and a first published run."""
    faults = Stack(tmp_path_factory.mktemp("faults"))
    runs = faults.state / "runs"
    runs.mkdir(parents=True)
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512m,mode=0700", "tmpfs",
                                                    str(runs)], capture_output=True).returncode == 0
    faults.runs_mounted = mounted  # the runs folder on a disk of its own, to make read-only mid-run
    faults.ok("up")
    faults.ok("generate", "--users", str(USERS), "--seed", "11")
    first = faults.run_id()
    faults.ok("run", "--run-id", first)
    accounted(faults, first)
    yield faults
    faults.cli("down")
    if mounted:
        subprocess.run(["umount", "-l", str(runs)], capture_output=True)


def _killed_then_resumed(stack: Stack, stage: str) -> None:
    before = stack.latest()
    run_id = stack.run_id()
    proc, out = stack.start("run", "--run-id", run_id)
    wait_for(out, f"] {STAGE_TITLES[stage]}", proc)
    time.sleep(1.5)
    kill_group(proc)
    assert stack.latest() in (before, run_id)  # never a run whose publish had not finished
    if stack.latest() == run_id:  # killed after publish moved `latest` (its summary may not say so yet): whole
        published_whole(stack, run_id)
    stack.ok("run", "--run-id", run_id, "--from", stage)
    accounted(stack, run_id)


# `make test` runs this one kind (a crash in the middle of a run, resumed); every other kind is slow:
# `make test-faults` runs them all
@pytest.mark.parametrize("stage", ["marts", pytest.param("publish", marks=pytest.mark.slow)])
def test_the_run_killed_in_a_spark_stage_resumes_from_it(stack, stage):
    _killed_then_resumed(stack, stage)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["events", "validate-inputs", "train", "validate-outputs"])
def test_the_run_killed_in_every_other_spark_stage_resumes_from_it(stack, stage):
    _killed_then_resumed(stack, stage)


def _service_killed(stack: Stack, service: str, stage: str) -> None:
    before = stack.latest()
    run_id = stack.run_id()
    proc, out = stack.start("run", "--run-id", run_id)
    wait_for(out, f"] {STAGE_TITLES[stage]}", proc)
    time.sleep(1.0)
    kill_tree(stack.pid(service))
    began = time.time()
    try:
        proc.wait(timeout=600)
    except subprocess.TimeoutExpired:  # a run that hangs must not hold the run lock over the kinds after it
        kill_group(proc)
        raise
    waited = time.time() - began
    text = out.read_text()
    assert proc.returncode == 2, text[-3000:]
    line = one_line(text)
    assert waited < 300, f"{waited:.0f}s to fail"
    recorded = stack.summary(run_id)  # on record here even when the store is what went away
    failed = [s["stage"] for s in recorded["steps"] if s["status"] == "failed"]
    assert failed, (line, recorded["steps"])
    stack.ok("up")  # the stale pid / postmaster.pid a kill -9 leaves does not stop it
    assert stack.latest() == before
    print(f"{service} killed during {stage}: failed in {waited:.0f}s: {line}")
    stack.ok("run", "--run-id", run_id, "--from", failed[0])
    accounted(stack, run_id)


@pytest.mark.slow
def test_the_s3_server_killed_during_marts(stack):
    _service_killed(stack, "s3", "marts")


@pytest.mark.slow
def test_the_s3_server_killed_during_publish(stack):
    _service_killed(stack, "s3", "publish")


@pytest.mark.slow
def test_postgres_killed_during_marts(stack):
    _service_killed(stack, "postgres", "marts")


@pytest.mark.slow
def test_two_runs_at_once(stack):
    first = stack.run_id()
    proc, out = stack.start("run", "--run-id", first)
    wait_for(out, "] dbt staging", proc)
    began = time.time()
    second = stack.cli("run", "--run-id", stack.run_id(), timeout=120)
    assert time.time() - began < 30 and second.returncode == 2
    assert f"run {first}" in one_line(second) and "in progress" in second.stderr
    assert proc.wait(timeout=900) == 0, out.read_text()[-3000:]
    accounted(stack, first)


@pytest.mark.slow
def test_a_stale_pid_file_after_kill_9_names_someone_elses_process(stack):
    """The S3 server dies by kill -9 and its pid is reused by an unrelated process: `down` leaves that process
    alone, `up` starts a server again, and the next run succeeds."""
    os.kill(stack.pid("s3"), signal.SIGKILL)
    time.sleep(0.5)
    stranger = subprocess.Popen(["sleep", "300"], start_new_session=True)
    (stack.state / "s3" / "server.pid").write_text(str(stranger.pid))
    try:
        stack.ok("down")
        assert stranger.poll() is None  # still alive: it was not ours
        stack.ok("up")
        run_id = stack.run_id()
        stack.ok("run", "--run-id", run_id)
        accounted(stack, run_id)
    finally:
        stranger.kill()


@pytest.mark.slow
def test_the_runs_folder_made_read_only_mid_run(stack):
    if not stack.runs_mounted:
        pytest.skip("needs root to mount a disk of its own under the state folder")
    runs = stack.state / "runs"
    before = stack.latest()
    run_id = stack.run_id()
    proc, out = stack.start("run", "--run-id", run_id)
    wait_for(out, f"] {STAGE_TITLES['marts']}", proc)
    deadline = time.time() + 60
    while subprocess.run(["mount", "-o", "remount,ro", str(runs)], capture_output=True).returncode != 0:
        assert time.time() < deadline, "could not remount the runs folder read-only"
        time.sleep(0.2)  # busy while a file there is open for writing
    try:
        assert proc.wait(timeout=600) == 2, out.read_text()[-3000:]
        line = one_line(out.read_text())
        assert "Read-only file system" in line and run_id in line
        assert stack.latest() == before
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(runs)], check=True)
    recorded = json.loads(stack.s3().get_object(Bucket="encore-lake", Key=f"runs/{run_id}/summary.json")["Body"].read())
    failed = [s["stage"] for s in recorded["steps"] if s["status"] != "ok"] or ["marts"]
    stack.ok("run", "--run-id", run_id, "--from", failed[0])
    accounted(stack, run_id)


@pytest.mark.slow
def test_a_corrupted_object_of_the_published_run_is_refused_and_the_previous_kept(stack):
    serving = stack.latest()
    corrupt = stack.run_id()
    stack.ok("run", "--run-id", corrupt)
    client = stack.s3()
    pointer = client.get_object(Bucket="encore-publish", Key="latest.json")["Body"].read()
    key = next(o["Key"] for o in client.list_objects_v2(Bucket="encore-publish", Prefix=f"runs/{corrupt}/")["Contents"]
               if "/recommendations/" in o["Key"])
    body = client.get_object(Bucket="encore-publish", Key=key)["Body"].read()
    client.put_object(Bucket="encore-publish", Key=key, Body=body.replace(b'"', b"'", 1))  # one byte
    client.put_object(Bucket="encore-publish", Key="latest.json",
                      Body=json.dumps({**json.loads(pointer), "run_id": serving,
                                       "manifest_key": f"runs/{serving}/manifest.json"}).encode())
    port = _free_port()
    key = stack.ok("keys", "create", "--scope", "read", "--name", "fault-suite").stdout.splitlines()[-1]
    proc, out = stack.start("serve", "--port", str(port), "--poll-seconds", "1")
    try:
        run_info = urllib.request.Request(f"http://127.0.0.1:{port}/v1/run", headers={"Authorization": f"Bearer {key}"})
        wait_for(out, "serving run", proc, 120)
        assert json.loads(urllib.request.urlopen(run_info, timeout=10).read())["run_id"] == serving
        client.put_object(Bucket="encore-publish", Key="latest.json", Body=pointer)  # the corrupted run is latest
        wait_for(out, f"run {corrupt} refused", proc, 60)
        assert json.loads(urllib.request.urlopen(run_info, timeout=10).read())["run_id"] == serving
        fresh = stack.run_id()
        stack.ok("run", "--run-id", fresh)
        accounted(stack, fresh)
        wait_for(out, f"serving run {fresh}", proc, 60)
    finally:
        kill_group(proc)


@pytest.mark.slow
def test_clock_skew_a_run_whose_id_sorts_before_the_published_one(stack):
    """The clock went back between runs: the new run's id sorts before `latest`. It publishes and becomes latest;
    pruning, which keeps the newest ids, never removes the run latest points at."""
    skewed = "20000101T000000Z-skewed"
    stack.ok("run", "--run-id", skewed)
    accounted(stack, skewed)
    runs = {p["Prefix"] for p in stack.s3().list_objects_v2(Bucket="encore-publish", Prefix="runs/",
                                                             Delimiter="/")["CommonPrefixes"]}
    assert f"runs/{skewed}/" in runs
