"""The events API: per-event checks, idempotent resends, the spool, and Firehose-shaped objects on the S3 server."""

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from python_jobs.events.collector import Collector
from python_jobs.events.landing import S3Sink
from python_jobs.events.schema import check
from python_jobs.events.spool import Spool
from python_jobs.serving.app import build_app
from python_jobs.serving.loader import RunHolder

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from api_keys import keyed  # noqa: E402

NOW = datetime(2026, 12, 3, 10, 30, tzinfo=timezone.utc)


def event(i: int, **changes) -> dict:
    return {"event_id": f"e-{i}", "type": "view", "uid": 7, "listing_id": 100 + i, "at": "2026-12-03T10:29:00Z",
            "session_id": "s1", **changes}


@pytest.mark.parametrize("changes,reason", [
    ({"type": "stare"}, "type 'stare' is not one of"),
    ({"uid": "7"}, "uid must be an integer"),
    ({"uid": True}, "uid must be an integer"),
    ({"listing_id": 0}, "listing_id 0 is outside"),
    ({"listing_id": 2**31}, "outside"),
    ({"at": "yesterday"}, "at must be an ISO 8601 time"),
    ({"at": "2026-12-03T10:29:00"}, "at must be an ISO 8601 time with a zone"),
    ({"at": "2027-01-01T00:00:00Z"}, "more than 5 minutes after the server's clock"),
    ({"at": "2026-11-01T00:00:00Z"}, "more than 7 days late"),
    ({"event_id": ""}, "event_id must be"),
    ({"event_id": None}, "missing event_id"),
    ({"event_id": "a b"}, "event_id must be"),
    ({"watch_seconds": 3}, "watch_seconds belongs to watch events only"),
    ({"type": "watch", "watch_seconds": -1}, "watch_seconds must be a number"),
    ({"type": "watch", "watch_seconds": float("nan")}, "watch_seconds must be a number"),
    ({"colour": "red"}, "unknown field 'colour'"),
    ({"session_id": 5}, "session_id must be a string"),
    ({"variant": "ab/b"}, "variant and position belong to impression events only"),
    ({"position": 1}, "variant and position belong to impression events only"),
    ({"type": "impression", "variant": "ab"}, "variant must be experiment/variant"),
    ({"type": "impression", "variant": 3}, "variant must be experiment/variant"),
    ({"type": "impression", "position": 0}, "position must be the listing's place"),
    ({"type": "impression", "position": True}, "position must be the listing's place"),
])
def test_each_malformed_event_gets_its_reason(changes, reason):
    landed, why = check(event(1, **changes), NOW)
    assert landed is None and reason in why


def test_a_good_event_is_landed_with_its_arrival_time():
    landed, why = check(event(1, type="watch", watch_seconds=12, at="2026-12-03T11:29:00+01:00"), NOW)
    assert why is None
    assert landed == {"event_id": "e-1", "type": "watch", "uid": 7, "listing_id": 101, "at": "2026-12-03T10:29:00.000Z",
                      "received_at": "2026-12-03T10:30:00.000Z", "session_id": "s1", "watch_seconds": 12.0}
    shown, why = check(event(2, type="impression", variant="hybrid_vs_popularity/hybrid", position=3), NOW)
    assert why is None and (shown["variant"], shown["position"]) == ("hybrid_vs_popularity/hybrid", 3)


class Clock:
    def __init__(self):
        self.now = NOW

    def __call__(self):
        return self.now


