"""A soak of `encore-recs serve` (issue 30): the real server under mixed load for MINUTES, on loopback only.

On a stack of its own (a temporary state folder, free ports; stopped at the end): a small marketplace
(`generate --users`), one pipeline run, two API keys, then `serve`, and for the duration:
- reads at a paced rate: known users by uid and by user name, unknown users (404), similar listings, /v1/run;
- event batches: fresh events, ids sent again (in the batch and from earlier batches), junk lines the API refuses
  one by one; a batch refused whole (429, 503) or lost to a broken connection is sent again, as the app would;
- a fresh pipeline run every few minutes (`encore-recs run`, which ingests the events landed so far), swapped in
  by the server's poll;
- the S3 server stopped for a while in the middle (events stay in the server's spool; reads come from memory).
The runs stand in for the scheduler's jobs, which in production run on EMR, not beside the API: here they share
its two cores, at a lower CPU priority (`--run-nice`, as a scheduler on the API's host would start them).
Then the server is stopped (SIGTERM lands its buffer), one more run ingests what is left, and it prints
requests/s, p50/p99 per endpoint, the reads' p50/p99 apart for the quiet minutes, the minutes a run was in
flight and the outage, the 5xx count, the server's RSS sampled through the soak, and the events
acknowledged vs landed vs ingested (each counted by this soak's own event ids: landed = lines in the lake's
objects, ingested = rows of events.bronze_app_events). The pipeline runs with the quality gate off
(ENCORE_MAX_QUALITY_DROP=1): each run's model is fitted on a few minutes' more events, and the soak is about
serving them, not judging them.

    make soak MINUTES=30        # or: .venv/bin/python benchmarks/soak.py --minutes 30 [--users 300]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parents[1]
BATCH = 50               # events a batch: 44 fresh, 4 sent again, 2 junk
READ_KINDS = ("by uid", "by name", "unknown uid", "similar", "run")
RSS_EVERY = 60           # seconds between samples of the server's memory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(*args: str, env: dict | None = None, nice: int = 0) -> str:
    """One `encore-recs` command in a process of its own (at `nice` lower CPU priority); its output, or a
    RuntimeError with its last lines."""
    niced = ["nice", "-n", str(nice)] if nice else []  # not preexec_fn: the soak's threads are running
    done = subprocess.run([*niced, sys.executable, "-m", "python_jobs.cli", *args], cwd=ROOT, env=env, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL)
    if done.returncode:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise RuntimeError(f"encore-recs {' '.join(args)} exited {done.returncode}:\n{tail}")
    return done.stdout


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass
class Tally:
    """Every answer the load saw, by endpoint; and the events' accounting."""
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    reads_by_phase: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # quiet/run/outage
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    errors: Counter = field(default_factory=Counter)       # by endpoint: no answer at all (connection, timeout)
    run_ids: list[str] = field(default_factory=list)        # each run id the reads saw, in the order first seen
    acknowledged: int = 0                                    # the server's `accepted`, summed
    duplicates: int = 0
    rejected: int = 0
    sent_again: int = 0                                      # whole batches sent again after 429/503/no answer
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, endpoint: str, seconds: float, status: int | None, phase: str = "quiet") -> None:
        with self.lock:
            if status is None:
                self.errors[endpoint] += 1
                return
            self.latencies[endpoint].append(seconds)
            self.statuses[endpoint][status] += 1
            if endpoint.startswith("GET"):
                self.reads_by_phase[phase].append(seconds)

    def server_errors(self) -> int:
        return sum(n for counts in self.statuses.values() for status, n in counts.items() if status >= 500)


