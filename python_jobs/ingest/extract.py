"""Land the clean staging tables on S3 as Parquet (the Lambda-style extract job).

Postgres streams each model with COPY; pyarrow converts the CSV stream to
Parquet in batches (memory stays flat at any size); boto3 uploads it under
`landing/run_id=<run>/<model>/`. The marts stage then points a Spark table
with the same schema and name (`staging.<model>`) at that location (dbt macro
`register_landed`), so the marts' `ref('stg_raw__bids')` resolves on the
Spark side too, over a session or a Thrift server alike.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from python_jobs.config import Settings
from python_jobs.infra.s3 import s3_client

MODELS = ("stg_raw__users", "stg_raw__listings", "stg_raw__bids", "stg_raw__user_interests", "stg_raw__promotions")
PG_TO_ARROW = {
    "integer": "int32",
    "bigint": "int64",
    "smallint": "int32",
    "numeric": "float64",
    "double precision": "float64",
    "real": "float64",
    "text": "string",
    "character varying": "string",
    "boolean": "bool",
    "timestamp with time zone": "timestamp",
    "timestamp without time zone": "timestamp",
    "date": "date32",
}


def landing_prefix(run_id: str, model: str) -> str:
    return f"landing/run_id={run_id}/{model}/"


def _columns(cur, model: str) -> list[tuple[str, str]]:
    cur.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'staging' and table_name = %s order by ordinal_position",
        (model,),
    )
    return cur.fetchall()


def _arrow_schema(columns: list[tuple[str, str]]):
    import pyarrow as pa

    fields = []
    for name, pg_type in columns:
        kind = PG_TO_ARROW.get(pg_type, "string")
        arrow_type = pa.timestamp("us", tz="UTC") if kind == "timestamp" else pa.type_for_alias(kind)
        fields.append(pa.field(name, arrow_type))
    return pa.schema(fields)


def export_model(conn, model: str, workdir: Path) -> tuple[Path, int]:
    """COPY one staging model out of Postgres into a local Parquet file; return it and its row count."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with conn.cursor() as cur:
        columns = _columns(cur, model)
        select = ", ".join(
            f"to_char({name} at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') as {name}" if pg_type == "timestamp with time zone" else name
            for name, pg_type in columns
        )
        csv_path = workdir / f"{model}.csv"
        with open(csv_path, "w", encoding="utf-8") as out:
            cur.copy_expert(f"copy (select {select} from staging.{model}) to stdout with (format csv)", out)
    schema = _arrow_schema(columns)
    parquet_path = workdir / f"{model}.parquet"
    rows = 0
    with pq.ParquetWriter(parquet_path, schema, compression="snappy") as writer:
        if csv_path.stat().st_size == 0:  # no rows (a marketplace with no promotions): the schema alone
            writer.write_table(schema.empty_table())
        else:
            reader = pacsv.open_csv(
                csv_path,
                read_options=pacsv.ReadOptions(column_names=schema.names, block_size=8 << 20),
                convert_options=pacsv.ConvertOptions(column_types=schema, strings_can_be_null=True),
            )
            for batch in reader:
                writer.write_table(pa.Table.from_batches([batch]).cast(schema))
                rows += batch.num_rows
    csv_path.unlink()
    return parquet_path, rows


def extract(settings: Settings, dsn: str, run_id: str) -> dict[str, int]:
    """Land every clean staging model for this run; return rows per model."""
    import psycopg2

    client = s3_client(settings)
    counts: dict[str, int] = {}
    conn = psycopg2.connect(dsn)
    try:
        with tempfile.TemporaryDirectory(prefix="encore-extract-") as tmp:
            for model in MODELS:
                path, rows = export_model(conn, model, Path(tmp))
                client.upload_file(str(path), settings.lake_bucket, landing_prefix(run_id, model) + "part-00000.parquet")
                path.unlink()
                counts[model] = rows
    finally:
        conn.close()
    return counts


def landed_tables(settings: Settings, run_id: str) -> dict[str, str]:
    """staging.<model> -> this run's landed Parquet location (the `register_landed` dbt macro points tables there)."""
    return {model: f"s3a://{settings.lake_bucket}/{landing_prefix(run_id, model)}" for model in MODELS}