def test_a_batch_is_spooled_once_and_resends_are_acknowledged_not_repeated(tmp_path):
    spool = Spool(tmp_path / "spool", max_bytes=10**6, max_seconds=900)
    collector = Collector(spool, sink=None, clock=Clock())
    answer = collector.accept([event(1), event(2), "junk", event(2), {**event(3), "type": "stare"}])
    assert answer["accepted"] == 2 and answer["duplicates"] == 1
    assert [(r["index"], r.get("event_id")) for r in answer["rejected"]] == [(2, None), (4, "e-3")]
    again = collector.accept([event(1), event(4)])
    assert again == {"accepted": 1, "duplicates": 1, "rejected": []}
    lines = [json.loads(line) for s in spool.pending() for line in s.read_bytes().splitlines()]
    assert [e["event_id"] for e in lines] == ["e-1", "e-2", "e-4"]
    spool.close()
    # a new process on the same spool remembers what is still undelivered
    reopened = Collector(Spool(tmp_path / "spool", 10**6, 900), sink=None, clock=Clock())
    assert reopened.accept([event(2)])["duplicates"] == 1


def test_the_ids_remembered_are_bounded_to_the_latest(tmp_path, monkeypatch):
    """A long-serving process keeps only the latest REMEMBER ids: memory stays flat, recent resends are still
    caught, and an id older than the window is spooled again (the staging model keeps one row per id)."""
    from python_jobs.events import collector as module

    monkeypatch.setattr(module, "REMEMBER", 5)
    spool = Spool(tmp_path / "spool", max_bytes=10**6, max_seconds=900)
    collector = Collector(spool, sink=None, clock=Clock())
    for i in range(1, 13):
        assert collector.accept([event(i)])["accepted"] == 1
    assert len(collector._recent) == 5
    assert collector.accept([event(12), event(8)])["duplicates"] == 2
    assert collector.accept([event(1)])["accepted"] == 1
    spool.close()


def test_one_process_owns_a_spool(tmp_path):
    from python_jobs.errors import UserError

    first = Spool(tmp_path / "spool", 10**6, 900)
    with pytest.raises(UserError, match="another process collects events"):
        Spool(tmp_path / "spool", 10**6, 900)
    first.close()
    Spool(tmp_path / "spool", 10**6, 900).close()  # free once the owner closed it


def _objects(s3, bucket, prefix):
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]
    return {key: gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).splitlines() for key in keys}


def test_segments_land_as_gzip_json_lines_under_their_arrival_hour(tmp_path, stack, s3):
    clock = Clock()
    spool = Spool(tmp_path / "spool", max_bytes=10**6, max_seconds=60, clock=lambda: clock.now.timestamp())
    collector = Collector(spool, S3Sink(s3, stack.lake_bucket), clock=clock)
    collector.accept([event(1, at="2026-12-03T09:58:00Z")])  # happened at 09:58, arrived 10:30: lands in hour 10
    clock.now = NOW + timedelta(minutes=40)  # 11:10, the buffer is 40 minutes old
    collector.accept([event(2, at="2026-12-03T11:09:00Z")])
    assert collector.deliver() == 2  # one segment spanning two arrival hours: an object per hour
    (tmp_path / "spool" / "torn.ready").write_bytes(b'{"event_id": "half')  # a write a crash tore
    assert collector.deliver() == 1
    landed = _objects(s3, stack.lake_bucket, "events/year=2026/month=12/day=03/")
    hours = sorted(key.split("/")[4] for key in landed)
    assert hours == ["hour=10", "hour=11"]
    assert all(Path(key).name.startswith("encore-events-1-2026-12-03-") and key.endswith(".gz") for key in landed)
    assert sorted(json.loads(line)["event_id"] for lines in landed.values() for line in lines) == ["e-1", "e-2"]
    errors = _objects(s3, stack.lake_bucket, "events-errors/processing-failed/")
    assert [json.loads(line)["errorCode"] for lines in errors.values() for line in lines] == ["Spool.Unreadable"]
    assert spool.pending() == []


