"""Offline evaluation: splits, ALS tuning on a validation split, metrics per model.

The test part is never seen by tuning: `evaluate_models` applies the same
splitter again to the training part to get the validation split. Two splitters:

- `time_splitter` (every pipeline run): a replay. The cutoff is the time before
  which (1 - fraction) of the user-listing interactions began; models learn from
  what came before and are scored on what users bid on after, choosing among the
  listings that were open at the cutoff, as the live system would have.
- `per_user_splitter` (`encore-recs evaluate`): per user, a seeded random
  `fraction` of their interactions is held out (stratified by user).

Only users with training history are scored, so ALS and popularity are
compared on the same users.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from python_jobs.metrics import ranking_metrics_at
from python_jobs.train import TrainParams, als_candidates, fit_als, recommend



def per_user_splitter(order_col: str, fraction: float, items: DataFrame):
    """Per-user hold-out of `fraction`, ordered by the column `order_col`; every item is a candidate.

    The order column is part of the data (e.g. a seeded random draw), so the
    validation split inside the training part follows the same order.
    """

    def split(df: DataFrame):
        train, test = split_per_user(df, F.col(order_col), fraction)
        return train, test, items

    return split


def time_splitter(listings: DataFrame, fraction: float):
    """Global time cutoff on first_bid_at; candidates are the listings open at the cutoff."""

    def split(df: DataFrame):
        started = F.col("first_bid_at").cast("double")
        cutoff = df.select(started.alias("t")).approxQuantile("t", [1.0 - fraction], 0.0001)[0]
        train, test = df.where(started < cutoff), df.where(started >= cutoff)
        open_then = (F.col("listed_at").cast("double") <= cutoff) & (F.col("ends_at").cast("double") > cutoff)
        items = listings.where(open_then).select("listing_id", "category", "sub_category")
        return train, test, items

    return split


def split_per_user(df: DataFrame, order: Column, test_fraction: float) -> tuple[DataFrame, DataFrame]:
    """Per user, the first rows by `order` train and the last `test_fraction` test.

    Users with one interaction stay wholly in training; every other user keeps
    at least one training and one test row.
    """
    w = Window.partitionBy("uid").orderBy(order, "listing_id")
    counted = df.withColumn("_pos", F.row_number().over(w)).withColumn(
        "_n", F.count("*").over(Window.partitionBy("uid"))
    )
    n_test = F.when(F.col("_n") < 2, 0).otherwise(
        F.least(F.greatest(F.round(F.col("_n") * test_fraction), F.lit(1)), F.col("_n") - 1)
    )
    marked = counted.withColumn("_test", F.col("_pos") > F.col("_n") - n_test)
    train = marked.where(~F.col("_test")).drop("_pos", "_n", "_test")
    test = marked.where(F.col("_test")).drop("_pos", "_n", "_test")
    return train, test


@dataclass
class Evaluation:
    k: int
    params: TrainParams
    metrics: dict[str, dict[str, float]]
    tuning: list[dict] = field(default_factory=list)
    ndcg_at: dict[str, dict[int, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"k": self.k, "params": self.params.to_dict(), "metrics": self.metrics, "tuning": self.tuning,
                "ndcg_at": self.ndcg_at}


def _users(train: DataFrame, test: DataFrame) -> DataFrame:
    counts = train.groupBy("uid").agg(F.countDistinct("listing_id").alias("listing_count"))
    return test.select("uid").distinct().join(counts, "uid", "left").fillna(0, subset=["listing_count"])


def sample_users(test: DataFrame, max_users: int | None, seed: int) -> DataFrame:
    """At most `max_users` test users, chosen by a seeded hash (the same users every run)."""
    if not max_users:
        return test
    users = test.select("uid").distinct().orderBy(F.xxhash64("uid", F.lit(seed))).limit(max_users)
    return test.join(users, "uid")


def _model_lists(spark, model, users, train, items, popularity, params, k, hybrid=False, user_categories=None):
    """The ALS list alone and, with `hybrid`, the hybrid the pipeline publishes (backed by the users' categories
    when given, and by global popularity), from one ALS scoring. Returns the lists and that (cached) scoring,
    for the caller to unpersist once the lists are scored."""
    als = als_candidates(spark, model, users, items, train, k).cache()
    lists = {"als": recommend(spark, users=users, items=items, seen=train, popularity=popularity, n=k, als=als,
                              min_bids_for_als=0, use_global=False)}
    if hybrid:
        lists["hybrid"] = recommend(spark, users=users, items=items, seen=train, popularity=popularity, n=k, als=als,
                                    user_categories=user_categories, min_bids_for_als=params.min_bids_for_als)
    return lists, als


def tune(spark, train, splitter, popularity_fn, base: TrainParams, grid: dict, k: int,
         max_users: int | None = None) -> tuple[TrainParams, list[dict]]:
    """Grid search of ALS on a validation split carved from `train` by the same splitter; best by nDCG@k."""
    fit_part, valid, items = splitter(train)
    fit_part = fit_part.cache()
    valid = _warm(sample_users(valid, max_users, base.seed), fit_part).cache()
    popularity = popularity_fn(fit_part)
    users = _users(fit_part, valid).cache()
    catalog = items.count()
    results = []
    keys = list(grid)
    for values in itertools.product(*(grid[key] for key in keys)):
        params = base.with_values(**dict(zip(keys, values)))
        model = fit_als(fit_part, params)
        lists, als = _model_lists(spark, model, users, fit_part, items, popularity, params, k)
        scores = ranking_metrics_at(lists["als"], valid, [k], catalog)[k]
        als.unpersist()
        results.append({**dict(zip(keys, values)), **{m: round(v, 5) for m, v in scores.items()}})
    for frame in (users, valid, fit_part):
        frame.unpersist()
    best = max(results, key=lambda r: r["ndcg"])
    return base.with_values(**{key: best[key] for key in keys}), results


def _warm(test: DataFrame, train: DataFrame) -> DataFrame:
    """Test rows of users who have training history."""
    return test.join(train.select("uid").distinct(), "uid")


def evaluate_models(
    spark: SparkSession,
    interactions: DataFrame,
    splitter,
    popularity_fn,
    *,
    k: int,
    base: TrainParams,
    grid: dict | None,
    user_categories: DataFrame | None = None,
    max_users: int | None = None,
) -> Evaluation:
    """Split, tune ALS on the training part, and score als, popularity and hybrid on the test part.

    interactions: uid, listing_id, strength (+ what the splitter and popularity_fn need);
    splitter(df) -> train, test, candidate items (listing_id, category, sub_category);
    popularity_fn(train) -> listing_id, popularity.
    """
    data = interactions.cache()
    train, test, items = splitter(data)
    train = train.cache()
    test = _warm(sample_users(test, max_users, base.seed), train).cache()
    items = items.cache()
    popularity = popularity_fn(train).cache()
    params, tuning = base, []
    if grid:
        params, tuning = tune(spark, train, splitter, popularity_fn, base, grid, k, max_users)
    catalog = items.count()
    model = fit_als(train, params)
    users = _users(train, test).cache()
    lists, als = _model_lists(spark, model, users, train, items, popularity, params, k, True, user_categories)
    lists["popularity"] = recommend(spark, users=users, items=items, seen=train, popularity=popularity, n=k)
    metrics, curves = {}, {}
    cutoffs = sorted({c for c in (1, 2, 3, 5, 10, 20, k) if c <= k})
    for name in ("als", "popularity", "hybrid"):
        at = ranking_metrics_at(lists[name], test, cutoffs, catalog)
        metrics[name] = at[k]
        curves[name] = {c: round(at[c]["ndcg"], 5) for c in cutoffs}
    for frame in (als, users, data, train, test, items, popularity):
        frame.unpersist()
    return Evaluation(k=k, params=params, metrics=metrics, tuning=tuning, ndcg_at=curves)
