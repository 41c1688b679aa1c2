"""Every run's summary as rows, for the data team's history marts (dbt `models/history`, schema run_history).

After every run, published, refused or failed, `record` flattens its summary into five row sets and puts each
as one JSON-lines object, `s3://<lake>/history/<table>/<run_id>.json` (a re-recorded run replaces its own). The
dbt sources `history.*` are external JSON tables over those folders (macro `register_history`); `build` turns
them into the `run_history` marts and runs their tests, the quality gate's among them. Only boto3 is needed
to record, so a run whose Spark or catalog failed is still on record.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from python_jobs.config import Settings

PREFIX = "history/"
TABLES = ("runs", "run_stages", "run_rejects", "run_checkpoints", "run_metrics", "run_experiments", "run_snapshots")


def rows(summary: dict) -> dict[str, list[dict]]:
    """{table: rows} of one run's summary; every table's rows carry the run id."""
    run_id = summary["run_id"]
    steps = summary.get("steps", [])
    failed = next((s["stage"] for s in steps if s.get("status") == "failed"), None)
    train = next((s.get("rows") or {} for s in steps if s["stage"] == "train" and s.get("status") == "ok"), {})
    evaluation = summary.get("evaluation") or {}
    gate = summary.get("quality_gate") or {}
    published = bool(summary.get("published", summary.get("status") == "ok" and "manifest_key" in summary))
    run = {
        "run_id": run_id, "started_at": summary.get("started_at"), "as_of": summary.get("as_of"),
        "backfill": bool(summary.get("backfill")),
        "status": "published" if published else ("refused" if summary.get("refused") else
                                                  "failed" if summary.get("status") == "failed" or failed else
                                                  "incomplete"),
        "failed_stage": failed, "error": summary.get("error"), "refused": summary.get("refused"),
        "total_seconds": summary.get("total_seconds"), "interactions": train.get("interactions"),
        "tuning_source": evaluation.get("tuning_source"), "catalog_coverage": train.get("catalog_coverage"),
        "hybrid_ndcg": (evaluation.get("metrics") or {}).get("hybrid", {}).get("ndcg"),
        "gate_outcome": gate.get("outcome"), "champion_run": gate.get("champion_run"),
        "champion_ndcg": gate.get("champion_ndcg"), "challenger_ndcg": gate.get("challenger_ndcg"),
        "quality_drop": gate.get("drop"), "max_quality_drop": gate.get("max_drop"),
        "accepted_by": gate.get("accepted_by"), "events_ingested": (summary.get("events") or {}).get("ingested"),
        "events_quarantined": (summary.get("events") or {}).get("quarantined"),
        "report": summary.get("report"), "data_docs": summary.get("data_docs"),
        "list_sources": json.dumps(train.get("list_sources") or {}, sort_keys=True),
        "recorded_at": datetime.now(timezone.utc).isoformat(),
    }
    stages = [{"run_id": run_id, "stage": s["stage"], "status": s["status"], "seconds": s.get("seconds"),
               "python_mb": (s.get("peak_memory") or {}).get("python_mb"),
               "jvm_mb": (s.get("peak_memory") or {}).get("jvm_mb"), "spark_jobs": s.get("spark_jobs"),
               "finished_at": s.get("finished_at")} for s in steps]
    rejects = [{"run_id": run_id, "table_name": r["table"], "reason": reason, "rejected_rows": int(n),
                "raw_rows": r["raw"], "clean_rows": r["clean"]}
               for r in summary.get("reconciliation", []) for reason, n in sorted((r.get("reasons") or {}).items())]
    checkpoints = [{"run_id": run_id, "checkpoint": c["checkpoint"], "success": bool(c["success"]),
                    "evaluated": c.get("evaluated"), "failed_expectations": len(c.get("failed") or []),
                    "engine": c.get("engine")} for c in summary.get("checkpoints", [])]
    metrics = []
    for model, values in (evaluation.get("metrics") or {}).items():
        metrics += [{"run_id": run_id, "model": model, "segment": "all", "metric": m, "value": float(v)}
                    for m, v in values.items() if isinstance(v, (int, float))]
    for model, segments in (evaluation.get("segments") or {}).items():
        metrics += [{"run_id": run_id, "model": model, "segment": segment, "metric": m, "value": float(v)}
                    for segment, values in segments.items() for m, v in values.items() if isinstance(v, (int, float))]
    experiments = [{"run_id": run_id, **row} for row in summary.get("experiment_results", [])]
    # the Iceberg snapshot of each mart the run read, its tag once published, and how a backfill found it
    tagged, travelled = summary.get("tagged") or {}, summary.get("time_travel") or {}
    snapshots = [{"run_id": run_id, "table_name": table, "snapshot_id": int(snapshot),
                  "tag": tagged.get(table) if str(tagged.get(table, "")).startswith("run-") else None,
                  "found_by": travelled.get(table, "built by the run")}
                 for table, snapshot in sorted((summary.get("snapshots") or {}).items())]
    return {"runs": [run], "run_stages": stages, "run_rejects": rejects, "run_checkpoints": checkpoints,
            "run_metrics": metrics, "run_experiments": experiments, "run_snapshots": snapshots}


def record(settings: Settings, summary: dict) -> int:
    """Put the run's rows in the lake; the number of rows."""
    from python_jobs.infra.s3 import s3_client

    client = s3_client(settings)
    written = 0
    for table, table_rows in rows(summary).items():
        body = "".join(json.dumps(row, default=str) + "\n" for row in table_rows)
        client.put_object(Bucket=settings.lake_bucket, Key=f"{PREFIX}{table}/{summary['run_id']}.json",
                          Body=body.encode(), ContentType="application/x-ndjson")
        written += len(table_rows)
    return written


def _recorded(client, settings: Settings) -> set[str]:
    return {o["Key"].rsplit("/", 1)[1].removesuffix(".json") for page in client.get_paginator("list_objects_v2")
            .paginate(Bucket=settings.lake_bucket, Prefix=f"{PREFIX}runs/") for o in page.get("Contents", [])}


def record_missing(settings: Settings, last: int = 30) -> list[str]:
    """Record the newest `last` runs of this state folder that the history lacks, from their local summaries: a
    run that failed while the store was away, or was killed before it could record itself."""
    from python_jobs.infra.s3 import s3_client

    recorded = _recorded(s3_client(settings), settings)
    local = sorted(path.parent.name for path in settings.runs_dir.glob("*/summary.json"))[-last:]
    missing = [run_id for run_id in local if run_id not in recorded]
    for run_id in missing:
        record(settings, json.loads((settings.runs_dir / run_id / "summary.json").read_text()))
    return missing


def read_last(settings: Settings, last: int) -> dict[str, list[dict]]:
    """{table: rows} of the `last` recorded runs (by run id), read from the lake without Spark."""
    from python_jobs.infra.s3 import s3_client

    client = s3_client(settings)
    run_ids = sorted(_recorded(client, settings))[-last:]
    out: dict[str, list[dict]] = {table: [] for table in TABLES}
    for table in TABLES:
        for run_id in run_ids:
            try:
                body = client.get_object(Bucket=settings.lake_bucket, Key=f"{PREFIX}{table}/{run_id}.json")["Body"]
            except client.exceptions.NoSuchKey:
                continue
            out[table] += [json.loads(line) for line in body.read().decode().splitlines() if line.strip()]
    return out
