"""The stage jobs: each reads only what earlier stages wrote (catalog tables, S3, the run's recorded state).

`run_stage` wraps one job: it times it, records the outcome in the run's
state and saves it, also when the job fails, so a run can resume from the
failed stage in another process or on another machine. The order of the
stages is `orchestration.stages.STAGES`; this module only knows each job.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from python_jobs.config import Settings
from python_jobs.errors import UserError
from python_jobs.runs.run_state import RunState
from python_jobs.stack import metastore_locks


@dataclass
class StageContext:
    """What a job gets: settings, the run's state, a log, and this process's SparkSession on first use."""

    settings: Settings
    state: RunState
    log: Callable[[str], None] = print
    _spark: object = field(default=None, repr=False)
    _warming: object = field(default=None, repr=False)

    def warm_spark(self) -> None:
        """Start the SparkSession and its catalog connection in the background (about 7 s: the JVM, then the
        Hive metastore client) while the stages that need neither run."""
        import threading

        from python_jobs.stack.spark import get_spark

        def start() -> None:
            try:
                get_spark(self.settings).sql("show databases").collect()
            except Exception:  # noqa: BLE001 - the stage that needs Spark starts it again and reports the error
                pass

        self._warming = threading.Thread(target=start, name="warm-spark", daemon=True)
        self._warming.start()

    @property
    def spark(self):
        if self._spark is None:
            from python_jobs.stack.spark import get_spark

            if self._warming is not None:
                self._warming.join()
                self._warming = None
            self._spark = get_spark(self.settings)
        return self._spark

    @property
    def summary(self) -> dict:
        return self.state.data

    @property
    def run_id(self) -> str:
        return self.state.run_id


# --- the jobs ----------------------------------------------------------------


# the staging build: seeds, staging models and their tests; the history's tests read a seed too (the rules) but
# run with the history, after publish (dbt selects a test when any of its parents is)
STAGING_SELECTION = ["--select", "path:seeds", "path:models/staging", "path:tests/dbt/staging",
                     "--exclude", "path:tests/dbt/history"]


def stage_pg(ctx: StageContext) -> dict:
    """dbt staging on Postgres, source freshness, and the raw = clean + rejected accounting."""
    from python_jobs.stack import postgres
    from python_jobs.infra.dbt_runner import run_dbt
    from python_jobs.ingest.raw_schema import ensure_raw_tables
    from python_jobs.ingest.reconcile import reconcile

    settings = ctx.settings
    ensure_raw_tables(postgres.pg_dsn(settings))
    results = run_dbt(settings, ["build", "--target", "pg", *STAGING_SELECTION], quiet=True)
    freshness = run_dbt(settings, ["source", "freshness", "--target", "pg", "--select", "source:raw"], quiet=True)
    ctx.summary["freshness"] = {r.node.name: str(r.status) for r in freshness}
    ctx.summary["reconciliation"] = reconcile(postgres.pg_dsn(settings))
    return {"dbt nodes": len(results), "freshness": ctx.summary["freshness"],
            **{r["table"]: {"raw": r["raw"], "clean": r["clean"], "rejected": r["rejected"]}
               for r in ctx.summary["reconciliation"]}}


def extract(ctx: StageContext) -> dict:
    """The staged rows onto S3; the bids only from the lake's watermark on (`landed` in the summary says how)."""
    from python_jobs.stack import postgres
    from python_jobs.ingest.extract import extract as land

    counts, ctx.summary["landed"] = land(ctx.settings, postgres.pg_dsn(ctx.settings), ctx.run_id)
    for model, plan in ctx.summary["landed"].items():
        if plan["mode"] == "full":
            ctx.log(f"[{ctx.run_id}]   {model} landed in full: {plan['reason']}")
    return counts