class Load:
    """The mixed load on one server, paced (not flat out: the machine is shared), for a bounded time."""

    def __init__(self, base: str, read_key: str, events_key: str, users: int, tag: str, seed: int = 42) -> None:
        self.base, self.users, self.tag = base, users, tag
        self.read_headers = {"Authorization": f"Bearer {read_key}"}
        self.events_headers = {"Authorization": f"Bearer {events_key}"}
        self.tally = Tally()
        self.rng = random.Random(seed)
        self.names: list[str] = []
        self.sent = 0
        self.acked_ids: list[str] = []
        self.phase = lambda: "quiet"  # what else the machine is doing: "quiet", "run" or "outage"

    def _call(self, client: httpx.Client, endpoint: str, method: str, url: str, **kwargs) -> httpx.Response | None:
        phase, start = self.phase(), time.perf_counter()
        try:
            answer = client.request(method, url, **kwargs)
        except httpx.HTTPError:
            self.tally.record(endpoint, 0.0, None)
            return None
        phase = self.phase() if phase == "quiet" else phase  # a run or the outage that began during the call
        self.tally.record(endpoint, time.perf_counter() - start, answer.status_code, phase)
        return answer

    def learn_names(self, client: httpx.Client) -> None:
        for uid in self.rng.sample(range(1, self.users + 1), min(self.users, 50)):
            answer = client.get(f"{self.base}/v1/users/{uid}/recommendations?n=1", headers=self.read_headers)
            if answer.status_code == 200 and answer.json()["user_name"]:
                self.names.append(answer.json()["user_name"])

    def read_once(self, client: httpx.Client, rng: random.Random) -> None:
        kind = rng.choices(READ_KINDS, weights=(50, 20, 15, 10, 5))[0]
        if kind == "by name" and self.names:
            url = f"/v1/users/by-name/{quote(rng.choice(self.names), safe='')}/recommendations?n=5"
            endpoint = "GET /v1/users/by-name/{name}/recommendations"
        elif kind == "unknown uid":
            url, endpoint = f"/v1/users/{rng.randint(10**9, 2 * 10**9)}/recommendations", "GET unknown uid (404)"
        elif kind == "similar":
            url, endpoint = f"/v1/listings/{rng.randint(1, 200)}/similar?n=5", "GET /v1/listings/{id}/similar"
        elif kind == "run":
            url, endpoint = "/v1/run", "GET /v1/run"
        else:
            url, endpoint = f"/v1/users/{rng.randint(1, self.users)}/recommendations", "GET /v1/users/{uid}/recommendations"
        answer = self._call(client, endpoint, "GET", self.base + url, headers=self.read_headers)
        if answer is not None and answer.status_code == 200 and kind != "similar":
            run_id = answer.json()["run_id"]
            with self.tally.lock:
                if not self.tally.run_ids or self.tally.run_ids[-1] != run_id:
                    self.tally.run_ids.append(run_id)

    def batch(self, rng: random.Random) -> list:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        events = []
        for _ in range(BATCH - 6):
            self.sent += 1
            kind = rng.choice(("view", "watch", "like", "share", "impression"))
            event = {"event_id": f"{self.tag}-{self.sent}", "type": kind, "uid": rng.randint(1, self.users),
                     "listing_id": rng.randint(1, 200), "at": now, "session_id": f"{self.tag}-s{rng.randint(1, 99)}"}
            if kind == "watch":
                event["watch_seconds"] = round(rng.uniform(1, 60), 1)
            events.append(event)
        events += [dict(events[0]), dict(events[1])]  # the same id twice in one batch
        earlier = self.acked_ids[-5000:] or [events[2]["event_id"]]
        for event_id in rng.sample(earlier, min(2, len(earlier))):  # ids an earlier batch had acknowledged
            events.append({"event_id": event_id, "type": "view", "uid": 1, "listing_id": 1, "at": now})
        events += [{"event_id": f"{self.tag}-junk", "type": "teleport", "uid": 1, "listing_id": 1, "at": now},
                   "not an event"]
        return events

    def post_once(self, client: httpx.Client, rng: random.Random) -> None:
        events = self.batch(rng)
        fresh = [e["event_id"] for e in events[:BATCH - 6]]
        for _ in range(60):  # bounded: a batch refused whole is sent again after Retry-After
            answer = self._call(client, "POST /v1/events", "POST", f"{self.base}/v1/events",
                                json={"events": events}, headers=self.events_headers)
            if answer is not None and answer.status_code == 200:
                body = answer.json()
                with self.tally.lock:
                    self.tally.acknowledged += body["accepted"]
                    self.tally.duplicates += body["duplicates"]
                    self.tally.rejected += len(body["rejected"])
                self.acked_ids += fresh
                return
            with self.tally.lock:
                self.tally.sent_again += 1
            time.sleep(min(int(answer.headers.get("Retry-After", 1)) if answer is not None else 1, 5))
        raise RuntimeError(f"a batch of events was not acknowledged after 60 attempts (last: {answer})")

    def run(self, seconds: float, reads_per_second: float, batches_per_second: float, threads: int = 4) -> None:
        """Readers and one events sender, each paced to its share of the rates, until `seconds` have passed."""
        stop = threading.Event()
        failures: list[BaseException] = []

        def paced(rate: float, one, seed: int) -> None:
            rng = random.Random(seed)
            with httpx.Client(timeout=10) as client:
                next_at = time.monotonic()
                while not stop.is_set():
                    try:
                        one(client, rng)
                    except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                        failures.append(exc)
                        stop.set()
                        return
                    next_at += rng.expovariate(rate)
                    stop.wait(max(0.0, next_at - time.monotonic()))

        with httpx.Client(timeout=10) as client:
            self.learn_names(client)
        workers = [threading.Thread(target=paced, args=(reads_per_second / threads, self.read_once, i))
                   for i in range(threads)]
        workers.append(threading.Thread(target=paced, args=(batches_per_second, self.post_once, 99)))
        for worker in workers:
            worker.start()
        stop.wait(seconds)
        stop.set()
        for worker in workers:
            worker.join()
        if failures:
            raise failures[0]


