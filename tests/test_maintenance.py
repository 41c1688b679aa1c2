"""Iceberg upkeep (`encore-recs maintain`): a published run's tag survives snapshot expiry and still answers time
travel, small files are compacted, and an orphan file is removed on the weekly cadence only."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest

from python_jobs.runs.maintenance import maintain, tag_snapshots
from python_jobs.runs.snapshots import current_snapshots
from python_jobs.runs.table_folders import table_location


@pytest.fixture
def upkeep(spark):
    spark.sql("create database if not exists upkeep_scratch")
    yield "upkeep_scratch"
    spark.sql("drop database if exists upkeep_scratch cascade")


def test_expiry_keeps_the_tagged_run_compaction_merges_and_orphans_go_weekly(spark, s3, settings, upkeep, tmp_path):
    table = f"{upkeep}.daily"
    spark.sql(f"create table {table} (k int, v string) using iceberg")
    for day in range(4):  # four days of small appends: four snapshots, four small files
        spark.sql(f"insert into {table} values ({day}, 'day {day}')")
    published = current_snapshots(spark, upkeep)[table]
    spark.sql(f"insert into {table} values (9, 'after the run')")
    assert tag_snapshots(spark, "20261120T060000Z-daily1", {table: published}) == {table: "run-20261120T060000Z-daily1"}
    assert tag_snapshots(spark, "20261120T060000Z-daily2", {f"{upkeep}.gone": 1})[f"{upkeep}.gone"].startswith(
        "not tagged: ")
    bucket, prefix = table_location(spark, table)
    orphan = f"{prefix}/data/left-by-a-dead-writer.parquet"
    s3.put_object(Bucket=bucket, Key=orphan, Body=b"not committed")
    young = f"{prefix}/data/being-written-now.parquet"  # a write in flight: younger than 3 days, never removed
    s3.put_object(Bucket=bucket, Key=young, Body=b"not committed yet")
    # the S3 server keeps an object as a file: aged four days, as if a writer died then
    aged = (datetime.now(timezone.utc) - timedelta(days=4)).timestamp()
    os.utime(settings.state_dir / "s3" / "data" / bucket / orphan, (aged, aged))

    state = tmp_path / "maintenance.json"
    later = datetime.now(timezone.utc) + timedelta(days=10)
    report = maintain(spark, state, databases=(upkeep,), expire_days=7, retain_last=1, now=later)
    costs = report["tables"][table]
    assert costs["expire"]["deleted_manifest_lists_count"] >= 3  # every untagged snapshot but the current
    assert costs["compact"]["rewritten_data_files_count"] >= 5 and costs["compact"]["added_data_files_count"] == 1
    assert report["orphans_ran"] and costs["orphans"]["rows"] == 1
    assert all(cost["seconds"] >= 0 for cost in costs.values())
    # the run's snapshot outlives expiry under its tag, and reads what the run read
    rows = spark.sql(f"select k from {table} version as of 'run-20261120T060000Z-daily1' order by k").collect()
    assert [r.k for r in rows] == [0, 1, 2, 3]
    assert sorted(r.k for r in spark.table(table).collect()) == [0, 1, 2, 3, 9]
    assert s3.list_objects_v2(Bucket=bucket, Prefix=orphan).get("KeyCount", 0) == 0
    assert s3.list_objects_v2(Bucket=bucket, Prefix=young)["KeyCount"] == 1

    # a day later, orphans are not due again; --orphans forces them
    again = maintain(spark, state, databases=(upkeep,), now=later + timedelta(days=1))
    assert not again["orphans_ran"] and "orphans" not in again["tables"][table]
    assert json.loads(state.read_text())["orphans_at"] == later.isoformat()
    assert maintain(spark, state, databases=(upkeep,), orphans=True, now=later + timedelta(days=1))["orphans_ran"]
