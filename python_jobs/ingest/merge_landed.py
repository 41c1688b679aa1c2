"""The lake's copy of each watermarked staging model, brought up to this run's landing (the marts stage).

The extract landed either the rows above the watermark the lake's ledger records (`delta`) or every row
(`full`: the first extract into a lake, a changed fingerprint, or `--full-extract`); python_jobs/ingest/extract.py
says which in the run's `landed`, with the ledger as it found it. The merge refuses a lake whose ledger has moved
on since (an older run resumed after a newer one merged): its landing would take the copy back. A delta is
appended to `staging.<model>`, an Iceberg table; when the copy already holds rows above the delta's base (a merge
that committed and then died before its ledger was written), those rows are deleted first and the landing, taken
from Postgres in one snapshot with the fingerprint, stands for the whole range: that commit is not an append, so
the interactions mart is rebuilt in full from it (python_jobs/runs/settled_bids.py). A full landing replaces the
table in one commit. Then the table records its watermark, and the ledger, which the next extract reads, the
watermark and the fingerprint.
"""

from __future__ import annotations

import json

from python_jobs.config import Settings
from python_jobs.errors import UserError
from python_jobs.ingest.extract import LEDGER, WATERMARKED, landed_location, read_ledger
from python_jobs.runs.snapshots import provider

WATERMARK = "encore.landed_through"


def merge_landed(spark, client, settings: Settings, run_id: str, plans: dict[str, dict]) -> dict[str, dict]:
    """Merge each landed model of `plans` into its lake copy; per model, how (mode) and the watermark it holds."""
    missing = [model for model in WATERMARKED if model not in plans]
    if missing:
        raise UserError(f"run {run_id} has no record of how {', '.join(missing)} was landed (its extract ran before "
                        f"the bids were landed by watermark): run it again from extract "
                        f"(encore-recs run --run-id {run_id} --from extract)")
    merged = {}
    spark.sql(f"create database if not exists staging location 's3a://{settings.lake_bucket}/warehouse/staging.db'")
    for model, plan in plans.items():
        table, landed = f"staging.{model}", f"parquet.`{landed_location(settings, run_id, model)}`"
        ledger = read_ledger(client, settings.lake_bucket, model)
        if ledger != plan["ledger"]:
            if (ledger or {}).get("run_id") == run_id:
                merged[model] = {"mode": "merged before (the run resumed)", "through": ledger["through"]}
                continue
            raise UserError(f"the lake's {table} has moved on since run {run_id} extracted it (now through "
                            f"{plan['key']} {(ledger or {}).get('through')}, by run {(ledger or {}).get('run_id')}): "
                            "its landing would take the copy back; start a new run instead")
        iceberg = spark.catalog.tableExists(table) and provider(spark, table) == "iceberg"
        if plan["mode"] == "delta":
            key, base = plan["key"], plan["base"]
            # the copy's own highest id (Iceberg answers it from its file statistics), not a property it records
            top = spark.sql(f"select max({key}) from {table}").first()[0] if iceberg else None
            if top is None or top < base:
                # the ledger outlived the table (dropped by hand, or a lake restored without it)
                client.delete_object(Bucket=settings.lake_bucket, Key=LEDGER.format(model=model))
                raise UserError(
                    f"{table} does not hold the rows up to {key} {base} that this run's landing starts after "
                    f"({'it holds up to ' + str(top) if top is not None else 'it is not there'}); the ledger is "
                    f"cleared, so the next extract lands every row: run this one again from extract "
                    f"(encore-recs run --run-id {run_id} --from extract)")
            if top > base:  # rows of a merge that died before its ledger: this landing stands for them
                spark.sql(f"delete from {table} where {key} > {base}")
            if plan["rows"]:  # no empty commit on a day without new rows
                spark.sql(f"insert into {table} select * from {landed}")
        else:
            if spark.catalog.tableExists(table) and not iceberg:
                spark.sql(f"drop table {table}")  # a lake's copy from before: external, pointed at a landing
            spark.sql(f"create or replace table {table} using iceberg as select * from {landed}")
            spark.catalog.refreshTable(table)  # a long-lived session may still hold the dropped table's relation
        spark.sql(f"alter table {table} set tblproperties ('{WATERMARK}' = '{plan['through']}', "
                  f"'encore.landed_run' = '{run_id}')")
        record = {"through": plan["through"], "count": plan["count"], "xor": plan["xor"], "run_id": run_id}
        client.put_object(Bucket=settings.lake_bucket, Key=LEDGER.format(model=model), Body=json.dumps(record))
        merged[model] = {"mode": plan["mode"], "through": plan["through"],
                         **({"reason": plan["reason"]} if "reason" in plan else {})}
    return merged
