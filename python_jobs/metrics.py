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
    top = recs.where(F.col("rank") <= k).select("uid", "listing_id", "rank")
    hits = top.join(truth.select("uid", "listing_id").distinct(), ["uid", "listing_id"])
    hit_no = F.row_number().over(Window.partitionBy("uid").orderBy("rank"))
    per_user_hits = (
        hits.withColumn("hit_no", hit_no)
        .groupBy("uid")
        .agg(
            F.count("*").alias("hits"),
            F.sum(1.0 / F.log2(F.col("rank") + 1.0)).alias("dcg"),
            F.sum(F.col("hit_no") / F.col("rank")).alias("ap_sum"),
        )
    )
    relevant = truth.select("uid", "listing_id").distinct().groupBy("uid").agg(F.count("*").alias("n_rel"))
    ideal_hits = F.least(F.col("n_rel"), F.lit(k))
    idcg = F.aggregate(
        F.sequence(F.lit(1), ideal_hits), F.lit(0.0).cast("double"), lambda acc, i: acc + 1.0 / F.log2(i + 1.0)
    )
    per_user = relevant.join(per_user_hits, "uid", "left").fillna(0, subset=["hits", "dcg", "ap_sum"])
    row = per_user.agg(
        F.avg(F.col("hits") / k).alias("precision"),
        F.avg(F.col("hits") / F.col("n_rel")).alias("recall"),
        F.avg(F.col("dcg") / idcg).alias("ndcg"),
        F.avg(F.col("ap_sum") / ideal_hits).alias("map"),
        F.count("*").alias("users"),
    ).first()
    distinct_items = top.select("listing_id").distinct().count()
    result = {name: float(row[name] or 0.0) for name in ("precision", "recall", "ndcg", "map")}
    result["coverage"] = distinct_items / catalog_size if catalog_size else 0.0
    result["users"] = int(row["users"])
    return result
