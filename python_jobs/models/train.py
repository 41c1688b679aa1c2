"""The train stage's wiring: marts into one process, the models fitted and blended, lists back to the catalog.

The marts are read once into a `TrainingSet` (every user, every listing,
interactions with their strength and recency). Every model in
`ENCORE_MODELS` is fitted on all interactions; each user gets the hybrid's
list (the blend with the weights chosen on validation) and, where a model has
something personal to say, that model's own list, among the open listings
they have not bid on. Similar listings come from the first of item_knn, ALS
and content that runs. The tables are written as this run's partitions of
`recs.recommendations`, `recs.model_recommendations` and `recs.similar_listings`.

strength = count_weight * bid_count + amount_weight * log1p(total_bid_amount).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from python_jobs import models as registry
from python_jobs.models.base import SCORE_CELLS, best_n
from python_jobs.models.data import TrainingSet, build
from python_jobs.models.lists import Ranker, block_lists, make_ranker
from python_jobs.models.rules import load_rules
from python_jobs.models.retrieve import CANDIDATES
from python_jobs.runs.snapshots import pinned_table

SIMILAR_FROM = ("item_knn", "als", "content")


def interaction_strength(interactions: DataFrame, params: registry.TrainParams) -> DataFrame:
    """Add `strength`, the implicit-feedback signal the models learn from."""
    return interactions.withColumn(
        "strength",
        params.count_weight * F.col("bid_count").cast("double")
        + params.amount_weight * F.log1p(F.greatest(F.col("total_bid_amount").cast("double"), F.lit(0.0))),
    )


def _epoch(column: str):
    return F.col(column).cast("double").alias(column)


def event_rows(spark: SparkSession, as_of: float, pinned: dict | None = None) -> pd.DataFrame:
    """The app's events as interaction rows (strength from the mart's weights, times as the bids' columns,
    is_bid False), up to `as_of`; none when the mart is absent (a catalog from before the events stage)."""
    if not spark.catalog.tableExists("marts.fct_user_item_events"):
        return pd.DataFrame(columns=["uid", "listing_id", "strength", "first_bid_at", "last_bid_at", "is_bid"])
    events = pinned_table(spark, "marts.fct_user_item_events", pinned).where(
        (F.col("event_strength") > 0) & (F.col("first_event_at").cast("double") <= as_of))
    return events.select(F.col("uid").cast("long"), F.col("listing_id").cast("long"),
                         F.col("event_strength").alias("strength"), _epoch("first_event_at").alias("first_bid_at"),
                         _epoch("last_event_at").alias("last_bid_at"), F.lit(False).alias("is_bid")).toPandas()


def load_marts(spark: SparkSession, params: registry.TrainParams, as_of: float, use_events: bool = True,
               pinned: dict | None = None):
    """(TrainingSet as of `as_of`, interactions, listings, users) from the marts at the run's `pinned` snapshots
    (`runs.snapshots`; None: as they are), in this process. The interactions are the bids (is_bid) and, with
    `use_events`, a row per user, listing and day of the app's events."""
    def mart(name: str):
        return pinned_table(spark, f"marts.{name}", pinned)

    weighted = interaction_strength(mart("fct_user_item_interactions"), params)
    interactions = weighted.select(F.col("uid").cast("long"), F.col("listing_id").cast("long"), "strength",
                                   _epoch("first_bid_at"), _epoch("last_bid_at"), F.lit(True).alias("is_bid")).toPandas()
    if use_events:
        events = event_rows(spark, as_of, pinned)
        if len(events):
            interactions = pd.concat([interactions, events.astype(interactions.dtypes.to_dict())], ignore_index=True)
    listings = mart("dim_listings").select(
        F.col("listing_id").cast("long"), "product", "category", "sub_category", "listing_amount",
        _epoch("listed_at"), _epoch("ends_at"), "is_open", F.col("seller_uid").cast("long"), _epoch("promoted_until"))
    if spark.catalog.tableExists("marts.fct_user_item_events"):  # how often the app showed each listing
        shown = mart("fct_user_item_events").groupBy(F.col("listing_id").cast("long").alias(
            "listing_id")).agg(F.sum("impression_count").cast("long").alias("impressions"))
        listings = listings.join(shown, "listing_id", "left")
    listings = listings.toPandas()
    users = mart("dim_users").select(F.col("uid").cast("long"), "user_name").toPandas()
    interests = mart("dim_user_interests").select(
        F.col("uid").cast("long"), "category", "sub_category").toPandas()
    return build(interactions, users, listings, interests, as_of, params.half_life_days), interactions, listings, users


