"""Run the whole pipeline in one process: the local equivalent of the Airflow DAG.

Each step is logged with its duration and row counts; everything the run
writes carries its run id; `<state>/runs/<run_id>/summary.json` records the
steps, the reconciliation, the checkpoints, the metrics and the published
manifest's location. One process, so dbt-spark's session, the Python jobs
and Great Expectations share one SparkSession and one Derby catalog.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from python_jobs.config import Settings
from python_jobs.errors import UserError


def new_run_id() -> str:
    """Sortable by time, unique: 20261123T120000Z-1a2b3c."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _peak_rss_mb(spark) -> dict[str, float]:
    import resource

    peak = {"python_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    try:
        pid = spark.sparkContext._gateway.proc.pid
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak["jvm_mb"] = int(line.split()[1]) / 1024
    except (AttributeError, OSError):
        pass
    return {k: round(v, 1) for k, v in peak.items()}


class Run:
    """Records steps as they run and writes the summary, also when a step fails."""

    def __init__(self, settings: Settings, run_id: str, log: Callable[[str], None]) -> None:
        self.settings = settings
        self.run_id = run_id
        self.log = log
        self.dir = settings.runs_dir / run_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.summary: dict = {"run_id": run_id, "started_at": datetime.now(timezone.utc).isoformat(), "steps": []}
        self.started = time.time()

    def step(self, name: str, fn: Callable[[], dict | None]):
        self.log(f"[{self.run_id}] {name} ...")
        began = time.time()
        try:
            result = fn() or {}
        except Exception as exc:
            self.summary["steps"].append({"step": name, "status": "failed", "seconds": round(time.time() - began, 1)})
            self.summary["status"] = "failed"
            self.summary["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.write()
            raise
        seconds = round(time.time() - began, 1)
        rows = result.pop("rows", None)
        self.summary["steps"].append({"step": name, "status": "ok", "seconds": seconds, "rows": rows})
        self.log(f"[{self.run_id}] {name} done in {seconds}s" + (f" rows={rows}" if rows is not None else ""))
        return result

    def write(self) -> Path:
        self.summary["total_seconds"] = round(time.time() - self.started, 1)
        path = self.dir / "summary.json"
        path.write_text(json.dumps(self.summary, indent=1, default=str))
        return path


def run_pipeline(settings: Settings, log: Callable[[str], None] = print, run_id: str | None = None) -> dict:
    """Every stage, in order; returns the summary (with `manifest_url`)."""
    from pyspark.sql import functions as F

    from python_jobs import local_stack
    from python_jobs.dbt_runner import run_dbt
    from python_jobs.evaluate import evaluate_models, time_splitter
    from python_jobs.extract import extract, register_landed
    from python_jobs.generate import load_taxonomy
    from python_jobs.publish import publish
    from python_jobs.reconcile import reconcile
    from python_jobs.report import write_report
    from python_jobs.s3 import ensure_buckets
    from python_jobs.spark import get_spark
    from python_jobs.train import TrainParams, interaction_strength, popularity_scores, run_training
    from python_jobs.validate import input_frames, manifest_frame, output_frames, raise_on_failure, run_checkpoints

    run = Run(settings, run_id or new_run_id(), log)
    summary = run.summary
    dsn = local_stack.pg_dsn(settings)
    as_of = datetime.now(timezone.utc)
    gx_root = settings.project_dir / "expectations"

    def stage():
        local_stack.up(settings)
        ensure_buckets(settings)
        results = run_dbt(settings, ["build", "--target", "pg", "--select", "path:seeds", "path:models/staging",
                                     "path:tests/dbt"], quiet=True)
        freshness = run_dbt(settings, ["source", "freshness", "--target", "pg", "--select", "source:raw"], quiet=True)
        summary["freshness"] = {r.node.name: str(r.status) for r in freshness}
        return {"rows": {"dbt nodes": len(results), "freshness": summary["freshness"]}}

    def account():
        summary["reconciliation"] = reconcile(dsn)
        return {"rows": {r["table"]: {"raw": r["raw"], "clean": r["clean"], "rejected": r["rejected"]}
                         for r in summary["reconciliation"]}}

    run.step("stack, dbt staging and source freshness (pg)", stage)
    run.step("reconcile raw = clean + rejected", account)
    run.step("extract staging to S3", lambda: {"rows": extract(settings, dsn, run.run_id)})
    spark = get_spark(settings)

    def marts():
        register_landed(spark, settings, run.run_id)
        results = run_dbt(settings, ["build", "--target", "spark", "--select", "path:models/marts"], quiet=True)
        return {"rows": len(results)}

    run.step("dbt marts (spark)", marts)
    taxonomy = sorted(load_taxonomy()["category"].unique().tolist())
    params_in = {"max_reject_rate": settings.max_reject_rate, "categories": taxonomy, "top_n": settings.top_n,
                 "now_epoch": as_of.timestamp()}

    def checkpoints(name: str, frames: dict, parameters: dict) -> dict:
        results, docs = run_checkpoints(gx_root, frames, parameters)
        summary.setdefault("checkpoints", []).extend(r.to_dict() for r in results)
        run_docs = run.dir / "data_docs"
        shutil.copytree(Path(docs).parent, run_docs, dirs_exist_ok=True)
        summary["data_docs"] = str(run_docs / "index.html")
        raise_on_failure(name, results, summary["data_docs"])
        return {r.checkpoint: r.evaluated for r in results}

    def gate(name: str, frames_fn):
        return lambda: {"rows": checkpoints(name, frames_fn(), params_in)}

    run.step("validate inputs (Great Expectations)", gate("input", lambda: input_frames(spark, summary["reconciliation"])))

    base = TrainParams(seed=settings.seed, **settings.model)

    def evaluate():
        interactions = interaction_strength(spark.table("marts.fct_user_item_interactions"), base)
        listings = spark.table("marts.dim_listings")
        evaluation = evaluate_models(
            spark, interactions, time_splitter(listings, 0.2),
            lambda train: popularity_scores(train, as_of, base.half_life_days),
            k=settings.top_n, base=base, grid=settings.tuning_grid,
            user_categories=spark.table("marts.dim_user_interests"), max_users=settings.eval_users,
        )
        summary["evaluation"] = evaluation.to_dict()
        summary["report"] = str(write_report(run.dir / "report.html", run.run_id, summary["evaluation"]))
        return {"rows": {m: round(v["ndcg"], 4) for m, v in evaluation.metrics.items()}}

    run.step("evaluate and tune on the hold-out", evaluate)
    chosen = TrainParams(**summary["evaluation"]["params"])

    def train():
        result = run_training(spark, settings.lake_bucket, run.run_id, settings.top_n, chosen, as_of)
        return {"rows": {"recommendations": result["recommendations"], "similar_listings": result["similar_listings"]}}

    run.step("train ALS + popularity + hybrid", train)
    run.step("validate outputs (Great Expectations)", gate("output", lambda: output_frames(spark, run.run_id)))

    def do_publish():
        extra = {"metrics": summary["evaluation"]["metrics"], "model_params": summary["evaluation"]["params"],
                 "checkpoints": summary["checkpoints"]}
        recs = spark.table("recs.recommendations").where(F.col("run_id") == run.run_id)
        similar = spark.table("recs.similar_listings").where(F.col("run_id") == run.run_id)
        prefix = {"run_prefix_regex": f"^runs/{re.escape(run.run_id)}/"}
        manifest, url = publish(settings, run.run_id, recs, similar, extra,
                                check=lambda m: checkpoints("manifest", manifest_frame(spark, m), prefix))
        summary["manifest_key"] = f"s3://{settings.publish_bucket}/runs/{run.run_id}/manifest.json"
        summary["manifest_url"] = url
        summary["published_files"] = len(manifest["files"])
        return {"rows": manifest["row_counts"]}

    run.step("publish JSON + manifest", do_publish)
    summary["status"] = "ok"
    summary["peak_memory"] = _peak_rss_mb(spark)
    path = run.write()
    summary["summary_path"] = str(path)
    return summary


def require_ok(summary: dict) -> None:
    if summary.get("status") != "ok":
        raise UserError(f"run {summary.get('run_id')} did not complete: {summary.get('error')}")
