"""Land the clean staging tables on S3 as Parquet (the Lambda-style extract job).

Postgres streams each model with COPY; pyarrow converts the CSV stream to
Parquet in batches (memory stays flat at any size); boto3 uploads it under
`landing/run_id=<run>/<model>/`. The marts stage then points a Spark table
with the same schema and name (`staging.<model>`) at that location (dbt macro
`register_landed`), so the marts' `ref('stg_raw__listings')` resolves on the
Spark side too, over a session or a Thrift server alike.

The bids, nine rows in ten of what is staged and only ever added to, are landed
by a watermark instead: only the bids with an id above the highest the lake's
copy holds leave Postgres, and the marts stage appends them to that copy, an
Iceberg table (python_jobs/ingest/merge_landed.py), then records its new
watermark in the lake's ledger (`landing/_merged/<model>.json`) with a
fingerprint of the bids up to it (count and XOR of a hash of each row). Before
landing, the same fingerprint is taken over the same bids in Postgres: a bid
corrected, deleted or inserted with an old id since (or a replaced source)
changes it, and every bid is landed again to replace the lake's copy, as on the
first extract into a lake and on demand (`--full-extract`). Every query reads
one snapshot of Postgres (a repeatable-read transaction).
"""

from __future__ import annotations

import json
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


WATERMARKED = {"stg_raw__bids": "bid_id"}  # model -> the id it only grows by
LEDGER = "landing/_merged/{model}.json"


def landing_prefix(run_id: str, model: str) -> str:
    return f"landing/run_id={run_id}/{model}/"


def read_ledger(client, bucket: str, model: str) -> dict | None:
    """What the lake's copy of `model` holds, as its last merge recorded it; None before the first."""
    try:
        return json.loads(client.get_object(Bucket=bucket, Key=LEDGER.format(model=model))["Body"].read())
    except client.exceptions.NoSuchKey:
        return None


def plan_landing(conn, model: str, ledger: dict | None, full: bool) -> dict:
    """Which rows of `model` this extract lands: those above the ledger's watermark (`delta`), or all of them
    (`full`, with the reason); and the watermark and fingerprint of the lake's copy once they are merged."""
    key = WATERMARKED[model]
    base = None if full or ledger is None else int(ledger["through"])
    with conn.cursor() as cur:
        cur.execute(
            f"select max({key}), count(*) filter (where {key} <= %(base)s), "
            f"coalesce(bit_xor(h) filter (where {key} <= %(base)s), 0), count(*), coalesce(bit_xor(h), 0) "
            f"from (select {key}, hash_record_extended(t, 0) as h from staging.{model} as t) as hashed",
            {"base": -1 if base is None else base})
        top, held_count, held_xor, count, xor = cur.fetchone()
    reason = ("asked for (--full-extract)" if full else "the lake holds none yet" if ledger is None else None)
    if base is not None and (held_count, held_xor) != (ledger["count"], ledger["xor"]):
        reason = (f"the staged rows up to {key} {base} changed since they were landed ({ledger['count']} then, "
                  f"{held_count} now, or the same count of other rows): a replaced source, or rows corrected, "
                  "deleted or inserted with an old id")
        base = None
    through = max(top if top is not None else -1, -1 if base is None else base)
    # `ledger`: the lake as this extract found it; the merge refuses a lake that has moved on since
    return {"mode": "full" if base is None else "delta", "key": key, "base": base, "through": through,
            "count": count, "xor": xor, "ledger": ledger, **({"reason": reason} if reason else {})}


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


def export_model(conn, model: str, workdir: Path, where: str = "true") -> tuple[Path, int]:
    """COPY one staging model's rows (those `where` holds) out of Postgres into a local Parquet file; return it and
    its row count."""
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
            cur.copy_expert(f"copy (select {select} from staging.{model} where {where}) to stdout with (format csv)", out)
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


def extract(settings: Settings, dsn: str, run_id: str) -> tuple[dict[str, int], dict[str, dict]]:
    """Land every clean staging model for this run, the watermarked ones from their watermark on; return rows
    landed per model, and each watermarked model's plan (`plan_landing`) for the marts stage to merge by."""
    import psycopg2
    import psycopg2.extensions

    client = s3_client(settings)
    counts: dict[str, int] = {}
    plans: dict[str, dict] = {}
    conn = psycopg2.connect(dsn)
    # one snapshot for the fingerprint and every COPY: a row staged in between is in both or in neither
    conn.set_session(isolation_level=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
    try:
        with tempfile.TemporaryDirectory(prefix="encore-extract-") as tmp:
            for model in MODELS:
                where = "true"
                if model in WATERMARKED:
                    plan = plans[model] = plan_landing(conn, model, read_ledger(client, settings.lake_bucket, model),
                                                       settings.full_extract)
                    where = f"{plan['key']} > {plan['base']}" if plan["mode"] == "delta" else "true"
                path, rows = export_model(conn, model, Path(tmp), where)
                if model in plans:
                    plans[model]["rows"] = rows
                client.upload_file(str(path), settings.lake_bucket, landing_prefix(run_id, model) + "part-00000.parquet")
                path.unlink()
                counts[model] = rows
    finally:
        conn.rollback()
        conn.close()
    return counts, plans


def landed_location(settings: Settings, run_id: str, model: str) -> str:
    return f"s3a://{settings.lake_bucket}/{landing_prefix(run_id, model)}"


def landed_tables(settings: Settings, run_id: str) -> dict[str, str]:
    """staging.<model> -> this run's landed Parquet location, for the models landed in full each run (the
    `register_landed` dbt macro points tables there; the watermarked ones are merged into the lake's copy)."""
    return {model: landed_location(settings, run_id, model) for model in MODELS if model not in WATERMARKED}
