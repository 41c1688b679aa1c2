"""Train the recommenders and build every user's top-N list (Spark).

`transform`-style pure functions from DataFrames to DataFrames, so tests call
them on tiny frames; `main`-style wiring lives in the runner.

- ALS on implicit feedback: strength = count_weight * bid_count
  + amount_weight * log1p(total_bid_amount); Spark's implicit ALS turns it into
  confidence 1 + alpha * strength.
- Popularity: distinct bidders per listing, each weighted by
  0.5 ** (age of their latest bid / half_life_days), normalised to [0, 1].
- Hybrid: a user with at least `min_bids_for_als` listings bid on gets ALS
  first; a user with fewer gets half ALS, then popularity from their questionnaire
  categories and the categories they bid in, then global popularity; a user with
  no bids gets popularity only. Nobody is offered a listing they bid on or a
  listing that is not open.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F


@dataclass(frozen=True)
class TrainParams:
    rank: int = 32
    reg_param: float = 0.01
    alpha: float = 1.0
    max_iter: int = 10
    count_weight: float = 1.0
    amount_weight: float = 0.2
    half_life_days: float = 14.0
    min_bids_for_als: int = 3
    seed: int = 42

    def to_dict(self) -> dict:
        return asdict(self)

    def with_values(self, **values) -> TrainParams:
        return replace(self, **values)


# --- features --------------------------------------------------------------


def interaction_strength(interactions: DataFrame, params: TrainParams) -> DataFrame:
    """Add `strength`, the implicit-feedback signal ALS learns from."""
    return interactions.withColumn(
        "strength",
        params.count_weight * F.col("bid_count").cast("double")
        + params.amount_weight * F.log1p(F.greatest(F.col("total_bid_amount").cast("double"), F.lit(0.0))),
    )


def popularity_scores(interactions: DataFrame, as_of, half_life_days: float) -> DataFrame:
    """listing_id, popularity in [0, 1] with recency decay."""
    age_days = (F.lit(as_of).cast("timestamp").cast("double") - F.col("last_bid_at").cast("double")) / 86400.0
    decayed = interactions.withColumn("w", F.pow(F.lit(0.5), F.greatest(age_days, F.lit(0.0)) / half_life_days))
    per_listing = decayed.groupBy("listing_id").agg(F.sum("w").alias("raw"))
    top = per_listing.agg(F.max("raw").alias("top"))
    return per_listing.crossJoin(top).select("listing_id", (F.col("raw") / F.col("top")).alias("popularity"))


# --- models ---------------------------------------------------------------


def fit_als(weighted: DataFrame, params: TrainParams):
    from pyspark.ml.recommendation import ALS

    # one block per core: ALS's default of 10 user and 10 item blocks is 10 tasks per stage, mostly overhead here
    blocks = max(1, weighted.sparkSession.sparkContext.defaultParallelism)
    als = ALS(
        userCol="uid", itemCol="listing_id", ratingCol="strength", implicitPrefs=True,
        rank=params.rank, regParam=params.reg_param, alpha=params.alpha, maxIter=params.max_iter,
        seed=params.seed, coldStartStrategy="drop", nonnegative=False, numUserBlocks=blocks, numItemBlocks=blocks,
        # a checkpoint writes the factors to disk mid-fit (4-5 s of 20 at 100k users); it only matters for the
        # deep lineage of many iterations (get_spark sets the checkpoint folder for those)
        checkpointInterval=10 if params.max_iter > 20 else -1,
    )
    data = weighted.select(F.col("uid").cast("int"), F.col("listing_id").cast("int"), "strength")
    return als.fit(data)


# scores held at once per Arrow batch while ranking (query rows x items), about 64 MB of float32
_SCORE_CELLS = 16_000_000


def top_k_by_factors(spark: SparkSession, rank: int, queries: DataFrame, items: DataFrame, k: int) -> DataFrame:
    """For each query vector, the k items with the largest dot product: (id, item, score).

    The item side (listings: bounded by the catalogue, not by the users) is broadcast
    as one float32 matrix; the queries stream through `mapInArrow` in Arrow
    batches (factors read straight from Arrow memory), scored with one matrix
    product per chunk and ranked with `argpartition`. The work is spread over the query partitions, so the same code
    runs on a cluster. `rank` is the factor length (checked against the items).
    """
    import numpy as np

    # in id order, so the same factors always give the same lists (argpartition is deterministic for a given input)
    item_frame = items.select(F.col("id").cast("int").alias("id"), "features").orderBy("id").toPandas()
    ids = item_frame["id"].to_numpy(dtype=np.int32)
    matrix = np.stack(item_frame["features"].to_numpy()).astype(np.float32) if len(ids) else np.zeros((0, rank), np.float32)
    if matrix.shape[1] != rank:
        raise ValueError(f"item factors have length {matrix.shape[1]}, expected rank {rank}")
    shared = spark.sparkContext.broadcast((ids, matrix.T.copy()))
    keep = min(k, len(ids))
    chunk = max(1, _SCORE_CELLS // max(1, len(ids)))

    def ranked(batches):
        import pyarrow as pa

        item_ids, item_t = shared.value
        for batch in batches:
            query_ids = batch.column("id").to_numpy(zero_copy_only=False)
            factors = batch.column("features").flatten().to_numpy(zero_copy_only=False).reshape(len(query_ids), -1)
            for start in range(0, len(query_ids), chunk):
                part = factors[start:start + chunk].astype(np.float32, copy=False)
                if len(part) == 0 or keep == 0:
                    continue
                scores = part @ item_t
                # the `keep` largest per row, unordered, then ordered: best score first, ties by item id
                best = np.argpartition(scores, scores.shape[1] - keep, axis=1)[:, -keep:]
                top = np.take_along_axis(scores, best, axis=1)
                order = np.lexsort((item_ids[best], -top), axis=1)
                best, top = np.take_along_axis(best, order, 1), np.take_along_axis(top, order, 1)
                yield pa.RecordBatch.from_arrays(
                    [pa.array(np.repeat(query_ids[start:start + chunk], keep).astype(np.int32)),
                     pa.array(item_ids[best].ravel()), pa.array(top.ravel().astype(np.float64))],
                    names=["id", "item", "score"])

    return queries.select(F.col("id").cast("int").alias("id"), F.col("features").cast("array<float>")).mapInArrow(
        ranked, "id int, item int, score double")


def _normalised(factors: DataFrame) -> DataFrame:
    norm = F.sqrt(F.aggregate("features", F.lit(0.0).cast("double"), lambda acc, x: acc + x * x))
    return factors.withColumn("norm", norm).where("norm > 0").select(
        "id", F.transform("features", lambda x: (x / F.col("norm")).cast("float")).alias("features")
    )


def similar_listings(spark: SparkSession, model, open_listings: DataFrame, k: int) -> DataFrame:
    """listing_id, rank, similar_listing_id, score: cosine neighbours among open listings."""
    all_items = _normalised(model.itemFactors)
    open_items = _normalised(model.itemFactors.join(open_listings.select(F.col("listing_id").alias("id")), "id"))
    pairs = top_k_by_factors(spark, model.rank, all_items, open_items, k + 1).where("id <> item")
    w = Window.partitionBy("id").orderBy(F.desc("score"), "item")
    return (
        pairs.withColumn("rank", F.row_number().over(w))
        .where(F.col("rank") <= k)
        .select(F.col("id").alias("listing_id"), "rank", F.col("item").alias("similar_listing_id"), "score")
    )


# --- candidates and the final lists ---------------------------------------------


def als_candidates(spark: SparkSession, model, users: DataFrame, items: DataFrame, seen: DataFrame, n: int) -> DataFrame:
    """uid, listing_id, score, r (1 = best): each bidder's top n ALS listings among `items`, none already seen.

    Computed once per model and set of users, then shared by every list built from it (hybrid, ALS-only).
    users: uid, listing_count; only users with listing_count > 0 get candidates.
    """
    bidders = users.where(F.col("listing_count") > 0).select(F.col("uid").alias("id"))
    max_seen = seen.groupBy("uid").count().agg(F.max("count")).first()[0] or 0
    queries = model.userFactors.join(bidders, "id")
    item_factors = model.itemFactors.join(items.select(F.col("listing_id").alias("id")), "id")
    scored = top_k_by_factors(spark, model.rank, queries, item_factors, n + min(int(max_seen), 5 * n)).select(
        F.col("id").alias("uid"), F.col("item").alias("listing_id"), "score")
    fresh = scored.join(seen.select("uid", "listing_id"), ["uid", "listing_id"], "left_anti")
    order = Window.partitionBy("uid").orderBy(F.desc("score"), "listing_id")
    return fresh.withColumn("r", F.row_number().over(order)).where(F.col("r") <= n)


def interest_candidates(user_categories: DataFrame, popularity: DataFrame, k: int) -> DataFrame:
    """uid, listing_id, score: popular listings in each user's categories; a chosen sub-category counts 1.5x."""
    w = Window.partitionBy("category").orderBy(F.desc("popularity"), "listing_id")
    top = popularity.withColumn("r", F.row_number().over(w)).where(F.col("r") <= k)
    cats = user_categories.groupBy("uid", "category").agg(F.collect_set("sub_category").alias("subs"))
    joined = cats.join(top, "category")
    boost = F.when(F.array_contains("subs", F.col("sub_category")), F.lit(1.5)).otherwise(F.lit(1.0))
    return joined.select("uid", "listing_id", (F.col("popularity") * boost).alias("score"))


