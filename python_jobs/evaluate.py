"""Offline evaluation: per-user splits, ALS tuning on a validation split, metrics per model.

The test part is never seen by tuning: `evaluate_models` carves the validation
split out of the training part only. Used by every pipeline run (time-ordered
hold-out: each user's latest interactions) and by `encore-recs evaluate`
(seeded random per-user split of any interactions file).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from python_jobs.metrics import ranking_metrics
from python_jobs.train import TrainParams, fit_als, recommend



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

    def to_dict(self) -> dict:
        return {"k": self.k, "params": self.params.to_dict(), "metrics": self.metrics, "tuning": self.tuning}


def _users(train: DataFrame, test: DataFrame) -> DataFrame:
    counts = train.groupBy("uid").agg(F.countDistinct("listing_id").alias("listing_count"))
    return test.select("uid").distinct().join(counts, "uid", "left").fillna(0, subset=["listing_count"])


def sample_users(test: DataFrame, max_users: int | None, seed: int) -> DataFrame:
    """At most `max_users` test users, chosen by a seeded hash (the same users every run)."""
    if not max_users:
        return test
    users = test.select("uid").distinct().orderBy(F.xxhash64("uid", F.lit(seed))).limit(max_users)
    return test.join(users, "uid")


def _model_recs(spark, model, train, test, items, popularity, params, k, hybrid=False, user_categories=None):
    """ALS alone, or the hybrid the pipeline publishes (ALS backed by popularity)."""
    return recommend(
        spark, users=_users(train, test), items=items, seen=train, popularity=popularity, n=k, model=model,
        user_categories=user_categories if hybrid else None,
        min_bids_for_als=params.min_bids_for_als if hybrid else 0,
        use_global=hybrid,
    )


def tune(spark, train, items, popularity, base: TrainParams, grid: dict, k: int, fraction: float,
         max_users: int | None = None) -> tuple[TrainParams, list[dict]]:
    """Grid search of ALS on a validation split carved from `train`; best by nDCG@k."""
    fit_part, valid = split_per_user(train, F.col("_order"), fraction)
    valid = sample_users(valid, max_users, base.seed).cache()
    catalog = items.count()
    results = []
    keys = list(grid)
    for values in itertools.product(*(grid[key] for key in keys)):
        params = base.with_values(**dict(zip(keys, values)))
        model = fit_als(fit_part, params)
        scores = ranking_metrics(_model_recs(spark, model, fit_part, valid, items, popularity, params, k), valid, k, catalog)
        results.append({**dict(zip(keys, values)), **{m: round(v, 5) for m, v in scores.items()}})
    valid.unpersist()
    best = max(results, key=lambda r: r["ndcg"])
    return base.with_values(**{key: best[key] for key in keys}), results


def evaluate_models(
    spark: SparkSession,
    interactions: DataFrame,
    items: DataFrame,
    popularity_fn,
    *,
    k: int,
    test_fraction: float,
    order: Column,
    base: TrainParams,
    grid: dict | None,
    user_categories: DataFrame | None = None,
    max_users: int | None = None,
) -> Evaluation:
    """Split, tune ALS on the training part, and score als, popularity and hybrid on the test part.

    interactions: uid, listing_id, strength (+ whatever popularity_fn needs);
    popularity_fn(train) -> listing_id, popularity; items: listing_id, category, sub_category.
    """
    data = interactions.withColumn("_order", order).cache()
    train, test = split_per_user(data, F.col("_order"), test_fraction)
    train, test = train.cache(), sample_users(test, max_users, base.seed).cache()
    popularity = popularity_fn(train).cache()
    params, tuning = base, []
    if grid:
        params, tuning = tune(spark, train, items, popularity, base, grid, k, test_fraction, max_users)
    catalog = items.count()
    model = fit_als(train, params)
    metrics = {
        "als": ranking_metrics(_model_recs(spark, model, train, test, items, popularity, params, k), test, k, catalog),
        "popularity": ranking_metrics(
            recommend(spark, users=_users(train, test), items=items, seen=train, popularity=popularity, n=k),
            test, k, catalog,
        ),
        "hybrid": ranking_metrics(
            _model_recs(spark, model, train, test, items, popularity, params, k, True, user_categories), test, k, catalog
        ),
    }
    for frame in (data, train, test, popularity):
        frame.unpersist()
    return Evaluation(k=k, params=params, metrics=metrics, tuning=tuning)
