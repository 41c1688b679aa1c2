"""Ranking beyond the driver: `lists.block_lists` as Spark tasks over blocks of users (`mapInPandas`).

The fitted `Ranker` (training set, fitted models, the co-bid neighbour lists
built per listing) is broadcast once; each Python worker unpickles it once
(Spark reuses its workers and the broadcast's value with them) and ranks every
batch of user positions it is given with `block_lists`, the function the
in-process engine calls for all users at once. The lists stay a Spark
DataFrame, persisted on the executors while the caller writes them with
Spark's writer and counts them: no user's list passes through the driver.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pandas as pd

from python_jobs.models.lists import OWN_COLUMNS, SERVED_COLUMNS, Ranker, block_lists

# served rows have no `model`, each model's own rows no `list_source`
LISTS_SCHEMA = "uid int, rank int, listing_id int, score double, source string, list_source string, model string"
LISTS_COLUMNS = [*SERVED_COLUMNS, "model"]
USERS_PER_BATCH = 5_000  # users ranked per call: their pool and lists stay a few hundred MB in a worker


def shippable(ranker: Ranker) -> Ranker:
    """A copy of `ranker` that pickles: its models without a SparkSession (ALS on the spark engine keeps the
    one it was fitted with; ranking reads only its factors)."""
    components = []
    for model in ranker.hybrid.components:
        if getattr(model, "spark", None) is not None:
            model = copy.copy(model)
            model.spark = None
        components.append(model)
    hybrid = copy.copy(ranker.hybrid)  # keeps the neighbour lists it built, keyed to the same training set
    hybrid.components = components
    return replace(ranker, hybrid=hybrid)


def _ranking(shared):
    def rank(batches):
        ranker = shared.value
        for batch in batches:
            served, own = block_lists(ranker, batch["position"].to_numpy(np.int64))
            lists = pd.concat([served.assign(model=None), own.assign(list_source=None)], ignore_index=True)
            yield lists[LISTS_COLUMNS].astype({"uid": "int32", "rank": "int32", "listing_id": "int32",
                                               "score": "float64"})
    return rank


@contextmanager
def ranked_on_spark(spark, ranker: Ranker, tasks: int | None = None):
    """Yields every user's lists (LISTS_SCHEMA) as a persisted Spark DataFrame ranked by `tasks` tasks (at
    least one per core, more when the users are many); the broadcast and the cached lists are let go after."""
    from pyspark import StorageLevel

    from python_jobs.stack.spark import ship_package

    ship_package(spark)
    context = spark.sparkContext
    users = ranker.data.n_users
    tasks = tasks or max(context.defaultParallelism, -(-users // (4 * USERS_PER_BATCH)))
    shared = context.broadcast(shippable(ranker))
    batch_setting = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(batch_setting)
    spark.conf.set(batch_setting, str(USERS_PER_BATCH))
    positions = spark.range(0, users, numPartitions=max(1, tasks)).withColumnRenamed("id", "position")
    lists = positions.mapInPandas(_ranking(shared), LISTS_SCHEMA).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        yield lists
    finally:
        lists.unpersist()
        shared.destroy()
        spark.conf.set(batch_setting, before)


def save_lists(spark, settings, run_id: str, lists, users: pd.DataFrame, details: pd.DataFrame) -> dict:
    """Write the Spark-ranked `lists` as this run's recs.recommendations (with the user's name and the listing's
    details, joined on the executors) and recs.model_recommendations; their counts, each list source's users,
    the listings served and every listing named (per listing, small enough for the driver)."""
    from pyspark.sql import functions as F

    from python_jobs.models.train import LIST_SCHEMA, MODEL_LIST_SCHEMA
    from python_jobs.runs import run_tables

    served = lists.where(F.col("model").isNull()).drop("model")
    names = spark.createDataFrame(users[["uid", "user_name"]].astype({"uid": "int32"}), "uid int, user_name string")
    listed = spark.createDataFrame(details.astype({"listing_id": "int32"}))
    recs = served.join(F.broadcast(names), "uid").join(F.broadcast(listed), "listing_id")
    run_tables.save(spark, settings, "recommendations", run_id, recs, LIST_SCHEMA, "spark")
    own = lists.where(F.col("model").isNotNull()).select(*OWN_COLUMNS)
    run_tables.save(spark, settings, "model_recommendations", run_id, own, MODEL_LIST_SCHEMA, "spark")
    counts = {bool(r["served"]): r["count"] for r in
              lists.groupBy(F.col("model").isNull().alias("served")).count().collect()}
    sources = served.groupBy("list_source").agg(F.countDistinct("uid").alias("users")).collect()
    return {"recommendations": counts.get(True, 0), "model_recommendations": counts.get(False, 0),
            "list_sources": {r["list_source"]: r["users"] for r in sources},
            "served_listings": served.select("listing_id").distinct().count(),
            "listed": np.array([r[0] for r in lists.select("listing_id").distinct().collect()], np.int64)}
