"""Expire the metastore locks a stopped process left behind.

Every Iceberg commit through the Hive catalog takes an exclusive lock in the
metastore's `HIVE_LOCKS` and heartbeats it (`iceberg.hive.lock-heartbeat-
interval-ms`, set to `HEARTBEAT_MS` in `stack.spark`) until it commits. A
process killed inside a commit leaves its lock behind. A metastore server
expires such locks in its housekeeping thread (locks outside a transaction
whose heartbeat is older than `hive.txn.timeout`), but Spark's embedded client
has no such thread, so the next commit to that table waited for ever.

`kept()` is that housekeeping for the length of a stage: a daemon thread
deleting, every `every` seconds, the locks outside a transaction whose last
heartbeat (the database's clock, milliseconds) is older than `stale_after`
seconds, which a live lock cannot be. On EMR the catalog is Glue and there are
no such locks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from python_jobs.config import Settings

HEARTBEAT_MS = 10_000
STALE_AFTER_S = 60  # six missed heartbeats; `hive.txn.timeout` says the same to a metastore server
EVERY_S = 15


def expire_stale(settings: Settings, stale_after: float = STALE_AFTER_S) -> list[tuple[str, str]]:
    """Delete the stale locks; the (database, table) of each, for the log."""
    from python_jobs.stack.metastore import _connect, connection_params

    conn = _connect(connection_params(settings))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "delete from hive_locks where coalesce(hl_txnid, 0) = 0 "
                "and hl_last_heartbeat < (extract(epoch from clock_timestamp()) * 1000)::bigint - %s "
                "returning hl_db, coalesce(hl_table, '')",
                (int(stale_after * 1000),))
            return sorted(set(cur.fetchall()))
    finally:
        conn.close()


@contextmanager
def kept(settings: Settings, log: Callable[[str], None] = print, stale_after: float = STALE_AFTER_S,
         every: float = EVERY_S) -> Iterator[None]:
    """Expire stale locks now and every `every` seconds until the block ends (nothing on EMR)."""
    from python_jobs.stack.metastore import managed_by_cluster

    if managed_by_cluster(settings):
        yield
        return
    stop = threading.Event()

    def sweep() -> None:
        while True:
            try:
                for db, table in expire_stale(settings, stale_after):
                    log(f"expired the metastore lock on {db}.{table}: its holder stopped heartbeating "
                        f"over {stale_after:.0f} s ago (a process killed inside a commit)")
            except Exception:  # noqa: BLE001 - the metastore may be down; the stage itself says so
                pass
            if stop.wait(every):
                return

    thread = threading.Thread(target=sweep, name="metastore-lock-keeper", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
