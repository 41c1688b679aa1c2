"""This run's partition of a `recs.*` table (S3-backed, partitioned by run_id), from rows held in this process.

Two engines, as everywhere (`models.engine`): `spark` hands the rows to Spark,
which writes through its committer (temporary folders, then renames, which S3
does as copies); `local` writes the partition as one Parquet object put
straight where Spark reads it, registers the partition in the catalog and
refreshes Spark's view of the table. Either way a re-run replaces the run's
partition and leaves the others alone; a table whose columns changed (written
by an older version) is replaced, its runs being published already.
"""

from __future__ import annotations

import io

import pandas as pd

# the listing fields every list carries beside its ids (recs.listing_details, the published lines)
DETAILS = ("product", "category", "sub_category", "listing_amount", "ends_at")
ARROW_TYPES = {"int": "int32", "double": "float64", "string": "string", "timestamp": "timestamp"}


def columns(schema: str) -> list[tuple[str, str]]:
    return [tuple(part.split()) for part in schema.split(",")]


def _ensure_table(spark, settings, table: str, schema: str) -> None:
    from python_jobs.infra.s3 import s3_client
    from python_jobs.runs.table_folders import drop_with_folder

    name = f"recs.{table}"
    wanted = sorted([c for c, _ in columns(schema)] + ["run_id"])
    if spark.catalog.tableExists(name):
        if sorted(spark.table(name).columns) == wanted:
            return
        drop_with_folder(spark, s3_client(settings), name)
    empty = spark.createDataFrame([], schema + ", run_id string")
    empty.write.format("parquet").partitionBy("run_id").saveAsTable(name)


def save(spark, settings, table: str, run_id: str, frame, schema: str, engine: str) -> None:
    """Write `frame` (columns as in the Spark DDL `schema`) as this run's partition of `recs.<table>`: a pandas
    frame on either engine, or a Spark DataFrame (rows that never were in this process) on `spark`."""
    _ensure_table(spark, settings, table, schema)
    if engine == "spark":
        from pyspark.sql import functions as F

        if isinstance(frame, pd.DataFrame):
            frame = spark.createDataFrame(frame, schema)
        out = frame.select(*[F.col(c).cast(t) for c, t in columns(schema)]).withColumn("run_id", F.lit(run_id))
        out.select(*spark.table(f"recs.{table}").columns).write.insertInto(f"recs.{table}", overwrite=True)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    from python_jobs.infra.s3 import delete_prefix, s3_client
    from python_jobs.runs.table_folders import table_location

    bucket, prefix = table_location(spark, f"recs.{table}")
    folder = f"{prefix}/run_id={run_id}/"
    client = s3_client(settings)
    delete_prefix(client, bucket, folder)
    fields = [pa.field(c, pa.timestamp("us", tz="UTC") if t == "timestamp" else pa.type_for_alias(ARROW_TYPES[t]))
              for c, t in columns(schema)]
    arrow = pa.Table.from_pandas(frame[[c for c, _ in columns(schema)]], schema=pa.schema(fields),
                                 preserve_index=False)
    body = io.BytesIO()
    pq.write_table(arrow, body, compression="snappy")
    client.put_object(Bucket=bucket, Key=folder + "part-00000.snappy.parquet", Body=body.getvalue())
    spark.sql(f"alter table recs.{table} add if not exists partition (run_id='{run_id}')")
    spark.sql(f"refresh table recs.{table}")


def read(spark, settings, table: str, run_id: str, columns: list[str], engine: str) -> pd.DataFrame:
    """`columns` of this run's partition of `recs.<table>` as pandas: read by Spark, or on the local engine
    straight from the partition's Parquet objects (whichever engine wrote them)."""
    if engine == "spark":
        from pyspark.sql import functions as F

        return spark.table(f"recs.{table}").where(F.col("run_id") == run_id).select(*columns).toPandas()
    import pyarrow as pa
    import pyarrow.parquet as pq

    from python_jobs.infra.s3 import s3_client
    from python_jobs.runs.table_folders import table_location

    bucket, prefix = table_location(spark, f"recs.{table}")
    client = s3_client(settings)
    parts = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/run_id={run_id}/"):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".parquet"):
                body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                parts.append(pq.read_table(pa.BufferReader(body), columns=columns))
    if not parts:
        return spark.table(f"recs.{table}").where("false").select(*columns).toPandas()
    return pa.concat_tables(parts).to_pandas()
