"""Metric functions against hand-computed examples."""

import math

import numpy as np
import pytest
from scipy import sparse

from python_jobs.models.metrics import ItemStats, ranking_metrics, ranking_metrics_at


def _truth(pairs, users, items=100):
    rows, cols = zip(*pairs) if pairs else ((), ())
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(users, items))


def test_single_user_hits_at_ranks_1_and_3():
    # user 0: recommended [10, 11, 12], relevant {10, 12, 99}
    m = ranking_metrics(np.array([[10, 11, 12]]), _truth([(0, 10), (0, 12), (0, 99)], 1), k=3, catalog_size=10)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg"] == pytest.approx(dcg / idcg)
    assert m["map"] == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert m["coverage"] == pytest.approx(3 / 10)


def test_users_without_recommendations_count_as_zero_and_k_truncates():
    # user 0 hits at rank 2 (inside k=2); user 1 has truth but an empty list; the rank-3 hit is cut by k
    lists = np.array([[5, 6, 7], [-1, -1, -1]])
    m = ranking_metrics(lists, _truth([(0, 6), (0, 7), (1, 8)], 2), k=2, catalog_size=4)
    assert m["users"] == 2
    assert m["precision"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["recall"] == pytest.approx((1 / 2 + 0) / 2)
    user1_ndcg = (1 / math.log2(3)) / (1 / math.log2(2) + 1 / math.log2(3))
    assert m["ndcg"] == pytest.approx(user1_ndcg / 2)
    assert m["map"] == pytest.approx(((1 / 2) / 2) / 2)
    assert m["coverage"] == pytest.approx(2 / 4)


def test_all_cutoffs_in_one_pass_match_one_cutoff_at_a_time():
    lists = np.array([[10 * u + i for i in range(1, 6)] for u in range(5)])
    truth = _truth([(u, 10 * u + h) for u in range(5) for h in (u % 5 + 1, 3)], 5)
    together = ranking_metrics_at(lists, truth, [1, 2, 5, 3], catalog_size=40)
    assert sorted(together) == [1, 2, 3, 5]
    for k, metrics in together.items():
        assert metrics == pytest.approx(ranking_metrics(lists, truth, k=k, catalog_size=40)), k
    assert together[1]["ndcg"] != together[5]["ndcg"]


def test_novelty_diversity_and_long_tail_by_hand():
    # 4 training users; item 0 bid by all four, item 1 by one, items 2 and 3 by nobody
    train = sparse.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]], dtype=float))
    stats = ItemStats(train, sub_of_item=np.array([0, 0, 1, 2]))
    lists = np.array([[0, 1], [2, 3]])
    m = ranking_metrics(lists, _truth([], 2, 4), k=2, catalog_size=4, stats=stats)
    info = [-math.log2(5 / 5), -math.log2(2 / 5), -math.log2(1 / 5), -math.log2(1 / 5)]
    assert m["novelty"] == pytest.approx(sum(info) / 4)
    assert m["diversity"] == pytest.approx((1 / 2 + 2 / 2) / 2)  # one sub-category in list 0, two in list 1
    # the head: the most-bid items until half of the 5 interactions is reached, so item 0 alone
    assert m["long_tail"] == pytest.approx(3 / 4)
