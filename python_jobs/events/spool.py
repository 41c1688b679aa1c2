"""Accepted events on local disk, fsynced before the API answers, until they are landed.

Events are appended to an open segment; a segment is sealed (renamed
`.ready`) when it holds `max_bytes` or is `max_seconds` old, as Firehose's
buffering hints flush a buffer, and deleted once every line is delivered. A
process killed at any point leaves whole, acknowledged lines on disk: the
next one seals what it finds and delivers it under the same object names,
so a delivery interrupted between the upload and the delete overwrites its
own objects instead of landing them twice. One process owns a spool (an
exclusive lock on the folder). With `max_total` the spool never holds more
than that many bytes undelivered: an append past it is refused whole
(`SpoolFull`, nothing written), so the API can answer "retry later" without
having acknowledged anything it might lose, and the disk never fills.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

from python_jobs.errors import UserError


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SpoolFull(Exception):
    """The spool holds `max_total` bytes not delivered yet: nothing more is accepted until delivery catches up."""


class Spool:
    def __init__(self, folder: Path, max_bytes: int, max_seconds: float, clock=time.time,
                 max_total: int | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.folder, self.max_bytes, self.max_seconds, self.clock = folder, max_bytes, max_seconds, clock
        self.max_total = max_total
        self._lock_file = open(folder / ".lock", "w")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another process collects events into {folder}; stop it first "
                            "(one `encore-recs serve` per state folder)") from None
        self._lock = threading.Lock()
        self._file = None
        self._path: Path | None = None
        self._opened = 0.0
        self._seq = 0
        for leftover in sorted(folder.glob("*.open")):  # a previous process's buffer: whole lines, acknowledged
            leftover.rename(leftover.with_suffix(".ready"))
        _fsync_dir(folder)
        self.held = sum(segment.stat().st_size for segment in self.pending())  # bytes not delivered yet

    def append(self, lines: list[bytes]) -> None:
        """Write `lines` and fsync them: when this returns, they survive a crash of this process or machine.
        Raises SpoolFull, having written nothing, when they would take the spool past `max_total`."""
        if not lines:
            return
        data = b"".join(line + b"\n" for line in lines)
        with self._lock:
            if self.max_total is not None and self.held + len(data) > self.max_total:
                raise SpoolFull(f"the spool holds {self.held} bytes not delivered yet, its cap is {self.max_total}")
            if self._file is None:
                self._seq += 1
                self._opened = self.clock()
                self._path = self.folder / f"{int(self._opened * 1000):013d}-{os.getpid()}-{self._seq:06d}.open"
                self._file = open(self._path, "ab")  # noqa: SIM115 - closed by seal
                _fsync_dir(self.folder)
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())
            self.held += len(data)

    def seal(self, force: bool = False) -> None:
        """Close the open segment when its buffer is full or old enough (or `force`), making it ready."""
        with self._lock:
            if self._file is None:
                return
            due = self._file.tell() >= self.max_bytes or self.clock() - self._opened >= self.max_seconds
            if not (due or force):
                return
            self._file.close()
            self._path.rename(self._path.with_suffix(".ready"))
            _fsync_dir(self.folder)
            self._file = self._path = None

    def ready(self) -> list[Path]:
        return sorted(self.folder.glob("*.ready"))

    def pending(self) -> list[Path]:
        """Every segment not delivered yet, open or ready."""
        return sorted([*self.folder.glob("*.ready"), *self.folder.glob("*.open")])

    def done(self, segment: Path) -> None:
        with self._lock:
            size = segment.stat().st_size
            segment.unlink()
            _fsync_dir(self.folder)
            self.held = max(0, self.held - size)  # a segment this spool did not write counts as nothing

    def close(self) -> None:
        self.seal(force=True)
        self._lock_file.close()
