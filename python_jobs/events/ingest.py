"""The `events` stage: new landed event objects into the bronze table, exactly once per object.

Spark Structured Streaming's file source over `s3a://<lake>/events/` with
`Trigger.AvailableNow` reads every object not seen before (its checkpoint,
on S3 under the lake, remembers which) and stops. Each micro-batch is split
by `split_lines` into events that parse and pass the checks, written to
`events.bronze_app_events`, and the rest, written with their reason to
`events.quarantined_app_events`; both partitions are named after the run and
the batch, so a batch replayed after a crash overwrites its own rows. The
reconciliation counts, per run: lines landed = ingested + quarantined.

Both tables are Iceberg, partitioned by batch: a batch's rows arrive in one
commit (a crash mid-write leaves no files a reader sees, nor a folder without
its table), and its partition is replaced in that commit when it is replayed.
A lake whose bronze is still Parquet (made before) is ingested again from
every landed object into new Iceberg tables (`legacy_tables`).

Each line is read and parsed once: bronze is written straight from the scan,
counted as it is written (`Observation`, whose node also keeps the split's
filter above the one parse), and the quarantine, when the batch has refused
lines at all, by a second pass; nothing is read back to count it. A run with nothing new
costs a listing: after each complete ingest a marker under the checkpoint
records when its listing began (the S3 server's clock), and when no object
under `events/` is newer than that (less a margin for puts in flight) the
stream is not started at all.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from python_jobs.events.landing import CHECKPOINT, PREFIX
from python_jobs.events.schema import MAX_ID, TYPES

BRONZE = "events.bronze_app_events"
QUARANTINE = "events.quarantined_app_events"
EVENTS = "staging.stg_events__app_events"  # bronze deduplicated, by dbt (models/events)
EVENT_SCHEMA = ("event_id string, type string, uid bigint, listing_id bigint, at string, received_at string, "
                "session_id string, watch_seconds double, variant string, position int")
BRONZE_SCHEMA = ("event_id string, type string, uid int, listing_id int, event_at timestamp, received_at timestamp, "
                 "session_id string, watch_seconds double, source_object string, variant string, position int")
ADDED = {BRONZE: "variant string, position int"}  # columns added since a table was first made, added to older ones
QUARANTINE_SCHEMA = "line string, reason string, source_object string"
LISTED = CHECKPOINT + "listing-started"       # put just before the stream lists the landed objects
INGESTED = CHECKPOINT + "ingested-through.json"  # its time, written once every batch of that run is in
REASONS = ("not a JSON event with an event_id", "unknown or missing type", "uid missing or out of range",
           "listing_id missing or out of range", "at missing or not a time", "received_at missing or not a time",
           "negative watch_seconds")  # a refused line's reason: the first check it fails, in this order
IN_FLIGHT = timedelta(minutes=5)  # an object whose put began before the listing may become visible after it


def _time(column: str):
    """ISO 8601 text as a timestamp by Spark's own cast (a hand-written parser, several times cheaper than a
    pattern): it reads every form the collector writes (`.SSS`, `Z` or `±hh:mm`); null when it is not a time."""
    return F.col(f"e.{column}").cast("timestamp")


def check_lines(lines: DataFrame) -> DataFrame:
    """`lines` (value, source_object) parsed once: bronze's columns, the line and `reason` (null for a good event)."""
    parsed = lines.select("value", "source_object", F.from_json("value", EVENT_SCHEMA).alias("e")).select(
        "*", _time("at").alias("event_at"), _time("received_at").alias("received_ts"))
    ids_ok = lambda c: F.col(f"e.{c}").between(1, MAX_ID)  # noqa: E731
    checks = [F.col("e").isNull() | F.col("e.event_id").isNull(), ~F.col("e.type").isin(*TYPES) | F.col("e.type").isNull(),
              ~ids_ok("uid") | F.col("e.uid").isNull(), ~ids_ok("listing_id") | F.col("e.listing_id").isNull(),
              F.col("event_at").isNull(), F.col("received_ts").isNull(), F.col("e.watch_seconds") < 0]
    reason = F.when(checks[0], REASONS[0])
    for failed, why in zip(checks[1:], REASONS[1:]):
        reason = reason.when(failed, why)
    return parsed.select(
        F.col("e.event_id").alias("event_id"), F.col("e.type").alias("type"), F.col("e.uid").cast("int").alias("uid"),
        F.col("e.listing_id").cast("int").alias("listing_id"), "event_at", F.col("received_ts").alias("received_at"),
        F.col("e.session_id").alias("session_id"), F.col("e.watch_seconds").alias("watch_seconds"), "source_object",
        F.col("e.variant").alias("variant"), F.col("e.position").alias("position"), F.col("value").alias("line"),
        reason.alias("reason"))


