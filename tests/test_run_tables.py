"""A run's partition of a recs.* table reads the same whichever engine wrote it, and a re-run replaces it."""

import pandas as pd

from python_jobs.runs import run_tables

SCHEMA = "uid int, listing_id int, score double, source string, ends_at timestamp"


def _frame(scale: float) -> pd.DataFrame:
    return pd.DataFrame({"uid": pd.array([1, 2, 3], "int32"), "listing_id": pd.array([10, 20, 30], "int32"),
                         "score": [0.5 * scale, 0.25, 0.125], "source": ["als", "taste", "é \"q\""],
                         "ends_at": pd.to_datetime([1.7e9, 1.8e9, 1.9e9], unit="s", utc=True)})


def _read(spark, run_id: str) -> list[tuple]:
    rows = spark.table("recs.engine_check").where(f"run_id = '{run_id}'").orderBy("uid").collect()
    return [(r.uid, r.listing_id, r.score, r.source, r.ends_at) for r in rows]


def test_both_engines_write_the_same_partition_and_a_rerun_replaces_only_its_own(stack, spark):
    spark.sql(f"create database if not exists recs location 's3a://{stack.lake_bucket}/warehouse/recs.db'")
    spark.sql("drop table if exists recs.engine_check")
    run_tables.save(spark, stack, "engine_check", "20000103T000000Z-spark1", _frame(1), SCHEMA, "spark")
    run_tables.save(spark, stack, "engine_check", "20000103T000000Z-local1", _frame(1), SCHEMA, "local")
    assert _read(spark, "20000103T000000Z-local1") == _read(spark, "20000103T000000Z-spark1")
    assert len(_read(spark, "20000103T000000Z-local1")) == 3

    run_tables.save(spark, stack, "engine_check", "20000103T000000Z-local1", _frame(2).head(2), SCHEMA, "local")
    assert [r[2] for r in _read(spark, "20000103T000000Z-local1")] == [1.0, 0.25]
    assert len(_read(spark, "20000103T000000Z-spark1")) == 3

    # a table of other columns (an older version's) is replaced, not appended to with the wrong shape
    run_tables.save(spark, stack, "engine_check", "20000103T000000Z-local2", _frame(1)[["uid", "score"]],
                    "uid int, score double", "local")
    assert spark.table("recs.engine_check").columns == ["uid", "score", "run_id"]
