"""Ranking metrics on Spark DataFrames, after Microsoft Recommenders' definitions.

recs: (uid, listing_id, rank) with rank 1 = best; truth: (uid, listing_id),
the held-out relevant items. Every user in `truth` counts, with zeros when
they got no recommendations.

- precision@k: hits in the top k / k
- recall@k: hits in the top k / relevant items
- nDCG@k: sum over hits of 1 / log2(rank + 1), over the ideal for min(relevant, k) hits
- MAP@k: sum over hits of precision at that rank / min(relevant, k)
- coverage: distinct items recommended in any top k / catalogue size
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

METRICS = ("precision", "recall", "ndcg", "map", "coverage")


def ranking_metrics(recs: DataFrame, truth: DataFrame, k: int, catalog_size: int) -> dict[str, float]:
    return ranking_metrics_at(recs, truth, [k], catalog_size)[k]


def ranking_metrics_at(recs: DataFrame, truth: DataFrame, cutoffs, catalog_size: int) -> dict[int, dict[str, float]]:
    """The metrics at every cutoff from two Spark jobs (per-user sums, distinct items), not two per cutoff."""
    cutoffs = sorted(set(cutoffs))
    top = recs.where(F.col("rank") <= cutoffs[-1]).select("uid", "listing_id", "rank").cache()
    relevant_pairs = truth.select("uid", "listing_id").distinct()
    hits = top.join(relevant_pairs, ["uid", "listing_id"])
    # the n-th hit of a user is the n-th hit at every cutoff that includes it
    hit_no = F.row_number().over(Window.partitionBy("uid").orderBy("rank"))
    within = {k: F.col("rank") <= k for k in cutoffs}
    per_user_hits = hits.withColumn("hit_no", hit_no).groupBy("uid").agg(*[
        agg for k in cutoffs for agg in (
            F.sum(F.when(within[k], 1.0).otherwise(0.0)).alias(f"hits_{k}"),
            F.sum(F.when(within[k], 1.0 / F.log2(F.col("rank") + 1.0)).otherwise(0.0)).alias(f"dcg_{k}"),
            F.sum(F.when(within[k], F.col("hit_no") / F.col("rank")).otherwise(0.0)).alias(f"ap_{k}"),
        )
    ])
    relevant = relevant_pairs.groupBy("uid").agg(F.count("*").alias("n_rel"))
    per_user = relevant.join(per_user_hits, "uid", "left").fillna(0.0)
    columns = []
    for k in cutoffs:
        ideal_hits = F.least(F.col("n_rel"), F.lit(k))
        idcg = F.aggregate(F.sequence(F.lit(1), ideal_hits), F.lit(0.0).cast("double"),
                           lambda acc, i: acc + 1.0 / F.log2(i + 1.0))
        columns += [F.avg(F.col(f"hits_{k}") / k).alias(f"precision_{k}"),
                    F.avg(F.col(f"hits_{k}") / F.col("n_rel")).alias(f"recall_{k}"),
                    F.avg(F.col(f"dcg_{k}") / idcg).alias(f"ndcg_{k}"),
                    F.avg(F.col(f"ap_{k}") / ideal_hits).alias(f"map_{k}")]
    row = per_user.agg(*columns, F.count("*").alias("users")).first()
    distinct = top.agg(*[F.countDistinct(F.when(within[k], F.col("listing_id"))).alias(f"items_{k}")
                         for k in cutoffs]).first()
    top.unpersist()
    result = {}
    for k in cutoffs:
        result[k] = {name: float(row[f"{name}_{k}"] or 0.0) for name in ("precision", "recall", "ndcg", "map")}
        result[k]["coverage"] = distinct[f"items_{k}"] / catalog_size if catalog_size else 0.0
        result[k]["users"] = int(row["users"])
    return result
