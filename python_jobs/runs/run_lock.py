"""One `encore-recs run` at a time per state folder.

Two runs at once race on the catalog (one creates a table the other drops),
so the second refuses at once, naming the run in progress. The lock is an
flock on `<state>/run.lock`: the kernel frees it when its process ends, so a
run killed with -9 never leaves it held.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from python_jobs.errors import UserError


@contextmanager
def one_run(state_dir: Path, run_id: str) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    handle = open(state_dir / "run.lock", "a+")  # noqa: SIM115 - held for the run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another run"
        handle.close()
        raise UserError(f"run {holder} is in progress on {state_dir}; wait for it to end (one run at a time per "
                        "state folder), or point ENCORE_STATE_DIR elsewhere") from None
    handle.truncate(0)
    handle.write(f"{run_id} (pid {os.getpid()})")
    handle.flush()
    try:
        yield
    finally:
        handle.truncate(0)
        handle.close()