def global_candidates(users: DataFrame, popularity: DataFrame, k: int) -> DataFrame:
    top = popularity.orderBy(F.desc("popularity"), "listing_id").limit(k)
    return users.select("uid").crossJoin(F.broadcast(top.select("listing_id", F.col("popularity").alias("score"))))


def top_n(candidates: DataFrame, seen: DataFrame, n: int) -> DataFrame:
    """Drop seen listings, keep each listing's best priority, rank, keep n per user.

    candidates: uid, listing_id, score, source, priority (lower comes first).
    """
    fresh = candidates.join(seen.select("uid", "listing_id"), ["uid", "listing_id"], "left_anti")
    # one row per (user, listing): the best priority, then the best score (an aggregation, not a sort of every row)
    best = F.min(F.struct("priority", (-F.col("score")).alias("neg_score"), "source")).alias("best")
    unique = fresh.groupBy("uid", "listing_id").agg(best).select(
        "uid", "listing_id", "best.priority", (-F.col("best.neg_score")).alias("score"), "best.source")
    order = Window.partitionBy("uid").orderBy("priority", F.desc("score"), "listing_id")
    ranked = unique.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= n)
    per_user = Window.partitionBy("uid")
    als_share = F.avg(F.when(F.col("source") == "als", 1.0).otherwise(0.0)).over(per_user)
    return ranked.withColumn(
        "list_source",
        F.when(als_share == 1.0, "als").when(als_share == 0.0, "popularity").otherwise("hybrid"),
    ).select("uid", "rank", "listing_id", "score", "source", "list_source")


