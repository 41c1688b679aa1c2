"""The Iceberg snapshot each table of a database is at: what a run read, recorded so it can be found again.

The marts stage records them once dbt has built the marts (every later stage of the run reads those tables and
nothing writes them meanwhile: one run at a time holds the state folder's lock); the summary keeps them under
`snapshots` and the published manifest repeats them, so "what did that run see" is a time-travel query
(`select ... from marts.x version as of <id>`). The later stages read the marts at those snapshots
(`pinned_table`), and a backfill reads them as they stood at its as-of time (`snapshots_as_of`) instead of
rebuilding them from today's staging.
"""

from __future__ import annotations


def provider(spark, table: str) -> str | None:
    """The table's format as Spark's own DESCRIBE says it (`iceberg`, `parquet`); `SHOW TABLE EXTENDED` says `hive`
    for an Iceberg table under SparkSessionCatalog."""
    rows = spark.sql(f"describe table extended {table}").collect()
    return next((r.data_type for r in rows if r.col_name == "Provider"), None)


def table_properties(spark, table: str) -> dict[str, str]:
    """The table's properties (`show tblproperties`): what the incremental marts record on themselves."""
    return {r.key: r.value for r in spark.sql(f"show tblproperties {table}").collect()}


def current_snapshots(spark, database: str) -> dict[str, int]:
    """`{"<database>.<table>": snapshot id}` for every Iceberg table of `database` that has a snapshot."""
    snapshots = {}
    if not spark.catalog.databaseExists(database):
        return snapshots
    for table in spark.catalog.listTables(database):
        if table.isTemporary or table.tableType == "VIEW":
            continue
        name = f"{database}.{table.name}"
        # just built, maybe by another process (the cluster's Thrift server) and dropped and made again by a full
        # refresh: this session's catalog may still cache the table as it was, with a snapshot now gone
        spark.catalog.refreshTable(name)
        if provider(spark, name) != "iceberg":
            continue
        current = spark.sql(f"select snapshot_id from {name}.history where is_current_ancestor "
                            "order by made_current_at desc limit 1").collect()
        if current:
            snapshots[name] = int(current[0].snapshot_id)
    return snapshots


def pinned_table(spark, name: str, pinned: dict | None):
    """Table `name` at the snapshot `pinned` names for it (the run's), else as it is now."""
    snapshot = (pinned or {}).get(name)
    if snapshot is None:
        return spark.table(name)
    return spark.sql(f"select * from {name} version as of {int(snapshot)}")


def snapshots_as_of(spark, tables: list[str], moment) -> tuple[dict[str, int], dict[str, str], list[str]]:
    """Per Iceberg table, the snapshot that stood for it at `moment` (aware datetime): the newer of the snapshot
    current then and the tag of a published run as of no later (`run-<run_id>`, whose snapshot was made just
    after its as-of time); (snapshots, how each was found, tables with neither)."""
    from python_jobs.errors import UserError
    from python_jobs.runs.run_ids import run_time

    epoch = moment.timestamp()
    found, how, missing = {}, {}, []
    for table in tables:
        if not spark.catalog.tableExists(table):
            missing.append(table)
            continue
        if spark.catalog.getTable(table).tableType == "VIEW":
            how[table] = "a view: read as it is"  # over the landed staging, which has no snapshots
            continue
        if provider(spark, table) != "iceberg":
            missing.append(table)
            continue
        best = None
        for ref in spark.sql(f"select name, snapshot_id from {table}.refs where type = 'TAG'").collect():
            try:
                when = run_time(ref.name.removeprefix("run-")).timestamp() if ref.name.startswith("run-") else None
            except UserError:  # a tag someone named by hand
                when = None
            if when is not None and when <= epoch and (best is None or when > best[0]):
                best = (when, int(ref.snapshot_id), f"tag {ref.name}")
        current = spark.sql(f"select snapshot_id, unix_timestamp(made_current_at) as at from {table}.history "
                            f"where unix_timestamp(made_current_at) <= {epoch} order by made_current_at desc "
                            "limit 1").collect()
        if current and (best is None or current[0].at > best[0]):
            best = (current[0].at, int(current[0].snapshot_id), "current then")
        if best is None and not spark.sql(f"select 1 from {table}.snapshots limit 1").collect():
            how[table] = "empty since it was made: read as it is"  # no snapshot ever: no rows then or now
        elif best is None:
            missing.append(table)
        else:
            found[table], how[table] = best[1], best[2]
    return found, how, missing
