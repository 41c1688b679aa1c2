"""Iceberg in the shared catalog: `spark_catalog` is Iceberg's SparkSessionCatalog over the Postgres Hive metastore,
so Iceberg tables (MERGE, snapshots) and plain Parquet tables live side by side under one name, and every commit
takes and releases a lock in the metastore's lock tables (HIVE_LOCKS), which the Hive catalog needs."""

from __future__ import annotations

import time

import pytest


@pytest.fixture
def scratch(spark):
    spark.sql("create database if not exists iceberg_scratch")
    yield "iceberg_scratch"
    spark.sql("drop database if exists iceberg_scratch cascade")


def _metastore_rows(settings, sql: str) -> list[tuple]:
    from python_jobs.stack.metastore import _connect, connection_params

    conn = _connect(connection_params(settings))
    try:
        with conn, conn.cursor() as cur:  # committed: some statements change the lock tables
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def test_iceberg_tables_merge_and_snapshot_beside_parquet_ones(spark, settings, scratch):
    locks_before = _metastore_rows(settings, "select nl_next from next_lock_id")[0][0]
    spark.sql(f"create table {scratch}.t (k int, v string) using iceberg")
    spark.sql(f"insert into {scratch}.t values (1, 'a'), (2, 'b')")
    spark.sql(f"merge into {scratch}.t t using (select 2 k, 'B' v union all select 3, 'c') s on t.k = s.k "
              "when matched then update set * when not matched then insert *")
    spark.sql(f"create table {scratch}.p using parquet as select 1 x")

    assert [tuple(r) for r in spark.sql(f"select k, v from {scratch}.t order by k").collect()] == [
        (1, "a"), (2, "B"), (3, "c")]
    details = {r.col_name: r.data_type for r in spark.sql(f"describe table extended {scratch}.t").collect()}
    assert details["Provider"] == "iceberg"
    assert details["Location"].startswith(f"s3a://{settings.lake_bucket}/warehouse/")
    snapshots = spark.sql(f"select snapshot_id, operation from {scratch}.t.snapshots order by committed_at").collect()
    assert [s.operation for s in snapshots] == ["append", "overwrite"]
    assert spark.table(f"{scratch}.p").collect()[0].x == 1
    # three Iceberg commits, each under a metastore lock, none left behind
    assert _metastore_rows(settings, "select nl_next from next_lock_id")[0][0] >= locks_before + 3
    assert _metastore_rows(settings, "select count(*) from hive_locks")[0][0] == 0


def test_events_start_afresh_twice_though_a_dropped_parquet_table_keeps_its_folder(spark, settings, s3):
    """Under SparkSessionCatalog a managed Parquet table's drop leaves its folder (Iceberg's Hive catalog drops the
    entry only): the events stage, emptying bronze when its checkpoint is gone, clears the folder before it
    creates the table again (it stopped with LOCATION_ALREADY_EXISTS)."""
    from python_jobs.events.ingest import BRONZE, ingest

    for attempt in range(2):
        ingest(spark, s3, settings.lake_bucket, f"20261206T000000Z-0000{attempt}", False, True)
        spark.sql(f"insert into {BRONZE} select * from {BRONZE} limit 0")
    assert spark.catalog.tableExists(BRONZE)


def test_clearing_orphans_keeps_a_folder_a_table_uses_under_another_name(spark, settings, s3):
    """Only folders named after no table are looked into, and one that a table uses by its location is kept:
    the stray folder goes, the tables' folders (by name, and by location) stay."""
    from python_jobs.runs.table_folders import clear_orphans

    base = f"s3a://{settings.lake_bucket}/warehouse/orphans_check.db"
    spark.sql(f"create database if not exists orphans_check location '{base}'")
    try:
        spark.sql("create table orphans_check.named (x int) using parquet")
        spark.sql(f"create table orphans_check.moved (x int) using parquet location '{base}/elsewhere'")
        spark.sql("insert into orphans_check.named values (1)")
        spark.sql("insert into orphans_check.moved values (2)")
        s3.put_object(Bucket=settings.lake_bucket, Key="warehouse/orphans_check.db/stray/part-0.parquet", Body=b"x")
        assert clear_orphans(spark, s3, "orphans_check") == ["stray"]
        assert spark.table("orphans_check.moved").collect()[0].x == 2
        assert spark.table("orphans_check.named").collect()[0].x == 1
        assert s3.list_objects_v2(Bucket=settings.lake_bucket,
                                  Prefix="warehouse/orphans_check.db/stray/").get("KeyCount", 0) == 0
    finally:
        spark.sql("drop database if exists orphans_check cascade")