def build_lists(data: TrainingSet, components: list, weights: dict, heavy_from: int, n: int,
                candidates: int = CANDIDATES):
    """(served hybrid rows, each model's own rows, similar-listing rows) in this process: every user as one block
    of `lists.block_lists`, among the open listings."""
    ranker = make_ranker(data, components, weights, heavy_from, n, candidates)
    served, own = block_lists(ranker, np.arange(data.n_users))
    return served, own, similar_for(ranker, components)


def similar_for(ranker: Ranker, components: list) -> pd.DataFrame:
    """Similar listings from the first of SIMILAR_FROM that runs; per listing, so on the driver on either
    ranking engine."""
    source = next((m for name in SIMILAR_FROM for m in components if m.name == name), None)
    if source is None or not len(ranker.open_items):
        return pd.DataFrame(columns=["listing_id", "rank", "similar_listing_id", "score"])
    return similar_listings(source, ranker.data, ranker.open_items, ranker.n)


def similar_listings(model, data: TrainingSet, open_items: np.ndarray, n: int) -> pd.DataFrame:
    """For every listing with bids, its n most similar open listings (never itself, similarity above 0)."""
    with_bids = np.flatnonzero(data.bidder_counts > 0)
    frames = []
    step = max(1, SCORE_CELLS // max(1, len(open_items)))
    for start in range(0, len(with_bids), step):
        part = with_bids[start:start + step]
        sims = model.similar(part, open_items).astype(np.float32)
        sims[(part[:, None] == open_items[None, :]) | (sims <= 0)] = -np.inf
        chosen, scores = best_n(sims, open_items, n)
        keep = (chosen >= 0).ravel()
        frames.append(pd.DataFrame({
            "listing_id": np.repeat(data.item_ids[part], n)[keep], "rank": np.tile(np.arange(1, n + 1), len(part))[keep],
            "similar_listing_id": data.item_ids[chosen.ravel()[keep]], "score": scores.ravel()[keep]}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["listing_id", "rank", "similar_listing_id", "score"])


MODEL_LIST_SCHEMA = "uid int, rank int, listing_id int, score double, source string, model string"
LIST_SCHEMA = ("uid int, rank int, listing_id int, score double, source string, list_source string, user_name string, "
               "product string, category string, sub_category string, listing_amount double, ends_at timestamp")
SIMILAR_SCHEMA = "listing_id int, rank int, similar_listing_id int, score double"
# seller_uid: serve applies the rules at request time (never a user's own listing, the cap per seller)
DETAILS_SCHEMA = ("listing_id int, product string, category string, sub_category string, listing_amount double, "
                  "ends_at timestamp, seller_uid int")
RUN_TABLES = {"recommendations": LIST_SCHEMA, "model_recommendations": MODEL_LIST_SCHEMA,
              "similar_listings": SIMILAR_SCHEMA, "listing_details": DETAILS_SCHEMA}


def run_training(spark: SparkSession, settings, run_id: str, n: int, data: TrainingSet,
                 listings: pd.DataFrame, users: pd.DataFrame, names, params: registry.TrainParams,
                 weights: dict, engine: str = "local", ranking: str = "local", starts=None) -> dict:
    """Fit on all interactions; write this run's recs.recommendations (served), recs.model_recommendations
    (each model's own list), recs.similar_listings and recs.listing_details (every listed listing's details as
    this run saw them, so publish never reads a mart the data team may be rebuilding), on `engine`. `ranking`
    says where the users' lists are ranked: in this process, or on Spark (`rank_spark`, written by Spark).
    `starts` (`warm_start.WarmStarts`): how deep models are fitted; default in full."""
    from python_jobs.infra.s3 import s3_client
    from python_jobs.runs import run_tables
    from python_jobs.runs.run_tables import DETAILS
    from python_jobs.runs.table_folders import clear_orphans

    from python_jobs.models.warm_start import WarmStarts

    starts = starts or WarmStarts()
    components = registry.build(names, params, spark)
    for model in components:
        starts.fit(model, data, "final")
    ranker = make_ranker(data, components, weights, params.min_bids_for_als, n, params.candidates, load_rules(),
                         settings.explore_slots, settings.promoted_slots)
    similar = similar_for(ranker, components)
    details = listings[["listing_id", *DETAILS]].assign(ends_at=lambda f: pd.to_datetime(f["ends_at"], unit="s", utc=True))
    spark.sql(f"create database if not exists recs location 's3a://{settings.lake_bucket}/warehouse/recs.db'")
    clear_orphans(spark, s3_client(settings), "recs")
    if ranking == "spark":
        from python_jobs.models.rank_spark import ranked_on_spark, save_lists

        with ranked_on_spark(spark, ranker) as lists:
            written = save_lists(spark, settings, run_id, lists, users, details)
    else:
        served, own = block_lists(ranker, np.arange(data.n_users))
        written = _save_lists(spark, settings, run_id, served, own, users, details, engine)
    run_tables.save(spark, settings, "similar_listings", run_id,
                    similar.astype({"listing_id": "int32", "rank": "int32", "similar_listing_id": "int32",
                                    "score": "float64"}), SIMILAR_SCHEMA, engine)
    listed = np.union1d(written["listed"], pd.concat([similar["listing_id"], similar["similar_listing_id"]]))
    listed_details = details.assign(seller_uid=pd.array(listings["seller_uid"], "Int32"))[details["listing_id"].isin(listed)]
    run_tables.save(spark, settings, "listing_details", run_id, listed_details.astype({"listing_id": "int32"}),
                    DETAILS_SCHEMA, engine)
    return {"recommendations": written["recommendations"], "model_recommendations": written["model_recommendations"],
            "similar_listings": len(similar), "params": params.to_dict(),
            # users per model that served their list, and the share of open listings in anyone's list
            "list_sources": {str(k): int(v) for k, v in written["list_sources"].items()},
            "catalog_coverage": round(written["served_listings"] / max(int(listings["is_open"].sum()), 1), 4)}


def _save_lists(spark, settings, run_id: str, served: pd.DataFrame, own: pd.DataFrame, users: pd.DataFrame,
                details: pd.DataFrame, engine: str) -> dict:
    """`rank_spark.save_lists` for lists ranked in this process, written on `engine`."""
    from python_jobs.runs import run_tables

    recs = served.merge(users[["uid", "user_name"]], on="uid").merge(details, on="listing_id")
    types = {"uid": "int32", "listing_id": "int32", "rank": "int32"}
    run_tables.save(spark, settings, "recommendations", run_id, recs.astype(types), LIST_SCHEMA, engine)
    # each model's own lists: ids and scores only (5-6x the served rows); publish adds the listings' details
    run_tables.save(spark, settings, "model_recommendations", run_id, own.astype(types), MODEL_LIST_SCHEMA, engine)
    return {"recommendations": len(served), "model_recommendations": len(own),
            "list_sources": served.drop_duplicates("uid")["list_source"].value_counts().to_dict(),
            "served_listings": served["listing_id"].nunique(),
            "listed": pd.concat([served["listing_id"], own["listing_id"]]).unique()}