def landed_lines(s3, bucket: str, tag: str) -> tuple[int, int]:
    """(lines, distinct event ids) of this soak's events in the lake's landed objects."""
    lines, ids = 0, set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="events/"):
        for item in page.get("Contents", []):
            if not item["Key"].endswith(".gz"):
                continue
            body = gzip.decompress(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            for line in body.splitlines():
                event_id = json.loads(line).get("event_id", "")
                if event_id.startswith(tag + "-"):
                    lines += 1
                    ids.add(event_id)
    return lines, len(ids)


def ingested_rows(settings, tag: str) -> tuple[int, int]:
    """(rows, distinct event ids) of this soak's events in events.bronze_app_events."""
    from python_jobs.stack.spark import get_spark

    spark = get_spark(settings)
    spark.catalog.refreshTable("events.bronze_app_events")  # written by the runs' processes since
    row = spark.sql(f"select count(*) as n, count(distinct event_id) as ids from events.bronze_app_events "
                    f"where event_id like '{tag}-%'").first()
    return row["n"], row["ids"]


@dataclass
class Soak:
    """What one soak measured."""
    seconds: float
    tally: Tally
    rss_mb: list[tuple[float, float]]  # (seconds into the load, the server's RSS), every RSS_EVERY seconds
    landed: tuple[int, int]
    ingested: tuple[int, int]
    runs: list[str]
    outage_seconds: float
    load_average: tuple[float, float, float]

    def report(self) -> list[str]:
        t = self.tally
        total = sum(len(v) for v in t.latencies.values()) + sum(t.errors.values())
        lines = [f"soak: {self.seconds / 60:.1f} min of load, {total:,} requests, {total / self.seconds:.1f} "
                 f"requests/s; load average at the end {self.load_average[0]:.2f} {self.load_average[1]:.2f} "
                 f"{self.load_average[2]:.2f} (2 cores, shared)",
                 f"| endpoint | requests | req/s | p50 ms | p99 ms | max ms | statuses | no answer |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for endpoint in sorted(t.latencies):
            ms = [s * 1000 for s in t.latencies[endpoint]]
            statuses = " ".join(f"{code}:{n}" for code, n in sorted(t.statuses[endpoint].items()))
            lines.append(f"| {endpoint} | {len(ms):,} | {len(ms) / self.seconds:.1f} | {percentile(ms, .5):.1f} | "
                         f"{percentile(ms, .99):.1f} | {max(ms):.1f} | {statuses} | {t.errors[endpoint]} |")
        for phase, what in (("quiet", "no run in flight"), ("run", "a run in flight (the runs share the 2 cores)"),
                            ("outage", "the S3 server stopped")):
            ms = [s * 1000 for s in t.reads_by_phase.get(phase, [])]
            if ms:
                lines.append(f"reads, {what}: {len(ms):,} requests, p50 {percentile(ms, .5):.1f} ms, "
                             f"p99 {percentile(ms, .99):.1f} ms")
        start, end = self.rss_mb[0][1], self.rss_mb[-1][1]
        half = next(mb for at, mb in self.rss_mb if at >= self.rss_mb[-1][0] / 2)
        lines += [f"5xx: {t.server_errors()}; "
                  f"batches sent again after 429/503/no answer: {t.sent_again}",
                  f"server RSS: {start:.0f} MB at start, {end:.0f} MB at end ({(end / start - 1) * 100:+.1f}%); "
                  f"{half:.0f} MB half-way (second half {(end / half - 1) * 100:+.1f}%), peak "
                  f"{max(mb for _, mb in self.rss_mb):.0f} MB; every {RSS_EVERY} s: "
                  + " ".join(f"{mb:.0f}" for _, mb in self.rss_mb),
                  f"runs published while the soak ran: {len(self.runs)}; the reads saw "
                  f"{len(t.run_ids)} run ids in turn ({' -> '.join(r.split('-')[-1] for r in t.run_ids)})",
                  f"S3 server stopped for {self.outage_seconds:.0f} s in the middle",
                  f"events: acknowledged {t.acknowledged:,} | landed {self.landed[0]:,} lines "
                  f"({self.landed[1]:,} ids) | ingested {self.ingested[0]:,} rows ({self.ingested[1]:,} ids); "
                  f"duplicates acknowledged and not kept {t.duplicates:,}, junk refused {t.rejected:,}"]
        return lines


def soak(settings, env: dict, minutes: float, users: int, swap_minutes: float, outage_seconds: float,
         reads_per_second: float, batches_per_second: float, run_nice: int = 10, log=print) -> Soak:
    """The soak on the stack of `settings` (up, with its buckets); `env` runs the CLI on that stack."""
    from python_jobs.infra.s3 import s3_client
    from python_jobs.stack.s3_server import start_s3, stop_s3

    env = {**env, "ENCORE_MAX_QUALITY_DROP": "1", "ENCORE_EVENTS_BUFFER_SECONDS": "5"}
    log(f"soak: generate --users {users}, then one run")
    cli("generate", "--users", str(users), env=env)
    cli("run", env=env)
    read_key = cli("keys", "create", "--scope", "read", "--name", "soak-reader", env=env).splitlines()[-1]
    events_key = cli("keys", "create", "--scope", "events", "--name", "soak-app", env=env).splitlines()[-1]
    port = free_port()
    server_log = open(settings.state_dir / "soak-serve.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "python_jobs.cli", "serve", "--port", str(port),
                               "--poll-seconds", "5"], cwd=ROOT, env=env, stdout=server_log,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                raise RuntimeError(f"serve exited {server.returncode}; see {server_log.name}")
            time.sleep(0.5)
        tag = f"soak{int(time.time())}"
        load = Load(base, read_key, events_key, users, tag)
        seconds = minutes * 60
        busy = threading.Lock()  # a run and the S3 outage never overlap: a run needs S3
        runs: list[str] = []
        stop = threading.Event()
        failures: list[BaseException] = []
        doing = {"run": False, "outage": False}
        load.phase = lambda: "outage" if doing["outage"] else "run" if doing["run"] else "quiet"
        rss = [(0.0, rss_mb(server.pid))]

        def swaps() -> None:
            while not stop.wait(swap_minutes * 60):
                with busy:
                    if stop.is_set():
                        return
                    doing["run"] = True
                    try:
                        out = cli("run", env=env, nice=run_nice)
                    except RuntimeError as exc:
                        failures.append(exc)
                        return
                    finally:
                        doing["run"] = False
                    runs.append(re.search(r"\d{8}T\d{6}Z-[a-z0-9]+", out.splitlines()[-1]).group())
                    log(f"soak: a run published at {time.monotonic() - started:.0f} s")

        def outage() -> None:
            if stop.wait(max(0.0, seconds / 2 - outage_seconds / 2)):
                return
            with busy:
                log(f"soak: S3 server stopped at {time.monotonic() - started:.0f} s for {outage_seconds:.0f} s")
                doing["outage"] = True
                stop_s3(settings)
                stop.wait(outage_seconds)
                start_s3(settings)
                doing["outage"] = False

        def memory() -> None:
            while not stop.wait(RSS_EVERY):
                rss.append((time.monotonic() - started, rss_mb(server.pid)))

        started = time.monotonic()
        helpers = [threading.Thread(target=swaps), threading.Thread(target=outage), threading.Thread(target=memory)]
        for helper in helpers:
            helper.start()
        try:
            load.run(seconds, reads_per_second, batches_per_second)
            elapsed = time.monotonic() - started
            rss.append((elapsed, rss_mb(server.pid)))
        finally:
            stop.set()
            for helper in helpers:
                helper.join()
        if failures:
            raise failures[0]
    finally:
        server.send_signal(signal.SIGTERM)  # lands the spool's buffer before it exits
        server.wait(timeout=120)
        server_log.close()
    load_average = os.getloadavg()
    landed = landed_lines(s3_client(settings), settings.lake_bucket, tag)
    log("soak: a last run ingests what is left")
    cli("run", env=env)
    return Soak(elapsed, load.tally, rss, landed, ingested_rows(settings, tag), runs,
                outage_seconds, load_average)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--swap-minutes", type=float, default=5.0, help="a fresh run published this often")
    parser.add_argument("--outage-seconds", type=float, default=60.0, help="the S3 server stopped this long")
    parser.add_argument("--reads-per-second", type=float, default=60.0)
    parser.add_argument("--batches-per-second", type=float, default=2.0, help=f"{BATCH} events a batch")
    parser.add_argument("--run-nice", type=int, default=10, help="the runs' lower CPU priority (0: the API's own)")
    args = parser.parse_args(argv)
    state = Path(tempfile.mkdtemp(prefix="encore-soak-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ENCORE_STATE_DIR": str(state),
           "ENCORE_PG_PORT": str(free_port()), "ENCORE_S3_PORT": str(free_port()),
           "ENCORE_SPARK_MASTER_PORT": str(free_port()), "ENCORE_SPARK_THRIFT_PORT": str(free_port()),
           "ENCORE_SHUFFLE_PARTITIONS": "2"}
    for name in ("ENCORE_PG_DSN", "ENCORE_S3_ENDPOINT", "ENCORE_API_KEYS_SECRET_ID", "ENCORE_SPARK_MASTER"):
        env.pop(name, None)
    os.environ.clear()
    os.environ.update(env)
    from python_jobs.config import Settings
    from python_jobs.stack import services

    settings = Settings.from_env()
    print(f"soak: its own stack in {state} (loopback), {args.minutes:g} min")
    try:
        services.ready(settings)
        result = soak(settings, env, args.minutes, args.users, args.swap_minutes, args.outage_seconds,
                      args.reads_per_second, args.batches_per_second, args.run_nice)
    finally:
        services.down(settings)
    print("\n".join(result.report()))
    t = result.tally
    ok = t.server_errors() == 0 and t.acknowledged == result.landed[0] == result.landed[1] == result.ingested[0] \
        == result.ingested[1]
    print("soak: " + ("every acknowledged event landed and was ingested exactly once; no 5xx" if ok else
                      "FAILED: see the events line and the 5xx count above"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
