"""Load a published run into memory after checking every file against its manifest, and keep the newest one.

A run is served only whole: each file's SHA-256 and line count must match
the manifest, or the run is refused and the previous one stays. Users'
lines are kept as the published bytes (parsed on request), so 100,000 users
cost about their JSON size, not a tree of Python objects.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass, field

from python_jobs.config import Settings
from python_jobs.models.rules import ListRules

log = logging.getLogger("encore.serve")


class RunRejected(Exception):
    """A published run that does not match its manifest."""


@dataclass(frozen=True)
class ServedRun:
    run_id: str
    published_at: str
    metrics: dict
    model_params: dict
    users: dict[int, bytes]  # uid -> the published JSON line
    by_name: dict[str, int]
    similar: dict[int, bytes]  # listing_id -> the published JSON line
    files: int = 0
    models: dict[str, dict[int, bytes]] = field(default_factory=dict)  # model -> uid -> that model's list
    listings: dict[int, dict] = field(default_factory=dict)  # listing_id -> details, for the model lists' ids
    experiments: list[dict] = field(default_factory=list)  # the definitions the run was published with
    rules: ListRules = field(default_factory=ListRules)  # the list rules the run was published with


def _lines(body: bytes) -> list[bytes]:
    return [line for line in body.split(b"\n") if line]


def load_run(client, bucket: str, manifest_key: str) -> ServedRun:
    """Download the manifest and every file it lists; check each; build the lookups."""
    manifest = json.loads(client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    users: dict[int, bytes] = {}
    by_name: dict[str, int] = {}
    similar: dict[int, bytes] = {}
    models: dict[str, dict[int, bytes]] = {}
    listings: dict[int, dict] = {}
    for entry in manifest["files"]:
        body = client.get_object(Bucket=bucket, Key=entry["key"])["Body"].read()
        if hashlib.sha256(body).hexdigest() != entry["sha256"]:
            raise RunRejected(f"{entry['key']} does not match its manifest checksum")
        lines = _lines(body)
        if len(lines) != entry["rows"]:
            raise RunRejected(f"{entry['key']} holds {len(lines)} lines, the manifest says {entry['rows']}")
        if entry["kind"] == "recommendations":
            for line in lines:
                users[int(json.loads(line)["uid"])] = line
        elif entry["kind"] == "user_index":
            for line in lines:
                row = json.loads(line)
                by_name[row["user_name"]] = int(row["uid"])
        elif entry["kind"] == "similar_listings":
            for line in lines:
                similar[int(json.loads(line)["listing_id"])] = line
        elif entry["kind"] == "model_lists":  # the model is in the path (and the manifest), not in the line
            for line in lines:
                models.setdefault(entry["model"], {})[int(json.loads(line)["uid"])] = line
        elif entry["kind"] == "listings":
            for line in lines:
                row = json.loads(line)
                listings[int(row.pop("listing_id"))] = row
    expected = manifest["row_counts"].get("recommendations", 0)
    if len(users) != expected:
        raise RunRejected(f"{len(users)} distinct users loaded, the manifest counts {expected}")
    return ServedRun(manifest["run_id"], manifest["published_at"], manifest.get("metrics", {}),
                     manifest.get("model_params", {}), users, by_name, similar, len(manifest["files"]), models,
                     listings, manifest.get("experiments", []), ListRules.from_dict(manifest.get("rules", {})))


class RunHolder:
    """The run being served; `refresh` swaps in a newer published run only once it is loaded and checked."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.current: ServedRun | None = None
        self.rejected: dict[str, str] = {}
        self.on_swap: list = []  # called with each newly served run (the fresh events forget what it learned)
        self._lock = threading.Lock()

    def refresh(self) -> bool:
        """Look at `latest`; load it when it names a new run. True when a new run is now served."""
        from python_jobs.publish.publish import read_latest
        from python_jobs.infra.s3 import s3_client

        latest = read_latest(self.settings)
        if latest is None or (self.current and latest["run_id"] == self.current.run_id):
            return False
        if latest["run_id"] in self.rejected:
            return False
        with self._lock:
            try:
                run = load_run(s3_client(self.settings), self.settings.publish_bucket, latest["manifest_key"])
            except RunRejected as exc:
                self.rejected[latest["run_id"]] = str(exc)
                log.error("run %s refused, still serving %s: %s", latest["run_id"],
                          self.current.run_id if self.current else "nothing", exc)
                return False
            self.current = run
        for listener in self.on_swap:
            listener(run)
        log.info("serving run %s (%d users)", run.run_id, len(run.users))
        return True

    def check(self) -> None:
        """`refresh` that never raises: an unreachable store or a missing bucket leaves the current run served."""
        try:
            self.refresh()
        except Exception as exc:
            log.error("could not check latest (still serving %s): %s",
                      self.current.run_id if self.current else "nothing",
                      str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    def poll(self, seconds: float, stop: threading.Event) -> None:
        while not stop.wait(seconds):
            self.check()
