"""A publish killed half-way leaves `latest` on the previous complete run; re-publishing is idempotent."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from python_jobs.publish.publish import LATEST_KEY, read_latest, run_prefix

HELPER = Path(__file__).parent / "helpers" / "publish_run.py"
USERS = 3000


def _publish(run_id: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    return subprocess.Popen([sys.executable, str(HELPER), run_id, str(USERS)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _manifest(s3, bucket: str, run_id: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=run_prefix(run_id) + "manifest.json")["Body"].read())


def _intact(manifest: dict) -> None:
    for entry in manifest["files"]:
        with urllib.request.urlopen(entry["url"], timeout=30) as response:
            assert hashlib.sha256(response.read()).hexdigest() == entry["sha256"], entry["key"]


def test_killed_publish_keeps_previous_latest_and_republish_is_idempotent(stack, s3):
    bucket = stack.publish_bucket
    first, second = "20000101T000000Z-crash1", "20000101T000001Z-crash2"
    done = _publish(first)
    out, _ = done.communicate(timeout=600)
    assert done.returncode == 0, out
    assert read_latest(stack)["run_id"] == first

    victim = _publish(second)
    deadline = time.time() + 600
    while time.time() < deadline and victim.poll() is None:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=run_prefix(second)).get("KeyCount", 0)
        if listed:
            break
        time.sleep(0.2)
    assert victim.poll() is None, "the publish finished before it could be interrupted"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)

    latest = json.loads(s3.get_object(Bucket=bucket, Key=LATEST_KEY)["Body"].read())
    assert latest["run_id"] == first
    _intact(_manifest(s3, bucket, first))

    for _ in range(2):
        again = _publish(second)
        out, _ = again.communicate(timeout=600)
        assert again.returncode == 0, out
        manifest = _manifest(s3, bucket, second)
        assert read_latest(stack)["run_id"] == second
        assert manifest["row_counts"]["recommendations"] == USERS
        assert manifest["row_counts"]["user_index"] == USERS
        _intact(manifest)


def test_prune_keeps_the_newest_runs_and_never_latest(stack, s3):
    from dataclasses import replace

    from python_jobs.publish.publish import prune, published_at

    def runs():
        pages = s3.list_objects_v2(Bucket=stack.publish_bucket, Prefix="runs/", Delimiter="/")
        return sorted(p["Prefix"].split("/")[1] for p in pages.get("CommonPrefixes", []))

    before = runs()
    latest = read_latest(stack)["run_id"]
    assert len(before) >= 2 and latest in before
    newest = max(before, key=lambda run: (published_at(s3, stack.publish_bucket, run), run))  # not the largest id
    removed = prune(replace(stack, keep_runs=1), keep=1)
    after = runs()
    assert latest in after and newest in after
    assert set(removed) == set(before) - set(after)
    assert len(after) <= 2