def test_the_api_answers_per_event_and_refuses_oversize_batches(tmp_path, stack):
    collector = Collector(Spool(tmp_path / "spool", 10**6, 900), sink=None)
    store, header = keyed(tmp_path, ("events",))
    client = TestClient(build_app(RunHolder(stack), collector, keys=store), headers=header)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    answer = client.post("/v1/events", json={"events": [event(1, at=now), event(2, at="2099-01-01T00:00:00Z")]})
    assert answer.status_code == 200
    body = answer.json()
    assert body["accepted"] == 1 and body["rejected"][0]["index"] == 1
    assert "more than 5 minutes after" in body["rejected"][0]["reason"]
    assert client.post("/v1/events", json={"events": []}).status_code == 422
    assert client.post("/v1/events", json={"nothing": 1}).status_code == 422
    assert client.post("/v1/events", content=b"not json", headers={"content-type": "application/json"}).status_code == 422
    assert client.post("/v1/events", content=b"v\xff", headers={"content-type": "application/json"}).status_code == 400
    assert client.post("/v1/events", json={"events": [event(i, at=now) for i in range(501)]}).status_code == 422
    huge = client.post("/v1/events", json={"events": [event(1, session_id="x" * 2_000_000)]})
    assert huge.status_code == 413 and "at most" in huge.json()["detail"]
    assert TestClient(build_app(RunHolder(stack), keys=store), headers=header).post(
        "/v1/events", json={"events": [event(1)]}).status_code == 503


def test_a_full_spool_answers_503_and_every_acknowledged_event_lands_after(tmp_path, stack, s3):
    """Delivery is slower than intake (the store away, or slow): the spool stops at its cap instead of filling the
    disk, the app is told to come back later, and what was acknowledged before lands once delivery resumes."""
    spool = Spool(tmp_path / "spool", max_bytes=10**6, max_seconds=900, max_total=20_000)
    collector = Collector(spool, S3Sink(s3, stack.lake_bucket))
    store, header = keyed(tmp_path, ("events",))
    client = TestClient(build_app(RunHolder(stack), collector, keys=store), headers=header)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    acknowledged, answer = [], None
    for batch in range(40):  # about 130 bytes an event: the cap holds about 150
        sent = [event(i, event_id=f"full-{batch}-{i}", at=now) for i in range(10)]
        answer = client.post("/v1/events", json={"events": sent})
        if answer.status_code != 200:
            break
        acknowledged += [e["event_id"] for e in sent]
    assert answer.status_code == 503 and answer.headers["retry-after"] == "30" and "spool" in answer.json()["detail"]
    assert 100 < len(acknowledged) < 400 and spool.held <= 20_000
    assert collector.deliver(force=True) >= 1 and spool.held == 0
    again = client.post("/v1/events", json={"events": sent})  # the refused batch, sent again: kept now
    assert again.json()["accepted"] == 10
    acknowledged += [e["event_id"] for e in sent]
    collector.deliver(force=True)
    landed = [json.loads(line)["event_id"] for lines in _objects(s3, stack.lake_bucket, "events/").values()
              for line in lines]
    assert sorted(e for e in landed if e.startswith("full-")) == sorted(acknowledged)
    spool.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def events_key(stack) -> dict:
    """A key created as the docs say, `encore-recs keys create --scope events | tail -1`, in the stack's folder."""
    created = subprocess.run([os.path.join(os.path.dirname(sys.executable), "encore-recs"), "keys", "create",
                              "--scope", "events", "--name", "app-backend"], env={**os.environ,
                             "ENCORE_STATE_DIR": str(stack.state_dir)}, capture_output=True, text=True, check=True)
    return {"Authorization": f"Bearer {created.stdout.splitlines()[-1]}"}


def _serve(stack, port: int, buffer_seconds: int) -> subprocess.Popen:
    env = {**os.environ, "ENCORE_STATE_DIR": str(stack.state_dir), "ENCORE_EVENTS_BUFFER_SECONDS": str(buffer_seconds)}
    process = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "encore-recs"), "serve", "--port",
                                str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(process.stdout.read().decode()[-2000:])


