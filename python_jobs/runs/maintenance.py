"""Iceberg upkeep of the lake's tables: each published run's snapshots tagged, old snapshots expired, small files
compacted, orphan files removed; what each cost.

Every build of a mart adds a snapshot (a merge adds small files too), so without upkeep the metadata, the files
and the planning time grow with every day. Publish tags the snapshot of each table the run read
(`run-<run_id>`, kept `TAG_RETAIN_DAYS`): "what did the run of 20 November see" stays answerable by time travel
(`select ... from marts.x version as of 'run-<id>'`) after expiry, which never removes a tagged snapshot.
`encore-recs maintain` (and the DAG's `maintain` task after each run) expires the untagged snapshots older than
`expire_days` (keeping the last `retain_last`), compacts the small files merges leave (Iceberg's bin-packing
rewrites only files under its size target, so a day's cost follows what the day added), and once a week removes
files no snapshot references (a write that died between putting a file and committing it).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

from python_jobs.runs.snapshots import provider

TAG_RETAIN_DAYS = 400  # a year of runs and a month more: last year's same day stays comparable
ORPHANS_EVERY = timedelta(days=7)
ORPHANS_OLDER_THAN = timedelta(days=3)  # never a file a running write may still commit


def tag(run_id: str) -> str:
    return f"run-{run_id}"


def tag_snapshots(spark, run_id: str, snapshots: dict[str, int]) -> dict[str, str]:
    """Tag each table's snapshot the run read as `run-<run_id>` (replacing a re-run's); per table the tag, or why
    it could not be tagged (a table dropped since): the run is published either way."""
    tagged = {}
    for table, snapshot in sorted(snapshots.items()):
        try:
            spark.sql(f"alter table {table} create or replace tag `{tag(run_id)}` as of version {int(snapshot)} "
                      f"retain {TAG_RETAIN_DAYS} days")
            tagged[table] = tag(run_id)
        except Exception as exc:  # noqa: BLE001 - a missing tag costs time travel by name, never the publish
            tagged[table] = "not tagged: " + (str(exc).splitlines() or [type(exc).__name__])[0][:200]
    return tagged


def iceberg_tables(spark, databases: tuple[str, ...]) -> list[str]:
    tables = []
    for database in databases:
        if not spark.catalog.databaseExists(database):
            continue
        for table in spark.catalog.listTables(database):
            name = f"{database}.{table.name}"
            if not table.isTemporary and table.tableType != "VIEW" and provider(spark, name) == "iceberg":
                tables.append(name)
    return sorted(tables)


def _call(spark, procedure: str, **arguments) -> dict:
    """One Iceberg procedure on the session catalog; its output row (counts) as a dict, summed over rows."""
    args = ", ".join(f"{name} => {value}" for name, value in arguments.items())
    rows = spark.sql(f"call spark_catalog.system.{procedure}({args})").collect()
    totals: dict = {}
    for row in rows:
        for key, value in row.asDict().items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                totals[key] = totals.get(key, 0) + value
    return {**totals, "rows": len(rows)}


def _stamp(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.astimezone(timezone.utc).strftime('%Y-%m-%d %H:%M:%S')}'"


def maintain(spark, state_file, databases: tuple[str, ...] = ("marts", "staging", "events", "run_history"),
             expire_days: int = 7, retain_last: int = 3, orphans: bool | None = None,
             now: datetime | None = None) -> dict:
    """Expire, compact and (weekly, or when `orphans`) remove orphans on every Iceberg table of `databases`;
    {"tables": {table: {step: {seconds, counts}}}, "orphans_ran": bool, ...}. `state_file` remembers when the
    orphans were last removed."""
    now = now or datetime.now(timezone.utc)
    last = json.loads(state_file.read_text()) if state_file.exists() else {}
    due = orphans if orphans is not None else (
        "orphans_at" not in last or now - datetime.fromisoformat(last["orphans_at"]) >= ORPHANS_EVERY)
    report: dict = {"at": now.isoformat(), "expire_days": expire_days, "retain_last": retain_last,
                    "orphans_ran": bool(due), "tables": {}}
    for table in iceberg_tables(spark, databases):
        steps = {}
        for step, procedure, arguments in (
            ("expire", "expire_snapshots", {"table": f"'{table}'", "older_than": _stamp(now - timedelta(days=expire_days)),
                                            "retain_last": retain_last}),
            # a file with any delete file against it is rewritten too: the merge-on-read marts leave a day's
            # position deletes, which every read applies until then
            ("compact", "rewrite_data_files", {"table": f"'{table}'",
                                               "options": "map('delete-file-threshold', '1')"}),
            # files younger than that by the real clock are never candidates (Iceberg refuses under a day)
            *([("orphans", "remove_orphan_files", {"table": f"'{table}'", "older_than": _stamp(
                min(now, datetime.now(timezone.utc)) - ORPHANS_OLDER_THAN)})] if due else []),
        ):
            began = time.time()
            steps[step] = {**_call(spark, procedure, **arguments), "seconds": round(time.time() - began, 2)}
        report["tables"][table] = steps
    report["seconds"] = round(sum(s["seconds"] for t in report["tables"].values() for s in t.values()), 2)
    if due:
        last["orphans_at"] = now.isoformat()
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps({**last, "last_run": report}, indent=1))
    return report
