"""Table folders on S3 that the catalog no longer knows, cleared before anything creates a table there.

A managed table is a catalog entry and a folder. A run that dies while a
table is replaced (the S3 server gone mid-delete, a kill -9) can leave the
folder without the entry, and Spark then refuses to create the table again
(`LOCATION_ALREADY_EXISTS`) in every later run. Before the marts are built
and before a stage creates its tables, every folder under a database's
location that no table of that database names is deleted: it holds nothing
a reader can reach.
"""

from __future__ import annotations


def s3_location(uri: str, what: str) -> tuple[str, str]:
    """(bucket, key prefix without a trailing /) of an s3://, s3a:// or s3n:// URI."""
    scheme, _, path = uri.rstrip("/").partition("://")
    if scheme not in ("s3", "s3a", "s3n"):
        raise ValueError(f"{what} lives at {uri}, not on S3; use ENCORE_FRAME_ENGINE=spark")
    bucket, _, prefix = path.partition("/")
    return bucket, prefix


def table_location(spark, name: str) -> tuple[str, str]:
    """(bucket, key prefix) of table `name`'s folder, whichever S3 scheme the catalog holds (s3a here, s3 on EMR)."""
    rows = spark.sql(f"describe formatted {name}").collect()
    return s3_location(next(r.data_type for r in rows if r.col_name == "Location"), name)


def drop_with_folder(spark, client, name: str) -> None:
    """Drop table `name` and delete its folder: under Iceberg's SparkSessionCatalog a dropped managed Parquet table
    keeps its folder, and creating the table again would stop with LOCATION_ALREADY_EXISTS."""
    from python_jobs.infra.s3 import delete_prefix

    bucket, prefix = table_location(spark, name)
    spark.sql(f"drop table {name}")
    delete_prefix(client, bucket, f"{prefix}/")


def clear_orphans(spark, client, database: str) -> list[str]:
    """Delete the folders under `database`'s location that no table of it uses; the folders deleted.

    A managed table's folder is named after it, so only a folder named after no table is looked into further:
    the tables' own locations (one `describe` each, which loads an Iceberg table's metadata) are read only then."""
    from python_jobs.infra.s3 import delete_prefix

    if not spark.catalog.databaseExists(database):
        return []
    bucket, prefix = s3_location(spark.catalog.getDatabase(database).locationUri, f"database {database}")
    folders = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/", Delimiter="/"):
        for folder in page.get("CommonPrefixes", []):
            folders[folder["Prefix"].rstrip("/").rsplit("/", 1)[-1]] = folder["Prefix"]
    # an incremental dbt model's `__dbt_tmp` view of this session is temporary: no folder
    tables = [row.tableName for row in spark.sql(f"show tables in {database}").collect() if not row.isTemporary]
    unnamed = set(folders) - set(tables)
    if unnamed:
        unnamed -= {_folder_name(spark, database, table) for table in tables}
    for name in sorted(unnamed):
        delete_prefix(client, bucket, folders[name])
    return sorted(unnamed)


def _folder_name(spark, database: str, table: str) -> str | None:
    rows = spark.sql(f"describe formatted {database}.{table}").collect()
    location = next((r.data_type for r in rows if r.col_name == "Location"), None)
    return s3_location(location, f"{database}.{table}")[1].rsplit("/", 1)[-1] if location else None