def events(ctx: StageContext) -> dict:
    """The app's events landed since the last run into events.bronze_app_events (Structured Streaming,
    availableNow); malformed lines quarantined with a reason."""
    from python_jobs.events.ingest import (BRONZE, QUARANTINE, empty_counts, ensure_tables, ingest, legacy_tables,
                                           nothing_new)
    from python_jobs.events.landing import CHECKPOINT, PREFIX
    from python_jobs.infra.s3 import delete_prefix, s3_client

    settings, client = ctx.settings, s3_client(ctx.settings)

    def exists(prefix: str) -> bool:
        return client.list_objects_v2(Bucket=settings.lake_bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0) > 0

    legacy = legacy_tables(ctx.spark)
    if legacy:  # without its checkpoint the stream reads every landed object again, into new Iceberg tables
        ctx.log(f"[{ctx.run_id}]   {', '.join(legacy)} still Parquet: every landed event is ingested again into "
                "Iceberg tables")
        delete_prefix(client, settings.lake_bucket, CHECKPOINT)
    if (exists(CHECKPOINT) and nothing_new(client, settings.lake_bucket)
            and all(ctx.spark.catalog.tableExists(table) for table in (BRONZE, QUARANTINE))):
        counts = empty_counts()  # no stream: the cost of a listing (and the tables are there for the marts)
        ensure_tables(ctx.spark)  # with the columns added since an older lake made them
    else:
        counts = ingest(ctx.spark, client, settings.lake_bucket, ctx.run_id, exists(PREFIX), not exists(CHECKPOINT))
    ctx.summary["events"] = counts
    return counts


