"""Shaping of the published JSON and the manifest checks."""

from datetime import datetime

import pytest

from python_jobs.errors import GateFailed
from python_jobs.publish import bucket_count, check_manifest, shape_user_lists


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