def recommend(
    spark: SparkSession,
    *,
    users: DataFrame,
    items: DataFrame,
    seen: DataFrame,
    popularity: DataFrame,
    n: int,
    als: DataFrame | None = None,
    user_categories: DataFrame | None = None,
    min_bids_for_als: int = 3,
    use_global: bool = True,
) -> DataFrame:
    """Top-n lists for `users` (uid, listing_count) among `items` (listing_id, category, sub_category).

    Items nobody has bid on yet score popularity 0, so new listings still fill
    a cold-start user's list from their own categories.

    `als`: the users' ALS candidates (`als_candidates`). With only `als`: pure ALS. With
    only popularity: the baseline. With both and `user_categories`: the hybrid that the pipeline publishes.
    """
    scores = popularity.select("listing_id", "popularity")
    pop = items.select("listing_id", "category", "sub_category").join(scores, "listing_id", "left").fillna(
        0.0, subset=["popularity"]
    )
    pool = 3 * n
    parts = []
    if als is not None:
        cands = als.join(users.select("uid", "listing_count"), "uid")
        limit = F.when(F.col("listing_count") >= min_bids_for_als, F.lit(n)).otherwise(F.lit(math.ceil(n / 2)))
        cands = cands.where(F.col("r") <= limit)
        parts.append(cands.select("uid", "listing_id", "score", F.lit("als").alias("source"), F.lit(0).alias("priority")))
    if user_categories is not None:
        ic = interest_candidates(user_categories.join(users.select("uid"), "uid", "left_semi"), pop, pool)
        parts.append(ic.select("uid", "listing_id", "score", F.lit("popularity").alias("source"), F.lit(1).alias("priority")))
    if use_global:
        gc = global_candidates(users, pop, pool + n)
        parts.append(gc.select("uid", "listing_id", "score", F.lit("popularity").alias("source"), F.lit(2).alias("priority")))
    candidates = parts[0]
    for part in parts[1:]:
        candidates = candidates.unionByName(part)
    return top_n(candidates, seen, n)