def test_a_lock_left_by_a_process_killed_in_a_commit_is_expired_and_the_next_commit_goes_through(
        spark, settings, scratch):
    """Spark's embedded metastore client never expires a lock (a metastore server's housekeeping does): the lock of
    a run killed inside an Iceberg commit held the next run's commit to that table for ever. `kept` expires a lock
    that stopped heartbeating, and only such a lock: not a live one, not one of a Hive transaction."""
    from python_jobs.stack.metastore_locks import expire_stale, kept

    spark.sql(f"create table {scratch}.held (k int) using iceberg")
    ids = _metastore_rows(settings, "update next_lock_id set nl_next = nl_next + 2 returning nl_next - 2")[0][0]
    _metastore_rows(settings, f"""
        insert into hive_locks (hl_lock_ext_id, hl_lock_int_id, hl_txnid, hl_db, hl_table, hl_lock_state,
                                hl_lock_type, hl_last_heartbeat, hl_acquired_at, hl_user, hl_host)
        values ({ids}, 1, 0, '{scratch}', 'held', 'a', 'e',
                (extract(epoch from clock_timestamp()) * 1000)::bigint, 0, 'killed', 'localhost'),
               ({ids + 1}, 1, 7, '{scratch}', 'in_a_txn', 'a', 'e', 0, 0, 'hive', 'localhost')
        returning 1""")
    try:
        assert expire_stale(settings) == []  # heartbeat a moment ago: a live holder, by all we know
        logged: list[str] = []
        with kept(settings, logged.append, stale_after=2, every=0.5):
            spark.sql(f"insert into {scratch}.held values (1)")
        assert spark.table(f"{scratch}.held").count() == 1
        assert [line for line in logged if f"{scratch}.held" in line]
        assert _metastore_rows(settings, "select hl_lock_ext_id from hive_locks") == [(ids + 1,)]
    finally:
        _metastore_rows(settings, f"delete from hive_locks where hl_lock_ext_id in ({ids}, {ids + 1}) returning 1")


def test_a_lake_whose_events_tables_are_parquet_ingests_every_landed_event_again_into_iceberg(
        stack, spark, s3, no_events_left):
    """A lake made before the events tables were Iceberg holds them as Parquet: the events stage forgets its
    checkpoint, and the stream reads every landed object again into new Iceberg tables (the incremental events
    table then sees bronze lost its batches, and is rebuilt in full by the marts stage)."""
    import pandas as pd

    from python_jobs.events.ingest import BRONZE, BRONZE_SCHEMA, QUARANTINE, QUARANTINE_SCHEMA, bronze_batches
    from python_jobs.events.landing import clear_landed
    from python_jobs.events.synthetic import land
    from python_jobs.jobs import StageContext, events
    from python_jobs.runs.run_state import RunState
    from python_jobs.runs.snapshots import provider
    from python_jobs.runs.table_folders import drop_with_folder

    at = time.time() - 3600
    landed = pd.DataFrame({"event_id": [f"legacy-{n}" for n in range(5)], "type": "view", "uid": 1,
                           "listing_id": range(1, 6), "at": at, "received_at": at, "session_id": "s",
                           "watch_seconds": None, "variant": None, "position": None})
    clear_landed(s3, stack.lake_bucket)  # the landed objects and the checkpoint of earlier modules' runs
    land(s3, stack.lake_bucket, landed, "legacy")
    first = events(StageContext(stack, RunState.load(stack, "20261208T010000Z-legac1")))
    assert first["ingested"] >= 5 and provider(spark, BRONZE) == "iceberg"
    for table, schema in ((BRONZE, BRONZE_SCHEMA), (QUARANTINE, QUARANTINE_SCHEMA)):  # as an older lake made them
        drop_with_folder(spark, s3, table)
        spark.createDataFrame([], schema + ", ingest_batch string").write.format("parquet") \
            .partitionBy("ingest_batch").saveAsTable(table)
    logged: list[str] = []
    again = events(StageContext(stack, RunState.load(stack, "20261208T010001Z-legac2"), logged.append))
    assert [provider(spark, t) for t in (BRONZE, QUARANTINE)] == ["iceberg", "iceberg"]
    assert any("still Parquet" in line for line in logged)
    assert (again["lines"], again["ingested"]) == (first["lines"], first["ingested"])  # every landed line, again
    ids = {r.event_id for r in spark.table(BRONZE).select("event_id").collect()}
    assert {f"legacy-{n}" for n in range(5)} <= ids and spark.table(BRONZE).count() == again["ingested"]
    assert all(batch.startswith("20261208T010001Z-legac2-") for batch in bronze_batches(spark))