def split(checked: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(good events as bronze rows, quarantined lines with their reason) of `check_lines`' frame."""
    good = checked.where(F.col("reason").isNull()).select(
        "event_id", "type", "uid", "listing_id", "event_at", "received_at", "session_id", "watch_seconds",
        "source_object", "variant", "position")
    bad = checked.where(F.col("reason").isNotNull()).select("line", "reason", "source_object")
    return good, bad


def split_lines(lines: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(good events, quarantined lines with a reason) from `lines` (value, source_object); every line ends in
    exactly one of them."""
    return split(check_lines(lines))


def ensure_tables(spark: SparkSession) -> None:
    """The two Iceberg tables, created when missing; a table made before a column was `ADDED` gains it (its older
    rows read null there)."""
    for table, schema in ((BRONZE, BRONZE_SCHEMA), (QUARANTINE, QUARANTINE_SCHEMA)):
        if not spark.catalog.tableExists(table):
            # a batch writes one partition: no shuffle by it before the write (Iceberg's default for a partitioned
            # table); a delete rewrites files, so a batch listed in the partitions table has rows
            spark.sql(f"create table {table} ({schema}, ingest_batch string) using iceberg "
                      "partitioned by (ingest_batch) tblproperties ('write.distribution-mode' = 'none', "
                      "'write.delete.mode' = 'copy-on-write')")
        elif table in ADDED:
            have = {c.name for c in spark.catalog.listColumns(table)}
            missing = [c for c in ADDED[table].split(", ") if c.split()[0] not in have]
            if missing:
                spark.sql(f"alter table {table} add columns ({', '.join(missing)})")


def legacy_tables(spark: SparkSession) -> list[str]:
    """The events tables still stored as plain Parquet (a lake made before they were Iceberg)."""
    from python_jobs.runs.snapshots import provider

    return [t for t in (BRONZE, QUARANTINE) if spark.catalog.tableExists(t) and provider(spark, t) != "iceberg"]


def bronze_batches(spark: SparkSession) -> list[str]:
    """The names of the batches bronze holds (its partitions with rows), from Iceberg's metadata: no data read."""
    return [row[0] for row in spark.sql(f"select partition.ingest_batch from {BRONZE}.partitions").collect()]


def nothing_new(client, lake_bucket: str) -> bool:
    """True when the last complete ingest's listing saw every landed object: none was put since it began (less
    IN_FLIGHT). A run that died leaves the marker of the one before, so its objects count as new and are read."""
    try:
        marker = json.loads(client.get_object(Bucket=lake_bucket, Key=INGESTED)["Body"].read())
    except client.exceptions.NoSuchKey:
        return False
    since = datetime.fromisoformat(marker["listing_started"]) - IN_FLIGHT
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=lake_bucket, Prefix=PREFIX):
        if any(o["LastModified"] > since for o in page.get("Contents", [])):
            return False
    return True


def bronze_lost(spark: SparkSession) -> str | None:
    """Why the deduplicated events table (`EVENTS`, incremental: each build reads the bronze batches with an id
    above the highest it read, macros/bronze_read.sql) must be rebuilt from bronze in full, or None: bronze no
    longer holds the batches it read (started afresh when `generate` replaced the events, or a batch dropped by
    hand), or it never recorded them. Table properties and bronze's partition list: no data is read. Refuses a
    bronze still Parquet (the events stage moves it to Iceberg)."""
    from python_jobs.runs.snapshots import provider, table_properties

    catalog = spark.catalog
    if not (catalog.tableExists(EVENTS) and catalog.tableExists(BRONZE)) or provider(spark, EVENTS) != "iceberg":
        return None  # not built yet, or still the view of a lake built before it was a table: dbt builds it anew
    legacy = legacy_tables(spark)
    if legacy:
        from python_jobs.errors import UserError

        raise UserError(f"{', '.join(legacy)} still Parquet: the events stage moves them to Iceberg; resume from "
                        "it (`encore-recs run --run-id ID --from events`)")
    recorded = table_properties(spark, EVENTS)
    if "encore.bronze_batches_read" not in recorded:
        return f"{EVENTS} was built before it recorded the bronze batches it read"
    through, name = int(recorded["encore.bronze_through_batch_id"]), recorded["encore.bronze_through_batch"]
    held = bronze_batches(spark)
    read = [batch for batch in held if batch_id(batch) <= through]
    if len(read) != int(recorded["encore.bronze_batches_read"]) or (name and name not in read):
        return (f"bronze no longer holds the {recorded['encore.bronze_batches_read']} events batches {EVENTS} read "
                f"({len(read)} at or below its last, {name}): the events were replaced, or a batch dropped or "
                "ingested again")
    return None


def batch_id(batch: str) -> int:
    """A bronze batch's micro-batch id (its name is `<run id>-<id>`); -1 for a name of another form."""
    tail = batch.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def empty_counts() -> dict:
    return {"batches": 0, "objects": 0, "lines": 0, "ingested": 0, "quarantined": 0, "reasons": {}}


def ingest(spark: SparkSession, client, lake_bucket: str, run_id: str, has_objects: bool, fresh_start: bool) -> dict:
    """Ingest every object landed since the last run; the counts of this run's batches. client: S3; fresh_start:
    no checkpoint yet."""
    from python_jobs.runs.table_folders import clear_orphans

    spark.sql(f"create database if not exists events location 's3a://{lake_bucket}/warehouse/events.db'")
    if fresh_start:
        # emptied when the checkpoint is gone (a new lake, or `generate` replaced the events), so bronze always
        # holds exactly what the checkpoint says was read; Iceberg's SparkSessionCatalog drops a Parquet table's
        # entry but leaves its folder, which clear_orphans then deletes
        for table in (BRONZE, QUARANTINE):
            spark.sql(f"drop table if exists {table}")
    clear_orphans(spark, client, "events")
    ensure_tables(spark)
    counts = empty_counts()
    if not has_objects:  # the file source needs its folder to exist; nothing has landed yet
        return counts

    def batch(frame: DataFrame, batch_id: int) -> None:
        from pyspark.sql import Observation

        name = f"{run_id}-{batch_id:06d}"
        landed = Observation(f"landed-{name}")
        # observed before the split: the node also keeps the split's filter above the one parse of each line
        checked = check_lines(frame.select("value", F.input_file_name().alias("source_object"))).observe(
            landed, F.count("*").alias("lines"), F.size(F.collect_set("source_object")).alias("objects"),
            *[F.count_if(F.col("reason") == why).alias(why) for why in REASONS])
        good, bad = split(checked)
        wrote = {}
        for table, rows in ((BRONZE, good), (QUARANTINE, bad)):
            if table == QUARANTINE and not sum(landed.get[why] for why in REASONS):
                wrote[table] = 0  # one pass when every line is good
                continue
            seen = Observation(f"{table}-{name}")
            rows.observe(seen, F.count("*").alias("rows")).withColumn("ingest_batch", F.lit(name)).writeTo(
                table).overwritePartitions()
            wrote[table] = seen.get["rows"]
        lines, by_reason = landed.get["lines"], {why: landed.get[why] for why in REASONS if landed.get[why]}
        if lines != wrote[BRONZE] + wrote[QUARANTINE] or wrote[QUARANTINE] != sum(by_reason.values()):
            raise RuntimeError(f"events batch {name}: {lines} lines landed, {wrote[BRONZE]} ingested + "
                               f"{wrote[QUARANTINE]} quarantined")
        counts["batches"] += 1
        counts["objects"] += landed.get["objects"]
        counts["lines"] += lines
        counts["ingested"] += wrote[BRONZE]
        counts["quarantined"] += wrote[QUARANTINE]
        for why, n in by_reason.items():
            counts["reasons"][why] = counts["reasons"].get(why, 0) + n

    source = (spark.readStream.format("text").option("recursiveFileLookup", "true")
              .option("pathGlobFilter", "*.gz").option("maxFilesPerTrigger", 1000)
              .load(f"s3a://{lake_bucket}/{PREFIX}"))
    client.put_object(Bucket=lake_bucket, Key=LISTED, Body=b"")
    started = client.head_object(Bucket=lake_bucket, Key=LISTED)["LastModified"]  # the S3 server's clock
    query = (source.writeStream.foreachBatch(batch).trigger(availableNow=True)
             .option("checkpointLocation", f"s3a://{lake_bucket}/{CHECKPOINT}").start())
    query.awaitTermination()
    if query.exception() is not None:
        raise RuntimeError(str(query.exception()).splitlines()[0])
    client.put_object(Bucket=lake_bucket, Key=INGESTED, Body=json.dumps({"listing_started": started.isoformat()}))
    for table in (BRONZE, QUARANTINE):  # written by the stream's own session: this one may cache the snapshot before
        spark.catalog.refreshTable(table)
    return counts