# --- the job ---------------------------------------------------------------------


def save_run_table(frame: DataFrame, table: str, run_id: str) -> None:
    """Write `frame` as this run's partition of `recs.<table>` (S3-backed, partitioned by run_id)."""
    out = frame.withColumn("run_id", F.lit(run_id))
    spark = frame.sparkSession
    if spark.catalog.tableExists(f"recs.{table}"):
        out.select(*spark.table(f"recs.{table}").columns).write.insertInto(f"recs.{table}", overwrite=True)
    else:
        out.write.format("parquet").partitionBy("run_id").saveAsTable(f"recs.{table}")


def run_training(spark: SparkSession, lake_bucket: str, run_id: str, n: int, params: TrainParams, as_of) -> dict:
    """Fit on the marts; write recs.recommendations (served), recs.model_recommendations (als and popularity
    lists, for comparison) and recs.similar_listings for this run."""
    interactions = spark.table("marts.fct_user_item_interactions")
    listings = spark.table("marts.dim_listings")
    users = spark.table("marts.dim_users").select("uid", "user_name", "listing_count")
    interests = spark.table("marts.dim_user_interests").select("uid", "category", "sub_category")
    open_items = listings.where("is_open").select("listing_id", "category", "sub_category").cache()

    weighted = interaction_strength(interactions, params).cache()
    model = fit_als(weighted, params)
    popularity = popularity_scores(interactions, as_of, params.half_life_days).cache()
    bid_categories = interactions.select("uid", "category", F.lit(None).cast("string").alias("sub_category"))
    categories = interests.unionByName(bid_categories)  # questionnaire answers and where they bid
    als = als_candidates(spark, model, users, open_items, interactions, n).cache()
    recs = recommend(
        spark, users=users, items=open_items, seen=interactions, popularity=popularity, n=n, als=als,
        user_categories=categories, min_bids_for_als=params.min_bids_for_als,
    )
    # each model's own list beside the served hybrid, so a stakeholder can compare them user by user
    als_only = recommend(spark, users=users, items=open_items, seen=interactions, popularity=popularity, n=n,
                         als=als, min_bids_for_als=0, use_global=False)
    popularity_only = recommend(spark, users=users, items=open_items, seen=interactions, popularity=popularity,
                                n=n, user_categories=categories)
    model_lists = als_only.withColumn("model", F.lit("als")).unionByName(
        popularity_only.withColumn("model", F.lit("popularity")))
    details = listings.select("listing_id", "product", "category", "sub_category", "listing_amount", "ends_at")
    recs = recs.join(users.select("uid", "user_name"), "uid").join(details, "listing_id")
    model_lists = model_lists.join(users.select("uid", "user_name"), "uid").join(details, "listing_id")
    similar = similar_listings(spark, model, open_items, n)

    spark.sql(f"create database if not exists recs location 's3a://{lake_bucket}/warehouse/recs.db'")
    save_run_table(recs, "recommendations", run_id)
    save_run_table(model_lists, "model_recommendations", run_id)
    save_run_table(similar, "similar_listings", run_id)
    als.unpersist()
    weighted.unpersist()
    popularity.unpersist()
    open_items.unpersist()
    return {
        "recommendations": spark.table("recs.recommendations").where(F.col("run_id") == run_id).count(),
        "similar_listings": spark.table("recs.similar_listings").where(F.col("run_id") == run_id).count(),
        "params": params.to_dict(),
    }
