"""Row accounting for the cleaning step: raw = clean + rejected, per table and reason."""

from __future__ import annotations

from python_jobs.errors import GateFailed
from python_jobs.ingest.raw_schema import RAW_TABLES


def reconcile(dsn: str) -> list[dict]:
    """Per raw table: raw, clean and rejected counts and rejected rows per reason code."""
    import psycopg2

    rows = []
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            for table in RAW_TABLES:
                cur.execute(f"select count(*) from raw.{table}")
                raw = cur.fetchone()[0]
                cur.execute(f"select count(*) from staging.stg_raw__{table}")
                clean = cur.fetchone()[0]
                cur.execute(
                    f"select reject_reason, count(*) from staging.stg_raw__{table}_rejected group by 1 order by 1"
                )
                reasons = dict(cur.fetchall())
                rows.append({"table": table, "raw": raw, "clean": clean, "rejected": sum(reasons.values()),
                             "reasons": reasons})
    finally:
        conn.close()
    for row in rows:
        if row["raw"] != row["clean"] + row["rejected"]:
            raise GateFailed(
                f"reconciliation failed for {row['table']}: raw {row['raw']} != clean {row['clean']} + rejected {row['rejected']}"
            )
    return rows