def marts(ctx: StageContext) -> int:
    """Bring the lake's staged bids up to this run's landing and point the other staging.* at it, then dbt build
    the marts on the configured Spark target."""
    from python_jobs.events.ingest import BRONZE, QUARANTINE
    from python_jobs.infra.dbt_runner import run_dbt
    from python_jobs.ingest.extract import landed_tables
    from python_jobs.ingest.merge_landed import merge_landed

    from python_jobs.infra.s3 import s3_client
    from python_jobs.runs.snapshots import current_snapshots
    from python_jobs.runs.table_folders import clear_orphans

    settings = ctx.settings
    target = settings.dbt_spark_target
    # dbt-spark's session method picks up this process's session; a folder a crashed run left without its table
    # would stop the table being created again
    client = s3_client(settings)
    cleared = clear_orphans(ctx.spark, client, "marts")
    if cleared:
        ctx.log(f"[{ctx.run_id}]   cleared table folders no table uses (left by a crash): {', '.join(cleared)}")
    ctx.summary["merged"] = merge_landed(ctx.spark, client, settings, ctx.run_id, ctx.summary.get("landed", {}))
    tables = json.dumps({"tables": landed_tables(settings, ctx.run_id), "lake_bucket": settings.lake_bucket,
                         "refresh": [f"staging.{model}" for model in sorted(ctx.summary["merged"])]
                         + [table for table in (BRONZE, QUARANTINE) if ctx.spark.catalog.tableExists(table)]})
    # an env var, not --vars: dbt parses the whole project again whenever the vars differ from its last parse's;
    # the same for both calls, so the second parses nothing again
    as_of = {"ENCORE_DBT_AS_OF": ctx.state.as_of.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")}
    run_dbt(settings, ["run-operation", "register_landed", "--args", tables, "--target", target], quiet=True,
            env=as_of)
    if ctx.summary.get("backfill") and _read_as_of(ctx):
        return 0
    refresh = _full_refresh_reason(ctx)
    if refresh:
        ctx.log(f"[{ctx.run_id}]   incremental marts rebuilt in full: {refresh}")
    # --fail-fast: a failed node fails the run, and a store gone away would otherwise cost each remaining node
    # its own wait for the store; the tests tagged repeated_by_input_gate are the data team's `dbt test`'s, not
    # the run's: validate-inputs checks the same on the same marts next
    results = run_dbt(settings, ["build", "--fail-fast", "--target", target, "--select", "path:models/events",
                                 "path:models/marts", "path:seeds/experiments.csv", "path:seeds/list_rules.csv",
                                 "path:models/experiments", "path:tests/dbt/experiments", "--exclude",
                                 "path:tests/dbt/history", "tag:repeated_by_input_gate",
                                 *(["--full-refresh"] if refresh else [])], quiet=True,
                      env=as_of)
    ctx.summary["snapshots"] = current_snapshots(ctx.spark, "marts")
    # a row per experiment and variant: into the summary, so the history and the morning report carry them
    ctx.summary["experiment_results"] = [row.asDict() for row in ctx.spark.table("marts.exp_results").collect()]
    return len(results)


INCREMENTAL_MARTS = ("fct_user_item_interactions", "fct_user_item_events")
# the marts the later stages read (fct_user_item_events only where the events stage has built it)
READ_MARTS = ("fct_user_item_interactions", "dim_listings", "dim_users", "dim_user_interests")


def _read_as_of(ctx: StageContext) -> bool:
    """A backfill reads the marts as they stood at its as-of time (Iceberg time travel: what that day's run saw,
    not today's staging rebuilt as of then), when every mart it reads has a snapshot from then: the summary's
    `snapshots` pin them for the later stages. False (rebuild as of the day) when one has none."""
    from python_jobs.runs.snapshots import pinned_table, snapshots_as_of

    spark = ctx.spark
    wanted = [f"marts.{name}" for name in READ_MARTS]
    wanted += [t for t in ("marts.fct_user_item_events", "marts.exp_results") if spark.catalog.tableExists(t)]
    found, how, missing = snapshots_as_of(spark, wanted, ctx.state.as_of)
    # the events mart too: a day's row sums the whole day, so today's table read with the as-of's filter would
    # hold events after it (its history is gone after a full refresh, which drops it)
    if [t for t in missing if t.split(".")[1] in (*READ_MARTS, "fct_user_item_events")]:
        ctx.log(f"[{ctx.run_id}]   no snapshot of {', '.join(missing)} as of {ctx.state.as_of.isoformat()}: "
                "the marts are rebuilt as of the backfill's day")
        return False
    ctx.summary["snapshots"] = found
    ctx.summary["time_travel"] = how
    results = pinned_table(spark, "marts.exp_results", found).collect() if "marts.exp_results" in found else []
    ctx.summary["experiment_results"] = [row.asDict() for row in results]
    ctx.log(f"[{ctx.run_id}]   the marts as of {ctx.state.as_of.isoformat()} by time travel, not rebuilt: "
            + ", ".join(f"{t} ({how[t]})" for t in sorted(found)))
    return True


def _full_refresh_reason(ctx: StageContext) -> str | None:
    """Why the incremental marts cannot merge today's change, if they cannot: a backfill's as-of lies before rows
    they already hold, a lake built before Iceberg holds them as Parquet (MERGE needs Iceberg), bids the
    interactions mart counted changed since (a merge recomputes only the pairs of bids it has not counted), the
    events mart was built before it was incremental by day, and bronze lost events batches the deduplicated events
    table holds (the events were replaced)."""
    from python_jobs.events.ingest import bronze_lost
    from python_jobs.runs.settled_bids import settled_bids_changed
    from python_jobs.runs.snapshots import provider, table_properties

    if ctx.summary.get("backfill"):
        return "a backfill is built as of its own day"
    for name in INCREMENTAL_MARTS:
        table = f"marts.{name}"
        if ctx.spark.catalog.tableExists(table) and provider(ctx.spark, table) != "iceberg":
            return f"{table} is not an Iceberg table yet"
    events_mart = "marts.fct_user_item_events"  # its snapshot of the events: macros/events_days_changed.sql
    if (ctx.spark.catalog.tableExists(events_mart)
            and "encore.events_snapshot" not in table_properties(ctx.spark, events_mart)):
        return f"{events_mart} was built before it was incremental (by day)"
    return bronze_lost(ctx.spark) or settled_bids_changed(ctx.spark)


def _gate_parameters(ctx: StageContext) -> dict:
    from python_jobs.ingest.generate import load_taxonomy

    return {"max_reject_rate": ctx.settings.max_reject_rate, "top_n": ctx.settings.top_n,
            "categories": sorted(load_taxonomy()["category"].unique().tolist()),
            # the landed bids are as the source holds them (none after the run started); the marts as of the run
            "now_epoch": datetime.fromisoformat(ctx.state.data["started_at"]).timestamp(),
            "as_of_epoch": ctx.state.as_of.timestamp(), "promoted_slots": ctx.settings.promoted_slots}


FRAME_COLUMNS = 15  # the widest frame a gate validates or publish reads


def _frame_engine(ctx: StageContext, step: str, rows: int) -> str:
    """Where `step` handles its frames of up to `rows` rows (`models.engine`), decided once per run and
    recorded in the summary's `engine`."""
    from python_jobs.models import engine

    chosen = ctx.summary.setdefault("engine", {})
    if step not in chosen:
        chosen[step], chosen[f"{step}_reason"] = engine.for_frames(ctx.settings.frame_engine, rows, FRAME_COLUMNS)
        ctx.log(f"[{ctx.run_id}]   {step} on {chosen[step]} ({chosen[f'{step}_reason']})")
    return chosen[step]


def _largest_table(ctx: StageContext) -> int:
    """Rows of the largest table a gate reads: the clean bids, or the lists written by train."""
    lists = [s.get("rows", {}) for s in ctx.summary.get("steps", []) if s["stage"] == "train"]
    written = [sum(v for k, v in rows.items() if k in ("recommendations", "model_recommendations"))
               for rows in lists if isinstance(rows, dict)]
    return max([r["clean"] for r in ctx.summary.get("reconciliation", [])] + written + [0])


def _gx_project(ctx: StageContext) -> Path:
    """This run's copy of the GX project (suites, checkpoints, configuration; no results): its validation results
    and Data Docs hold this run's alone, so building the docs never re-renders every earlier run's results."""
    root = ctx.state.dir / "gx"
    if not (root / "great_expectations.yml").exists():
        shutil.copytree(ctx.settings.project_dir / "expectations", root, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("uncommitted"))
    return root


def _checkpoints(ctx: StageContext, gate: str, frames: dict, parameters: dict) -> dict:
    """Run the named checkpoints; record them and their Data Docs in the run; a failure stops the run."""
    import pandas as pd

    from python_jobs.infra.s3 import upload_tree
    from python_jobs.quality.validate import raise_on_failure, run_checkpoints

    engine = _frame_engine(ctx, "gates", _largest_table(ctx))
    if engine == "spark":
        frames = {name: ctx.spark.createDataFrame(f) if isinstance(f, pd.DataFrame) else f
                  for name, f in frames.items()}
    results, docs = run_checkpoints(_gx_project(ctx), frames, parameters, engine)
    kept = [c for c in ctx.summary.get("checkpoints", []) if c["checkpoint"] not in frames]
    ctx.summary["checkpoints"] = kept + [r.to_dict() for r in results]
    run_docs = ctx.state.dir / "data_docs"
    shutil.copytree(Path(docs).parent, run_docs, dirs_exist_ok=True)
    ctx.summary["data_docs"] = str(run_docs / "index.html")
    ctx.summary["data_docs_s3"] = upload_tree(ctx.settings, run_docs, f"runs/{ctx.run_id}/data_docs") + "/index.html"
    raise_on_failure(gate, results, ctx.summary["data_docs"])
    return {r.checkpoint: r.evaluated for r in results}


def validate_inputs(ctx: StageContext) -> dict:
    from python_jobs.quality.validate import input_frames

    frames = input_frames(ctx.spark, ctx.summary["reconciliation"], ctx.summary.get("snapshots"))
    return _checkpoints(ctx, "input", frames, _gate_parameters(ctx))


def train(ctx: StageContext) -> dict:
    """Evaluate every model on the replay (ALS tuned and the blend chosen on validation), then fit them all on
    everything and write the hybrid's lists and each model's own."""
    from python_jobs.quality import quality_gate
    from python_jobs.models import tuning_record
    from python_jobs.models.evaluate import evaluate_models, time_splitter
    from python_jobs.models import TrainParams, engine
    from python_jobs.history.report import write_report
    from python_jobs.infra.s3 import upload_tree
    from python_jobs.models.train import load_marts, run_training
    from python_jobs.models.warm_start import WarmStarts

    settings, spark, as_of = ctx.settings, ctx.spark, ctx.state.as_of
    base = TrainParams(seed=settings.seed, **settings.model)
    began = time.time()
    data, interactions, listings, users = load_marts(spark, base, as_of.timestamp(), settings.use_events,
                                                     ctx.summary.get("snapshots"))
    size = {"interactions": len(interactions), "event_rows": int((~interactions["is_bid"]).sum()),
            "users": int(interactions["uid"].nunique()),
            "listings": int(interactions["listing_id"].nunique())}
    ctx.log(f"[{ctx.run_id}]   loaded {size['interactions']:,} interactions, {data.n_users:,} users, "
            f"{data.n_items:,} listings in {time.time() - began:.1f}s; models: {', '.join(settings.models)}")
    als_engine, because = engine.for_training(settings.train_engine, data, base, settings.tuning_grid)
    base = base.on_engine(als_engine)
    ctx.summary.setdefault("engine", {}).update(als=als_engine, als_reason=because)
    ctx.log(f"[{ctx.run_id}]   ALS engine: {als_engine} ({because})")
    record = tuning_record.load(settings)
    search, why = tuning_record.decide(settings.tune, record, settings.tuning_grid, size, als_engine)
    if record and not search and settings.tuning_grid:
        base = base.with_values(**record["params"])
    ctx.log(f"[{ctx.run_id}]   tuning: {'searching the grid, ' if search else ''}{why}")
    listed_at = data.items["listed_at"].to_numpy(float)  # in listing position order
    ends_at = data.items["ends_at"].to_numpy(float)
    setup = {"models": list(settings.models), "params": base.to_dict()}  # what the blend's weights are for
    stored_blend = tuning_record.load(settings, tuning_record.BLEND_KEY)
    recorded_blend, blend_why = (None, "the grid is searched") if search else tuning_record.reuse_blend(
        settings.tune, stored_blend, setup, size)
    ctx.log(f"[{ctx.run_id}]   blend: {blend_why if recorded_blend else 'chosen on validation, ' + blend_why}")
    champion = quality_gate.champion_config(settings)
    starts = WarmStarts(settings, ctx.run_id, base.deep_full_every_days)
    evaluation = evaluate_models(
        data, interactions, time_splitter(0.2, listed_at, ends_at), names=settings.models, k=settings.top_n,
        params=base, grid=settings.tuning_grid if search else None, spark=spark, max_users=settings.eval_users,
        log=lambda line: ctx.log(f"[{ctx.run_id}]   {line}"), champion=champion, starts=starts,
        recorded_blend=recorded_blend)
    ctx.summary["quality_gate"] = quality_gate.judge(evaluation, settings.max_quality_drop)
    if search:
        tuned = {key: getattr(evaluation.params, key) for key in settings.tuning_grid}
        tuning_record.save(settings, {"params": tuned, "grid": settings.tuning_grid, "engine": als_engine,
                                      "size": size, "run_id": ctx.run_id, "results": evaluation.tuning})
    if tuning_record.keeps_blend(stored_blend, evaluation.blend, ctx.summary["quality_gate"]["outcome"]):
        tuning_record.save(settings, {
            "weights": evaluation.blend["weights"], "validation_ndcg": evaluation.blend["validation_ndcg"],
            "cutoff": evaluation.blend["cutoff"], "setup": {**setup, "params": evaluation.params.to_dict()},
            "size": size, "run_id": ctx.run_id}, tuning_record.BLEND_KEY)
    ctx.summary["evaluation"] = {**evaluation.to_dict(), "tuning_source": why, "models": list(settings.models)}
    ctx.summary["candidates"] = evaluation.candidates
    ctx.summary["report"] = str(write_report(ctx.state.dir / "report.html", ctx.run_id, ctx.summary["evaluation"]))
    ctx.summary["report_s3"] = upload_tree(settings, ctx.summary["report"], f"runs/{ctx.run_id}/report.html")
    evaluated = time.time() - began
    list_rows = data.n_users * settings.top_n * (len(settings.models) + 1)
    ranking, because = engine.for_ranking(settings.train_engine, data.n_users, len(settings.models), settings.top_n,
                                          evaluation.params.candidates)
    ctx.summary["engine"].update(ranking=ranking, ranking_reason=because)
    ctx.log(f"[{ctx.run_id}]   ranking engine: {ranking} ({because})")
    result = run_training(spark, settings, ctx.run_id, settings.top_n, data, listings, users, settings.models,
                          evaluation.params, evaluation.blend["weights"], _frame_engine(ctx, "tables", list_rows),
                          ranking, starts)
    if starts.fits:  # the deep models' cadence: each fit warm or full, why, its passes and seconds
        ctx.summary["deep_fits"] = starts.fits
        ctx.log(f"[{ctx.run_id}]   deep models: " + "; ".join(
            f"{key} {fit['mode']} ({fit['epochs']} passes, {fit['seconds']:.1f}s: {fit['why']})"
            for key, fit in starts.fits.items()))
    return {"interactions": size["interactions"], "evaluate_seconds": round(evaluated, 1),
            "fit_seconds": round(time.time() - began - evaluated, 1),
            **{m: round(v["ndcg"], 4) for m, v in evaluation.metrics.items()},
            "recommendations": result["recommendations"], "model_recommendations": result["model_recommendations"],
            "similar_listings": result["similar_listings"], "list_sources": result["list_sources"],
            "catalog_coverage": result["catalog_coverage"]}


def validate_outputs(ctx: StageContext) -> dict:
    from python_jobs.models.rules import load_rules
    from python_jobs.quality.validate import output_frames

    return _checkpoints(ctx, "output", output_frames(ctx.spark, ctx.run_id, ctx.summary.get("snapshots")),
                        {**_gate_parameters(ctx), **load_rules().gate_parameters()})


def publish(ctx: StageContext) -> dict:
    from pyspark.sql import functions as F

    from python_jobs.quality import quality_gate

    from python_jobs.runs import run_tables
    from python_jobs.history.morning_report import INDEX_KEY
    from python_jobs.publish.publish import publish as write_and_publish
    from python_jobs.infra.s3 import s3_client
    from python_jobs.models.train import RUN_TABLES
    from python_jobs.models.rules import load_rules
    from python_jobs.quality.validate import manifest_frame
    from python_jobs.runs.maintenance import tag_snapshots

    settings, spark, summary = ctx.settings, ctx.spark, ctx.summary
    quality_gate.enforce(settings, ctx.run_id, summary)  # a refused regression publishes nothing
    summary["experiments"] = servable_experiments(ctx)
    extra = {"experiments": summary["experiments"]["published"], "rules": load_rules().to_dict(),
             "metrics": summary["evaluation"]["metrics"], "model_params": summary["evaluation"]["params"],
             "checkpoints": summary["checkpoints"], "quality_gate": summary.get("quality_gate"),
             # the Iceberg snapshot of every mart the run read (the marts stage recorded them)
             "snapshots": summary.get("snapshots", {}),
             # the morning report across runs (rewritten after every run; the link lasts as long as the others)
             "report_index_url": s3_client(settings).generate_presigned_url(
                 "get_object", Params={"Bucket": settings.publish_bucket, "Key": INDEX_KEY},
                 ExpiresIn=settings.url_expiry_seconds)}
    engine = _frame_engine(ctx, "publish", _largest_table(ctx))
    if engine == "local":  # the run's partitions straight from their Parquet objects
        tables = {t: run_tables.read(spark, settings, t, ctx.run_id, [c for c, _ in run_tables.columns(schema)],
                                     "local") for t, schema in RUN_TABLES.items()}
    else:
        tables = {t: spark.table(f"recs.{t}").where(F.col("run_id") == ctx.run_id).drop("run_id") for t in RUN_TABLES}
    recs, model_recs, similar, listings = (tables[t] for t in RUN_TABLES)
    prefix = {"run_prefix_regex": f"^runs/{re.escape(ctx.run_id)}/"}
    manifest, url, served = write_and_publish(
        settings, ctx.run_id, recs, similar, extra,
        check=lambda m: _checkpoints(ctx, "manifest", manifest_frame(m), prefix), model_recs=model_recs,
        listings=listings, engine=engine, as_of=ctx.state.as_of, take_latest=settings.take_latest,
    )
    # the snapshots this run read, tagged: time travel to them outlives snapshot expiry (runs/maintenance.py)
    summary["tagged"] = tag_snapshots(spark, ctx.run_id, summary.get("snapshots", {}))
    summary["manifest_key"] = f"s3://{settings.publish_bucket}/runs/{ctx.run_id}/manifest.json"
    summary["manifest_url"] = url
    summary["published_files"] = len(manifest["files"])
    summary["published"] = True
    summary["latest"] = served
    ctx.log(f"[{ctx.run_id}]   {served_line(summary)}")
    summary["status"] = "ok"
    return manifest["row_counts"]


def servable_experiments(ctx: StageContext) -> dict:
    """The experiments not yet ended at the run's time whose every variant serves a list this run publishes (the
    others are listed with why): serve assigns users to them from the manifest."""
    from python_jobs.publish import experiments

    fitted = {"hybrid", *ctx.settings.models}
    as_of = ctx.state.as_of.strftime(experiments.STAMP)
    rows = [row for row in experiments.load() if row["ends_at"] > as_of]
    missing = {}
    for row in rows:
        if row["serves"] not in fitted:
            missing.setdefault(row["experiment"], []).append(row["serves"])
    return {"published": [row for row in rows if row["experiment"] not in missing],
            "skipped": {name: f"this run fitted no {', '.join(models)} (ENCORE_MODELS)" for name, models in missing.items()}}


def served_line(summary: dict) -> str:
    """Whether the run's publish moved `latest`, and which run the app is served: a backfill's leaves it."""
    served, run_id = summary["latest"], summary["run_id"]
    if served["moved"]:
        return f"latest: moved to this run {run_id} (as of {served['as_of']}); the app is served it"
    return (f"latest: not moved; this run is as of {summary['as_of'][:19]}, the app is still served "
            f"{served['run_id']} (as of {served['as_of']}). To serve this run anyway: "
            f"encore-recs run --run-id {run_id} --from publish --take-latest")


JOBS: dict[str, Callable[[StageContext], object]] = {
    "stage": stage_pg,
    "extract": extract,
    "events": events,
    "marts": marts,
    "validate-inputs": validate_inputs,
    "train": train,
    "validate-outputs": validate_outputs,
    "publish": publish,
}


# --- running one -------------------------------------------------------------


def peak_memory_mb(spark) -> dict[str, float]:
    """Peak resident memory of this process and, when it has one, its Spark driver JVM."""
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


def last_spark_job(spark) -> int:
    """The id of the newest Spark job this process's SparkContext ran (-1 for none); job ids count up, so the
    difference across a stage is the number of jobs it ran (dbt on the Thrift server runs its own)."""
    if spark is None:
        return -1
    return max(spark.sparkContext.statusTracker().getJobIdsForGroup(), default=-1)


def run_stage(ctx: StageContext, name: str, title: str) -> None:
    """Run one job, record its outcome (ok or failed, seconds, rows, memory, Spark jobs) and save the run's
    state."""
    ctx.log(f"[{ctx.run_id}] {title} ...")
    first_job = last_spark_job(ctx._spark)
    began = time.time()
    try:
        with metastore_locks.kept(ctx.settings, ctx.log):
            rows = JOBS[name](ctx)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        ctx.state.record(name, title, "failed", time.time() - began, error=f"{name}: {first}")
        try:
            ctx.state.save()
        except UserError as unsaved:  # the store is what failed: the stage's own error is the one to report
            ctx.log(f"[{ctx.run_id}] {unsaved}")
        raise
    seconds = time.time() - began
    ctx.state.record(name, title, "ok", seconds, rows)
    ctx.state.data["steps"][-1].update(pid=os.getpid(), peak_memory=peak_memory_mb(ctx._spark),
                                       spark_jobs=last_spark_job(ctx._spark) - first_job)
    ctx.summary["total_seconds"] = round(sum(s["seconds"] for s in ctx.summary["steps"]), 1)
    ctx.state.save()
    ctx.log(f"[{ctx.run_id}] {title} done in {seconds:.1f}s" + (f" rows={rows}" if rows is not None else ""))
