"""Shaping of the published JSON and the manifest checks."""

from datetime import datetime

import pytest

from python_jobs.errors import GateFailed
from python_jobs.publish.publish import bucket_count, check_manifest, shape_user_lists


def test_user_lists_are_ordered_by_rank_and_keyed_by_uid_and_name(spark):
    recs = spark.createDataFrame(
        [(7, "ana7", 2, 30, "p30", "music", "vinyl", 10.0, datetime(2026, 12, 1), 0.5, "popularity", "hybrid"),
         (7, "ana7", 1, 20, "p20", "music", "vinyl", 12.0, datetime(2026, 12, 2), 0.9, "als", "hybrid")],
        "uid int, user_name string, rank int, listing_id int, product string, category string, sub_category string, "
        "listing_amount double, ends_at timestamp, score double, source string, list_source string",
    )
    [row] = shape_user_lists(recs).collect()
    assert (row.uid, row.user_name, row.source) == (7, "ana7", "hybrid")
    assert [item.listing_id for item in row.recommendations] == [20, 30]
    assert [item.rank for item in row.recommendations] == [1, 2]


def test_bucket_count_grows_with_users():
    assert bucket_count(10) == 1
    assert bucket_count(100_000) == 21


def test_manifest_with_missing_rows_is_refused():
    manifest = {"row_counts": {"recommendations": 9}, "files": [{"key": "a", "size": 10}]}
    with pytest.raises(GateFailed, match="recommendations files hold 9 rows, expected 10"):
        check_manifest(manifest, {"recommendations": 10})
    check_manifest({"row_counts": {"recommendations": 10}, "files": [{"key": "a", "size": 10}]}, {"recommendations": 10})


def test_both_publish_engines_write_the_same_lists(stack, spark, s3):
    import json

    from helpers.publish_run import synthetic_lists
    from python_jobs.publish.publish import publish
    from python_jobs.serving.loader import load_run

    recs, similar, model_recs, listings = synthetic_lists(spark, 40, 3)
    runs = {}
    for engine, run_id in (("spark", "20000102T000000Z-spark1"), ("local", "20000102T000000Z-local1")):
        manifest, _, _ = publish(stack, run_id, recs, similar, {"metrics": {}, "checkpoints": []}, model_recs=model_recs,
                              listings=listings, engine=engine)
        assert manifest["row_counts"] == {"listings": 120, "model_lists": 60, "recommendations": 40,
                                          "similar_listings": 120, "user_index": 40}
        runs[engine] = load_run(s3, stack.publish_bucket, f"runs/{run_id}/manifest.json")

    def parsed(lines: dict) -> dict:
        return {key: json.loads(line) for key, line in lines.items()}

    spark_run, local_run = runs["spark"], runs["local"]
    assert parsed(local_run.users) == parsed(spark_run.users)
    assert parsed(local_run.similar) == parsed(spark_run.similar)
    assert local_run.by_name == spark_run.by_name and local_run.by_name["user7"] == 7
    assert {m: parsed(lists) for m, lists in local_run.models.items()} == {
        m: parsed(lists) for m, lists in spark_run.models.items()}
    assert local_run.listings == spark_run.listings and local_run.listings[701] == {
        "product": "product", "category": "music", "sub_category": "vinyl", "listing_amount": 10.0,
        "ends_at": "2026-12-05T10:00:00Z", "seller_uid": 5001}
    assert local_run.listings[702]["seller_uid"] == 5002 and local_run.listings[703].get("seller_uid") is None
    assert parsed(local_run.models["popularity"])[7]["recommendations"][0] == {
        "rank": 1, "listing_id": 701, "score": 1.0, "source": "popularity"}
    assert parsed(local_run.users)[7]["recommendations"][0] == {
        "rank": 1, "listing_id": 701, "product": "product", "category": "music", "sub_category": "vinyl",
        "listing_amount": 10.0, "ends_at": "2026-12-05T10:00:00Z", "score": 1.0, "source": "als"}