def test_every_acknowledged_event_lands_exactly_once_after_kill_9(stack, s3, events_key):
    import httpx

    port = _free_port()
    server = _serve(stack, port, buffer_seconds=900)  # nothing is delivered before the kill
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    sent = [event(i, event_id=f"kill9-{i}", at=now) for i in range(300)]
    try:
        for start in range(0, 300, 100):
            answer = httpx.post(f"http://127.0.0.1:{port}/v1/events", json={"events": sent[start:start + 100]},
                                headers=events_key)
            assert answer.json()["accepted"] == 100
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    server = _serve(stack, port, buffer_seconds=1)
    try:  # the resend the app makes when it never saw the answer: acknowledged again, kept once
        assert httpx.post(f"http://127.0.0.1:{port}/v1/events", json={"events": sent[:100]},
                          headers=events_key).json()["duplicates"] == 100
        spool, deadline = stack.state_dir / "events" / "spool", time.time() + 60
        while time.time() < deadline and [*spool.glob("*.open"), *spool.glob("*.ready")]:
            time.sleep(0.5)  # delivered by the 1-second buffer, not by the stop below
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    landed = [json.loads(line)["event_id"] for lines in _objects(s3, stack.lake_bucket, "events/").values()
              for line in lines]
    mine = sorted(e for e in landed if e.startswith("kill9-"))
    assert mine == sorted(e["event_id"] for e in sent)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_events_acknowledged_before_a_stop_signal_are_landed_by_the_stop(stack, s3, stop, events_key):
    """`kill PID` (SIGTERM: what systemd, Kubernetes and ECS send) stops serve as Ctrl-C does: the buffer is sealed
    and landed before the process ends. It used to end at uvicorn's re-raised SIGTERM, leaving the events in
    the spool's open segment until serve next started."""
    import httpx

    port = _free_port()
    server = _serve(stack, port, buffer_seconds=900)  # the buffer is not due: only the stop lands it
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    sent = [event(i, event_id=f"stop{stop.value}-{i}", at=now) for i in range(50)]
    try:
        assert httpx.post(f"http://127.0.0.1:{port}/v1/events", json={"events": sent},
                          headers=events_key).json()["accepted"] == 50
    finally:
        server.send_signal(stop)
        output = server.communicate(timeout=60)[0].decode()
    assert "Traceback" not in output, output
    spool = stack.state_dir / "events" / "spool"
    assert [*spool.glob("*.open"), *spool.glob("*.ready")] == []
    landed = [json.loads(line)["event_id"] for lines in _objects(s3, stack.lake_bucket, "events/").values()
              for line in lines]
    assert sorted(e for e in landed if e.startswith(f"stop{stop.value}-")) == sorted(e["event_id"] for e in sent)


def test_recent_ids_remember_the_window_in_memory_fixed_at_start():
    """At least the latest `size` ids are remembered and at most `merge_every` more; a million ids later
    the structure holds no more memory than after the first window (tracemalloc counts NumPy's buffers)."""
    import tracemalloc

    from python_jobs.events.recent_ids import RecentIds

    recent = RecentIds(1000, merge_every=100)
    for i in range(2500):
        recent.add(f"e-{i}")
        recent.add(f"e-{i}")  # an id already remembered takes no second slot
    assert len(recent) == 1000
    assert all(f"e-{i}" in recent for i in range(1500, 2500))
    assert not any(f"e-{i}" in recent for i in range(0, 1400))
    assert "e-never" not in recent

    tracemalloc.start()
    recent = RecentIds(100_000)
    for i in range(100_000):
        recent.add(f"soak-{i}")
    filled = tracemalloc.get_traced_memory()[0]
    for i in range(100_000, 1_000_000):
        recent.add(f"soak-{i}")
    later = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert later <= filled + 256 * 1024, (filled, later)
    assert filled < 3 * 2**20  # two arrays of 100,000 hashes and a set of at most 4,096
    assert "soak-999999" in recent and "soak-900000" in recent and "soak-800000" not in recent
