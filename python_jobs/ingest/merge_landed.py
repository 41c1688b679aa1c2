"""The lake's copy of each watermarked staging model, brought up to this run's landing (the marts stage).

The extract landed either the rows above the watermark the lake's ledger records (`delta`) or every row
(`full`: the first extract into a lake, a changed fingerprint, or `--full-extract`); python_jobs/ingest/extract.py
says which in the run's `landed`. A delta is appended to `staging.<model>`, an Iceberg table, only where its ids
are above the highest the table holds (Iceberg answers that maximum from its file statistics), so a delta merged
twice, after a crash before the ledger was written, adds nothing the second time. A full landing replaces the
table in one commit. Then the table records its watermark, and the ledger, which the next extract reads, the
watermark and the fingerprint.
"""

from __future__ import annotations

import json

from python_jobs.config import Settings
from python_jobs.errors import UserError
from python_jobs.ingest.extract import LEDGER, landed_location
from python_jobs.runs.snapshots import provider, table_properties

WATERMARK = "encore.landed_through"


def merge_landed(spark, client, settings: Settings, run_id: str, plans: dict[str, dict]) -> dict[str, dict]:
    """Merge each landed model of `plans` into its lake copy; per model, how (mode) and the watermark it holds."""
    merged = {}
    spark.sql(f"create database if not exists staging location 's3a://{settings.lake_bucket}/warehouse/staging.db'")
    for model, plan in plans.items():
        table, landed = f"staging.{model}", f"parquet.`{landed_location(settings, run_id, model)}`"
        iceberg = spark.catalog.tableExists(table) and provider(spark, table) == "iceberg"
        holds = plan["through"]  # the highest id the copy holds once merged
        if plan["mode"] == "delta":
            held = table_properties(spark, table).get(WATERMARK) if iceberg else None
            if held is None or int(held) < plan["base"]:
                # the ledger outlived the table (dropped by hand, or a lake restored without it)
                client.delete_object(Bucket=settings.lake_bucket, Key=LEDGER.format(model=model))
                raise UserError(
                    f"{table} does not hold the rows up to {plan['key']} {plan['base']} that this run's landing "
                    f"starts after ({'it holds up to ' + held if held else 'it is not there'}); the ledger is "
                    f"cleared, so the next extract lands every row: run this one again from extract "
                    f"(encore-recs run --run-id {run_id} --from extract)")
            key, holds = plan["key"], max(int(held), plan["through"])  # an older run resumed adds nothing
            if plan["rows"]:  # no empty commit on a day without new rows
                spark.sql(f"insert into {table} select * from {landed} "
                          f"where {key} > (select coalesce(max({key}), -1) from {table})")
        else:
            if spark.catalog.tableExists(table) and not iceberg:
                spark.sql(f"drop table {table}")  # a lake's copy from before: external, pointed at a landing
            spark.sql(f"create or replace table {table} using iceberg as select * from {landed}")
            spark.catalog.refreshTable(table)  # a long-lived session may still hold the dropped table's relation
        spark.sql(f"alter table {table} set tblproperties ('{WATERMARK}' = '{holds}', "
                  f"'encore.landed_run' = '{run_id}')")
        ledger = {"through": plan["through"], "count": plan["count"], "xor": plan["xor"], "run_id": run_id}
        client.put_object(Bucket=settings.lake_bucket, Key=LEDGER.format(model=model), Body=json.dumps(ledger))
        merged[model] = {"mode": plan["mode"], "through": plan["through"],
                         **({"reason": plan["reason"]} if "reason" in plan else {})}
    return merged
