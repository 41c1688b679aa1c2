"""Publish a synthetic run in its own process (used by the crash test): python publish_run.py RUN_ID USERS [ENGINE]."""

import sys

from pyspark.sql import functions as F

from python_jobs.stack import services
from python_jobs.config import Settings
from python_jobs.publish.publish import publish
from python_jobs.stack.spark import get_spark


def synthetic_lists(spark, users: int, n: int, first_end=None):
    """(recs, similar, model_recs, listings) for `users` users with n listings each, shaped as train writes them.
    The rank-r listing's auction ends r - 1 days after `first_end` (a timestamp column; default 2026-12-05 10:00)."""
    first_end = F.to_timestamp(F.lit("2026-12-05 10:00:00")) if first_end is None else first_end
    recs = (
        spark.range(1, users + 1).withColumnRenamed("id", "uid")
        .crossJoin(spark.range(1, n + 1).withColumnRenamed("id", "rank"))
        .select(
            F.col("uid").cast("int"), F.concat(F.lit("user"), F.col("uid")).alias("user_name"),
            F.col("rank").cast("int"), (F.col("uid") * 100 + F.col("rank")).cast("int").alias("listing_id"),
            F.lit("product").alias("product"), F.lit("music").alias("category"), F.lit("vinyl").alias("sub_category"),
            F.lit(10.0).alias("listing_amount"), (F.unix_timestamp(first_end) + (F.col("rank") - 1) * 86400).cast("timestamp").alias("ends_at"),
            (1.0 / F.col("rank")).alias("score"), F.lit("als").alias("source"), F.lit("als").alias("list_source"),
        )
    )
    similar = recs.select(F.col("listing_id"), "rank", (F.col("listing_id") + 1).alias("similar_listing_id"), "score")
    own = recs.select("uid", "rank", "listing_id", "score", "source")
    model_recs = (own.where(F.col("uid") % 2 == 0).withColumn("model", F.lit("als"))  # ALS: bidders only
                  .unionByName(own.withColumn("model", F.lit("popularity")).withColumn("source", F.lit("popularity"))))
    # the rank-r listing's seller is uid 5000 + r, but the third's is unknown (a listing whose seller left)
    seller = F.when(F.col("rank") != 3, F.col("rank") + 5000).cast("int").alias("seller_uid")
    listings = recs.select("listing_id", "product", "category", "sub_category", "listing_amount", "ends_at",
                           seller).distinct()
    return recs, similar, model_recs, listings


def main(run_id: str, users: int, engine: str = "spark") -> None:
    settings = Settings.from_env()
    services.apply_environment(settings)
    spark = get_spark(settings, catalog=False)
    # auctions end a day from now and later, so serving never sees them ended unless a test moves its clock
    tomorrow = (F.unix_timestamp(F.date_trunc("hour", F.current_timestamp())) + 86400).cast("timestamp")
    recs, similar, model_recs, listings = synthetic_lists(spark, users, settings.top_n, tomorrow)
    # shaped as the evaluation writes them: rates, a count of users, and a metric not available (null)
    metrics = {model: {"ndcg": ndcg, "coverage": 1.0, "diversity": None, "users": users}
               for model, ndcg in (("hybrid", 0.41725), ("popularity", 0.2))}
    manifest, _, _ = publish(settings, run_id, recs, similar, {"metrics": metrics, "checkpoints": []}, model_recs=model_recs,
                          listings=listings, engine=engine)
    print(manifest["row_counts"])


if __name__ == "__main__":
    main(*sys.argv[1:2], int(sys.argv[2]), *sys.argv[3:4])
