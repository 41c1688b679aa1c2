"""The Iceberg snapshot each table of a database is at: what a run read, recorded so it can be found again.

The marts stage records them once dbt has built the marts (every later stage of the run reads those tables and
nothing writes them meanwhile: one run at a time holds the state folder's lock); the summary keeps them under
`snapshots` and the published manifest repeats them, so "what did that run see" is a time-travel query
(`select ... from marts.x version as of <id>`).
"""

from __future__ import annotations


def provider(spark, table: str) -> str | None:
    """The table's format as Spark's own DESCRIBE says it (`iceberg`, `parquet`); `SHOW TABLE EXTENDED` says `hive`
    for an Iceberg table under SparkSessionCatalog."""
    rows = spark.sql(f"describe table extended {table}").collect()
    return next((r.data_type for r in rows if r.col_name == "Provider"), None)


def current_snapshots(spark, database: str) -> dict[str, int]:
    """`{"<database>.<table>": snapshot id}` for every Iceberg table of `database` that has a snapshot."""
    snapshots = {}
    if not spark.catalog.databaseExists(database):
        return snapshots
    for table in spark.catalog.listTables(database):
        if table.isTemporary or table.tableType == "VIEW":
            continue
        name = f"{database}.{table.name}"
        if provider(spark, name) != "iceberg":
            continue
        current = spark.sql(f"select snapshot_id from {name}.history where is_current_ancestor "
                            "order by made_current_at desc limit 1").collect()
        if current:
            snapshots[name] = int(current[0].snapshot_id)
    return snapshots
