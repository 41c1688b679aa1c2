"""The `events` stage: new landed event objects into the bronze table, exactly once per object.

Spark Structured Streaming's file source over `s3a://<lake>/events/` with
`Trigger.AvailableNow` reads every object not seen before (its checkpoint,
on S3 under the lake, remembers which) and stops. Each micro-batch is split
by `split_lines` into events that parse and pass the checks, written to
`events.bronze_app_events`, and the rest, written with their reason to
`events.quarantined_app_events`; both partitions are named after the run and
the batch, so a batch replayed after a crash overwrites its own rows. The
reconciliation counts, per run: lines landed = ingested + quarantined.
"""

from __future__ import annotations

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from python_jobs.events.landing import CHECKPOINT, PREFIX
from python_jobs.events.schema import MAX_ID, TYPES

BRONZE = "events.bronze_app_events"
QUARANTINE = "events.quarantined_app_events"
EVENT_SCHEMA = ("event_id string, type string, uid bigint, listing_id bigint, at string, received_at string, "
                "session_id string, watch_seconds double")
BRONZE_SCHEMA = ("event_id string, type string, uid int, listing_id int, event_at timestamp, received_at timestamp, "
                 "session_id string, watch_seconds double, source_object string")
QUARANTINE_SCHEMA = "line string, reason string, source_object string"
TIME = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"


def _time(column: str):
    return F.coalesce(F.to_timestamp(F.col(f"e.{column}"), TIME), F.to_timestamp(F.col(f"e.{column}")))


def check_lines(lines: DataFrame) -> DataFrame:
    """`lines` (value, source_object) parsed once, with the times and `reason` (null for a good event)."""
    parsed = lines.select("value", "source_object", F.from_json("value", EVENT_SCHEMA).alias("e")).select(
        "*", _time("at").alias("event_at"), _time("received_at").alias("received_ts"))
    ids_ok = lambda c: F.col(f"e.{c}").between(1, MAX_ID)  # noqa: E731
    reason = (
        F.when(F.col("e").isNull() | F.col("e.event_id").isNull(), "not a JSON event with an event_id")
        .when(~F.col("e.type").isin(*TYPES) | F.col("e.type").isNull(), "unknown or missing type")
        .when(~ids_ok("uid") | F.col("e.uid").isNull(), "uid missing or out of range")
        .when(~ids_ok("listing_id") | F.col("e.listing_id").isNull(), "listing_id missing or out of range")
        .when(F.col("event_at").isNull(), "at missing or not a time")
        .when(F.col("received_ts").isNull(), "received_at missing or not a time")
        .when(F.col("e.watch_seconds") < 0, "negative watch_seconds")
    )
    return parsed.withColumn("reason", reason)


def split(checked: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(good events as bronze rows, quarantined lines with their reason) of `check_lines`' frame."""
    good = checked.where(F.col("reason").isNull()).select(
        F.col("e.event_id").alias("event_id"), F.col("e.type").alias("type"), F.col("e.uid").cast("int").alias("uid"),
        F.col("e.listing_id").cast("int").alias("listing_id"), "event_at", F.col("received_ts").alias("received_at"),
        F.col("e.session_id").alias("session_id"), F.col("e.watch_seconds").alias("watch_seconds"), "source_object")
    bad = checked.where(F.col("reason").isNotNull()).select(F.col("value").alias("line"), "reason", "source_object")
    return good, bad


def split_lines(lines: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(good events, quarantined lines with a reason) from `lines` (value, source_object); every line ends in
    exactly one of them."""
    return split(check_lines(lines))


def ensure_tables(spark: SparkSession, fresh_start: bool) -> None:
    """The two tables; emptied when the checkpoint is gone (a new lake, or `generate` replaced the events), so
    bronze always holds exactly what the checkpoint says was read."""
    for table, schema in ((BRONZE, BRONZE_SCHEMA), (QUARANTINE, QUARANTINE_SCHEMA)):
        if fresh_start:
            spark.sql(f"drop table if exists {table}")
        if not spark.catalog.tableExists(table):
            spark.createDataFrame([], schema + ", ingest_batch string").write.format("parquet") \
                .partitionBy("ingest_batch").saveAsTable(table)


def ingest(spark: SparkSession, client, lake_bucket: str, run_id: str, has_objects: bool, fresh_start: bool) -> dict:
    """Ingest every object landed since the last run; the counts of this run's batches. client: S3; fresh_start:
    no checkpoint yet."""
    from python_jobs.runs.table_folders import clear_orphans

    spark.sql(f"create database if not exists events location 's3a://{lake_bucket}/warehouse/events.db'")
    clear_orphans(spark, client, "events")
    ensure_tables(spark, fresh_start)
    counts = {"batches": 0, "objects": 0, "lines": 0, "ingested": 0, "quarantined": 0, "reasons": {}}
    if not has_objects:  # the file source needs its folder to exist; nothing has landed yet
        return counts

    def batch(frame: DataFrame, batch_id: int) -> None:
        name = f"{run_id}-{batch_id:06d}"
        checked = check_lines(frame.select("value", F.input_file_name().alias("source_object"))).persist(
            StorageLevel.MEMORY_AND_DISK)  # each landed line read and parsed once
        good, bad = split(checked)
        good.withColumn("ingest_batch", F.lit(name)).write.insertInto(BRONZE, overwrite=True)
        bad.withColumn("ingest_batch", F.lit(name)).write.insertInto(QUARANTINE, overwrite=True)
        landed = checked.agg(F.count("*"), F.countDistinct("source_object")).first()
        checked.unpersist()
        ingested = spark.table(BRONZE).where(F.col("ingest_batch") == name).count()
        quarantined = spark.table(QUARANTINE).where(F.col("ingest_batch") == name)
        by_reason = {r.reason: r["count"] for r in quarantined.groupBy("reason").count().collect()}
        if landed[0] != ingested + sum(by_reason.values()):
            raise RuntimeError(f"events batch {name}: {landed[0]} lines landed, {ingested} ingested + "
                               f"{sum(by_reason.values())} quarantined")
        counts["batches"] += 1
        counts["objects"] += landed[1]
        counts["lines"] += landed[0]
        counts["ingested"] += ingested
        counts["quarantined"] += sum(by_reason.values())
        for why, n in by_reason.items():
            counts["reasons"][why] = counts["reasons"].get(why, 0) + n

    source = (spark.readStream.format("text").option("recursiveFileLookup", "true")
              .option("pathGlobFilter", "*.gz").option("maxFilesPerTrigger", 1000)
              .load(f"s3a://{lake_bucket}/{PREFIX}"))
    query = (source.writeStream.foreachBatch(batch).trigger(availableNow=True)
             .option("checkpointLocation", f"s3a://{lake_bucket}/{CHECKPOINT}").start())
    query.awaitTermination()
    if query.exception() is not None:
        raise RuntimeError(str(query.exception()).splitlines()[0])
    return counts
