"""The events API's engine: check a batch, keep each event once, spool it, and deliver the spool in the
background.

`accept` returns only after the accepted events are fsynced in the spool; a
resent `event_id` is acknowledged again but not spooled again (the ids of
the last `REMEMBER` events, and of everything still in the spool after a
restart; beyond that the events staging model keeps one row per id). The
window is bounded and allocated when the process starts (`RecentIds`: 1.6 MB
for 100,000 ids), so a process serving for weeks never grows with the ids it
saw.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone

from python_jobs.events.recent_ids import RecentIds
from python_jobs.events.schema import check
from python_jobs.events.spool import Spool

log = logging.getLogger("encore.events")
REMEMBER = 100_000  # half an hour of events at 50 a second; a client retries within seconds


class Collector:
    def __init__(self, spool: Spool, sink, on_event=None, clock=lambda: datetime.now(timezone.utc)) -> None:
        self.spool, self.sink, self.clock, self.on_event = spool, sink, clock, on_event
        self._recent = RecentIds(REMEMBER)
        self._lock = threading.Lock()
        self.delivered_objects = 0
        self.last_error: str | None = None
        for segment in spool.pending():
            for line in segment.read_bytes().splitlines():
                try:
                    self._recent.add(json.loads(line)["event_id"])
                except (ValueError, KeyError, TypeError):
                    pass

    def accept(self, events: list) -> dict:
        """{accepted, duplicates, rejected: [{index, event_id?, reason}]} for one batch. Raises the spool's
        SpoolFull with nothing kept or remembered: the same batch sent again later is accepted then."""
        now = self.clock()
        fresh, rejected, duplicates = [], [], 0
        with self._lock:
            batch_ids = set()
            for index, event in enumerate(events):
                landed, why = check(event, now)
                if why:
                    entry = {"index": index, "reason": why}
                    if isinstance(event, dict) and isinstance(event.get("event_id"), str):
                        entry["event_id"] = event["event_id"][:128]
                    rejected.append(entry)
                elif landed["event_id"] in self._recent or landed["event_id"] in batch_ids:
                    duplicates += 1
                else:
                    batch_ids.add(landed["event_id"])
                    fresh.append(landed)
            self.spool.append([json.dumps(e, separators=(",", ":")).encode() for e in fresh])
            for event in fresh:
                self._recent.add(event["event_id"])
        if self.on_event is not None:
            for event in fresh:
                self.on_event(event)
        return {"accepted": len(fresh), "duplicates": duplicates, "rejected": rejected}

    def deliver(self, force: bool = False) -> int:
        """Seal the buffer when due (or `force`) and land every ready segment; the objects written."""
        self.spool.seal(force=force)
        written = 0
        for segment in self.spool.ready():
            written += self.sink.deliver(segment, segment.read_bytes().splitlines())
            self.spool.done(segment)
        self.delivered_objects += written
        return written

    def run(self, stop: threading.Event, every: float = 1.0) -> None:
        """Deliver until `stop`, then flush what is buffered; an unreachable store is retried, never fatal."""
        while True:
            stopping = stop.wait(every)
            try:
                self.deliver(force=stopping)
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - the events stay in the spool for the next attempt
                message = (str(exc).splitlines() or [type(exc).__name__])[0]
                if message != self.last_error:
                    log.warning("events not delivered yet, kept in the spool: %s", message)
                self.last_error = message
            if stopping:
                return
