"""Metric functions against hand-computed examples."""

import math

import pytest

from python_jobs.metrics import ranking_metrics


def _frames(spark, recs, truth):
    r = spark.createDataFrame(recs, "uid int, listing_id int, rank int")
    t = spark.createDataFrame(truth, "uid int, listing_id int")
    return r, t


def test_single_user_hits_at_ranks_1_and_3(spark):
    # user 1: recommended [10, 11, 12], relevant {10, 12, 99}
    recs, truth = _frames(spark, [(1, 10, 1), (1, 11, 2), (1, 12, 3)], [(1, 10), (1, 12), (1, 99)])
    m = ranking_metrics(recs, truth, k=3, catalog_size=10)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg"] == pytest.approx(dcg / idcg)
    assert m["map"] == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert m["coverage"] == pytest.approx(3 / 10)


def test_users_without_recommendations_count_as_zero_and_k_truncates(spark):
    # user 1 hits at rank 2 (inside k=2); user 2 has truth but no recs; rank-3 hit is cut by k
    recs, truth = _frames(spark, [(1, 5, 1), (1, 6, 2), (1, 7, 3)], [(1, 6), (1, 7), (2, 8)])
    m = ranking_metrics(recs, truth, k=2, catalog_size=4)
    assert m["users"] == 2
    assert m["precision"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["recall"] == pytest.approx((1 / 2 + 0) / 2)
    user1_ndcg = (1 / math.log2(3)) / (1 / math.log2(2) + 1 / math.log2(3))
    assert m["ndcg"] == pytest.approx(user1_ndcg / 2)
    assert m["map"] == pytest.approx(((1 / 2) / 2) / 2)
    assert m["coverage"] == pytest.approx(2 / 4)


def test_all_cutoffs_in_one_pass_match_one_cutoff_at_a_time(spark):
    from python_jobs.metrics import ranking_metrics_at

    recs, truth = _frames(spark, [(u, 10 * u + i, i) for u in range(1, 6) for i in range(1, 6)],
                          [(u, 10 * u + h) for u in range(1, 6) for h in (u % 5 + 1, 3)] + [(7, 1)])
    together = ranking_metrics_at(recs, truth, [1, 2, 5, 3], catalog_size=40)
    assert sorted(together) == [1, 2, 3, 5]
    for k, metrics in together.items():
        assert metrics == pytest.approx(ranking_metrics(recs, truth, k=k, catalog_size=40)), k
    assert together[1]["ndcg"] != together[5]["ndcg"]
