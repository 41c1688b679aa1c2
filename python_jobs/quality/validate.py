"""Run the Great Expectations gates: a failed checkpoint stops the run with one line.

The frames handed to the checkpoints are the marts and the training outputs,
plus derived flag columns (already_bid, is_open, score_is_finite, ...) so that
the rules that span tables are plain column expectations.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import Window
from pyspark.sql import functions as F

from python_jobs.errors import GateFailed
from python_jobs.runs.snapshots import pinned_table


@dataclass
class CheckResult:
    checkpoint: str
    success: bool
    evaluated: int
    failed: list[str]
    engine: str = "local"

    def to_dict(self) -> dict:
        return {"checkpoint": self.checkpoint, "success": self.success, "evaluated": self.evaluated,
                "failed": self.failed, "engine": self.engine}


def _context(root: Path):
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx.get_context(mode="file", context_root_dir=str(root))


def run_checkpoints(root: Path, frames: dict, parameters: dict, engine: str = "local") -> tuple[list[CheckResult], str]:
    """Run each frame's suite on `engine` (`local`: as a pandas frame in this process, read from Spark once;
    `spark`: the Spark frame, persisted so that its expectations' metrics read it once); return results and the
    Data Docs index path."""
    from python_jobs.quality.suites import checkpoint_name, suite_columns

    context = _context(root)
    results = []
    for name, frame in frames.items():
        try:
            checkpoint = context.checkpoints.get(checkpoint_name(name, engine))
        except Exception:
            raise GateFailed(f"checkpoint {checkpoint_name(name, engine)} is missing from {root}; "
                             "run `encore-recs expectations`") from None
        persisted, columns = None, suite_columns(name)
        if engine == "local" and not isinstance(frame, pd.DataFrame):
            frame = frame.select(*columns).toPandas()
        elif engine == "spark":
            persisted = frame = frame.select(*columns).persist()
        try:
            outcome = checkpoint.run(batch_parameters={"dataframe": frame}, expectation_parameters=parameters)
        finally:
            if persisted is not None:
                persisted.unpersist()
        failed, evaluated = [], 0
        for validation in outcome.run_results.values():
            for item in validation.results:
                evaluated += 1
                if not item.success:
                    config = item.expectation_config
                    column = config.kwargs.get("column") or config.kwargs.get("column_list") or ""
                    failed.append(f"{config.type}({column})")
        results.append(CheckResult(name, bool(outcome.success), evaluated, failed, engine))
    docs = root / "uncommitted" / "data_docs" / "local_site" / "index.html"
    return results, str(docs)


def raise_on_failure(gate: str, results: list[CheckResult], docs: str) -> None:
    for result in results:
        if not result.success:
            raise GateFailed(
                f"{gate} gate failed: suite {result.checkpoint} broke {', '.join(result.failed[:3])}; report: {docs}"
            )


# --- the frames each gate checks -------------------------------------------------


def input_frames(spark, reconciliation: list[dict], pinned: dict | None = None) -> dict:
    """The input gate's frames: the reconciliation and the marts at the run's `pinned` snapshots."""
    columns = ["source_table", "raw", "clean", "rejected", "balanced", "reject_rate"]
    recon = pd.DataFrame([(r["table"], r["raw"], r["clean"], r["rejected"], r["raw"] == r["clean"] + r["rejected"],
                           (r["rejected"] / r["raw"]) if r["raw"] else 0.0) for r in reconciliation], columns=columns)
    interactions = pinned_table(spark, "marts.fct_user_item_interactions", pinned).withColumn(
        "last_bid_at_epoch", F.col("last_bid_at").cast("double")
    )
    listings = pinned_table(spark, "marts.dim_listings", pinned).withColumn("is_open_int", F.col("is_open").cast("int"))
    bids = spark.table("staging.stg_raw__bids").withColumn("bid_at_epoch", F.col("bid_at").cast("double"))
    return {
        "inputs__reconciliation": recon,
        "inputs__stg_raw__bids": bids,
        "inputs__fct_user_item_interactions": interactions,
        "inputs__dim_listings": listings,
        "inputs__dim_users": pinned_table(spark, "marts.dim_users", pinned),
    }


def output_frames(spark, run_id: str, pinned: dict | None = None) -> dict[str, DataFrame]:
    """The output gate's frames: the run's lists and similar listings beside the marts it read (`pinned`)."""
    recs = spark.table("recs.recommendations").where(F.col("run_id") == run_id)
    seen = pinned_table(spark, "marts.fct_user_item_interactions", pinned).select(
        "uid", "listing_id", F.lit(True).alias("bid"))
    listings = pinned_table(spark, "marts.dim_listings", pinned).select("listing_id", "is_open", "seller_uid",
                                                                        "promoted_until")
    per_seller, per_user = Window.partitionBy("uid", "seller_uid"), Window.partitionBy("uid")
    promoted = F.col("source") == "promoted"
    checked = (
        recs.join(seen, ["uid", "listing_id"], "left")
        .join(listings, "listing_id", "left")
        .select(
            "uid", "listing_id", "rank", "score", "source", "list_source",
            F.coalesce("bid", F.lit(False)).alias("already_bid"),
            F.coalesce("is_open", F.lit(False)).alias("is_open"),
            # the marketplace's rules (models/rules.py): never the user's own, a cap per seller, the price band
            F.coalesce(F.col("seller_uid") == F.col("uid"), F.lit(False)).alias("own_listing"),
            F.coalesce("seller_uid", F.lit(-1)).alias("seller_uid"),
            F.when(F.col("seller_uid").isNull(), 0).otherwise(F.count("*").over(per_seller)).alias("of_seller"),
            "listing_amount",
            (promoted & F.col("promoted_until").isNull()).alias("promoted_without_promotion"),
            F.sum(promoted.cast("int")).over(per_user).alias("promoted_in_list"),
            (~F.isnan("score") & F.col("score").isNotNull() & (F.abs("score") < float("inf"))).alias("score_is_finite"),
        )
    )
    users = pinned_table(spark, "marts.dim_users", pinned).select("uid")
    coverage = users.join(recs.groupBy("uid").agg(F.count("*").alias("list_size")), "uid", "left").fillna(
        0, subset=["list_size"]
    )
    similar = (
        spark.table("recs.similar_listings")
        .where(F.col("run_id") == run_id)
        .join(listings.select(F.col("listing_id").alias("similar_listing_id"), F.col("is_open").alias("similar_is_open")),
              "similar_listing_id", "left")
        .withColumn("is_self", F.col("listing_id") == F.col("similar_listing_id"))
        .fillna(False, subset=["similar_is_open"])
    )
    return {
        "outputs__recommendations": checked,
        "outputs__user_coverage": coverage,
        "outputs__similar_listings": similar,
    }


def manifest_frame(manifest: dict) -> dict[str, pd.DataFrame]:
    """The manifest's file list as a frame (a few rows: validated in process, or as a Spark frame on the spark
    engine, converted by the caller)."""
    columns = ["kind", "key", "size", "rows", "sha256", "url", "expires_at"]
    frame = pd.DataFrame([{c: f[c] for c in columns} for f in manifest["files"]], columns=columns)
    return {"outputs__manifest": frame.astype({"size": "int64", "rows": "int64"})}
