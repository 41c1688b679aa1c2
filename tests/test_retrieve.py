"""Candidate retrieval on a market small enough to check by hand."""

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from python_jobs.models.data import build
from python_jobs.models.retrieve import RETRIEVERS, by_neighbours, by_taste, neighbour_matrix, recall, retrieve

NOW = 1_800_000_000.0
# 10, 11 music/vinyl; 12 music/cassettes; 13, 14 home/lamps (nobody bid on 14); 15 home/rugs
LISTINGS = pd.DataFrame({
    "listing_id": [10, 11, 12, 13, 14, 15],
    "category": ["music", "music", "music", "home", "home", "home"],
    "sub_category": ["vinyl", "vinyl", "cassettes", "lamps", "lamps", "rugs"],
    "product": ["jazz vinyl", "soul vinyl", "mixtape", "brass lamp", "glass lamp", "wool rug"],
    "listing_amount": [20.0, 25.0, 5.0, 60.0, 70.0, 90.0],
})
# uid 1 bid on 10; uid 2 on 10, 11, 12; uid 3 on 13; uid 4 never bid and answered home/lamps
BIDS = pd.DataFrame({"uid": [1, 2, 2, 2, 3], "listing_id": [10, 10, 11, 12, 13],
                     "strength": [1.0, 1.0, 1.0, 1.0, 1.0], "last_bid_at": [NOW] * 5})
INTERESTS = pd.DataFrame({"uid": [4], "category": ["home"], "sub_category": ["lamps"]})
ALL = np.arange(6)


@pytest.fixture(scope="module")
def data():
    return build(BIDS, pd.DataFrame({"uid": [1, 2, 3, 4]}), LISTINGS, INTERESTS, NOW, 14.0)


def _ids(data, positions):
    return [int(data.item_ids[p]) for p in positions if p >= 0]


def test_neighbours_are_what_others_bid_on_beside_the_users_listings(data):
    neighbours = neighbour_matrix(data, ALL)
    assert neighbours[data.item_positions([10])[0], data.item_positions([10])[0]] == 0  # never itself
    found = by_neighbours(data, data.user_positions([1, 3]), neighbours, 3)
    assert sorted(_ids(data, found[0])) == [11, 12]  # uid 2 bid on 11 and 12 beside uid 1's 10
    assert _ids(data, found[1]) == []  # nobody else bid on 13


def test_taste_searches_the_questionnaires_sub_category_for_a_user_without_bids(data):
    listed = _ids(data, by_taste(data, data.user_positions([4]), ALL, 10)[0])
    assert listed[0] == 13  # lamps first, the one with a bidder ahead
    assert 14 in listed  # a lamp nobody bid on yet still has a place
    # then round by round across the next strongest sub-categories (the marketplace's demand: vinyl first)
    assert listed[1] == 10


def test_candidates_are_bounded_never_what_the_user_bid_on_and_named_once(data):
    users = data.user_positions([1, 2, 3, 4])
    found = retrieve(data, users, ALL, size=4)
    assert found.items.shape == (4, 4)
    for row, uid in zip(found.items, [1, 2, 3, 4]):
        listed = _ids(data, row)
        assert len(listed) == len(set(listed))
        assert not set(listed) & set(BIDS.loc[BIDS["uid"] == uid, "listing_id"])
    assert ((found.source >= 0) == (found.items >= 0)).all()
    assert set(found.counts()) == set(RETRIEVERS)


def test_only_the_candidates_of_the_day_are_retrieved(data):
    open_items = data.item_positions([11, 14])
    found = retrieve(data, data.user_positions([1, 2, 3, 4]), open_items, size=10)
    assert set(found.items[found.items >= 0].tolist()) <= set(open_items.tolist())


def test_recall_is_the_share_of_relevant_pairs_among_the_candidates(data):
    users = data.user_positions([1, 4])
    found = retrieve(data, users, ALL, size=3)
    # uid 1 went on to bid on 11 (a neighbour of 10) and 15 (rugs, which nothing points to at size 3)
    relevant = sparse.csr_matrix((np.ones(2), ([0, 0], data.item_positions([11, 15]))), shape=(2, data.n_items))
    got = recall(found, relevant)
    in_list = [p in set(found.items[0].tolist()) for p in data.item_positions([11, 15])]
    assert got["recall"] == sum(in_list) / 2
    assert in_list[0]
    assert sum(got["recall_by_retriever"].values()) == pytest.approx(got["recall"])


@pytest.mark.parametrize("name", ["taste", "item_knn", "user_knn", "ease", "content", "weighted_ratings",
                                  "popularity", "als"])
def test_each_model_scores_a_users_own_candidates_as_it_scores_every_listing(data, name):
    """Ranking reads (user, candidate) pairs: each model's pair scores are its full scores at those cells."""
    from python_jobs.models import TrainParams, build as build_models
    from python_jobs.models.base import pair_scores

    model = build_models([name], TrainParams(rank=2, max_iter=3))[0].fit(data)
    users = data.user_positions([1, 2, 3, 4])
    items = data.item_positions([10, 11, 12, 14, 15])  # the day's listings (13 has ended)
    cands = np.array([[1, 2, -1], [4, 5, 1], [0, 5, 4], [3, -1, -1]])  # positions; 3 (13) is scored as well
    full = np.asarray(model.score(users, items), np.float32)
    got = pair_scores(model, users, cands, items)
    column = {int(p): c for c, p in enumerate(items)}
    for u, row in enumerate(cands):
        for c, item in enumerate(row):
            if item < 0:
                assert got[u, c] == 0
            elif int(item) in column:
                assert got[u, c] == pytest.approx(full[u, column[int(item)]], rel=1e-5, abs=1e-6), (u, item)


def test_the_hybrid_ranks_only_each_users_candidates(data):
    """Retrieve, then rank: the blend's list of a user is drawn from that user's candidates, never beyond."""
    from python_jobs.models import TrainParams, build as build_models
    from python_jobs.models.hybrid import Hybrid

    components = [m.fit(data) for m in build_models(["taste", "item_knn", "popularity"], TrainParams())]
    users = data.user_positions([1, 2, 3, 4])
    hybrid = Hybrid(components, candidates=2)
    found = hybrid.retrieve(data, users, ALL)
    chosen, _, sources = hybrid.ranked(data, users, ALL, 3)
    for u in range(len(users)):
        listed = set(chosen[u][chosen[u] >= 0].tolist())
        assert listed and listed <= set(found.items[u][found.items[u] >= 0].tolist())
    wide = Hybrid(components, candidates=50).ranked(data, users, ALL, 3)[0]
    assert (wide >= 0).sum() > (chosen >= 0).sum()  # more candidates, fuller lists


def test_no_users_retrieve_and_rank_nothing(data):
    from python_jobs.models import TrainParams, build as build_models
    from python_jobs.models.hybrid import Hybrid

    assert retrieve(data, np.array([], np.int64), ALL, 10).items.shape == (0, 10)
    components = [m.fit(data) for m in build_models(["taste", "popularity"], TrainParams())]
    chosen, _, _, own = Hybrid(components).ranked_with_own(data, np.array([], np.int64), ALL, 3)
    assert chosen.shape == (0, 3) and own["taste"][0].shape == (0, 3)


def test_a_users_candidates_do_not_depend_on_who_else_is_retrieved(data):
    alone = retrieve(data, data.user_positions([4]), ALL, 10).items[0]
    together = retrieve(data, data.user_positions([2, 4]), ALL, 10).items[1]
    assert alone.tolist() == together.tolist()


def test_values_at_reads_cells_and_leaves_the_matrix_as_it_was():
    from python_jobs.models.data import values_at

    matrix = sparse.csr_matrix((np.array([5.0, 1.0, 2.0]), np.array([2, 0, 2]), np.array([0, 3, 3])), shape=(2, 3))
    before = (matrix.indices.copy(), matrix.indptr.copy(), matrix.data.copy())
    assert values_at(matrix, np.array([0, 0, 0, 1]), np.array([0, 1, 2, 2])).tolist() == [1.0, 0.0, 7.0, 0.0]
    assert all((a == b).all() for a, b in zip(before, (matrix.indices, matrix.indptr, matrix.data)))
    with pytest.raises(IndexError):
        values_at(matrix, np.array([0]), np.array([3]))


def test_the_factors_retriever_finds_each_users_largest_dot_products():
    from python_jobs.models.retrieve import by_factors

    users_f = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    items_f = np.array([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5], [1.0, 0.0]], np.float32)
    found = by_factors(users_f, items_f, np.array([0, 1]), np.array([0, 1, 2]), 2)  # item 3 is not open today
    assert found.tolist() == [[0, 2], [1, 2]]
    assert by_factors(users_f, items_f, np.array([0]), np.array([2]), 3).tolist() == [[2, -1, -1]]
    # a user with no factors ties every listing at 0: the first positions, in order
    assert by_factors(np.zeros((1, 2), np.float32), items_f, np.array([0]), np.arange(4), 3).tolist() \
        == [[0, 1, 2]]


def test_row_top_is_each_rows_largest_entries_best_first_ties_by_column():
    from scipy import sparse

    from python_jobs.models.neighbours import row_top

    rng = np.random.default_rng(4)
    dense = rng.integers(0, 4, (30, 25)).astype(np.float32) * (rng.random((30, 25)) < 0.4)  # many ties
    matrix = sparse.csr_matrix(dense)
    reversed_rows = matrix.copy()  # the same entries, each row's columns in descending order
    for r in range(matrix.shape[0]):
        span = slice(matrix.indptr[r], matrix.indptr[r + 1])
        reversed_rows.indices[span], reversed_rows.data[span] = matrix.indices[span][::-1], matrix.data[span][::-1]
    reversed_rows.has_sorted_indices = False
    for given in (matrix, reversed_rows):
        cols, values = row_top(given, 6)
        for r in range(dense.shape[0]):
            nonzero = [c for c in np.lexsort((np.arange(25), -dense[r])) if dense[r, c] != 0][:6]
            assert cols[r].tolist() == nonzero + [-1] * (6 - len(nonzero)), r
            assert values[r].tolist() == [float(dense[r, c]) for c in nonzero] + [0.0] * (6 - len(nonzero))


def test_top_k_products_keeps_each_rows_largest_positive_products_ties_by_column_never_the_excluded():
    """The compiled row-at-a-time product against the dense product sorted by hand: values, ties, exclusions and
    rows with fewer than k positive entries (including none)."""
    from scipy import sparse

    from python_jobs.models.neighbours import top_k_products

    rng = np.random.default_rng(5)
    for trial in range(20):
        # up to 191 rows, more than the kernel's chunks, so one scratch row serves many rows; k past the width too
        n, inner, width = 1 + 10 * trial, 3 + 2 * trial, 2 + trial
        k = 1 + trial % 7 + (trial % 3 == 0) * width
        left = sparse.random(n, inner, density=0.3, random_state=trial, format="csr", dtype=np.float32)
        right = sparse.random(inner, width, density=0.3, random_state=99 - trial, format="csr", dtype=np.float32)
        left.data, right.data = np.ceil(left.data * 2), np.ceil(right.data * 2) - 1  # small integers: ties, zeros
        exclude = rng.integers(-1, width, n)
        cols, values = top_k_products(left, right, k, exclude)
        product = (left @ right).toarray()
        for r in range(n):
            wanted = [c for c in np.lexsort((np.arange(width), -product[r]))
                      if product[r, c] > 0 and c != exclude[r]][:k]
            assert cols[r].tolist() == wanted + [-1] * (k - len(wanted)), (trial, r)
            assert values[r].tolist() == [float(product[r, c]) for c in wanted] + [0.0] * (k - len(wanted))


def test_product_at_reads_the_product_at_each_rows_candidates():
    from scipy import sparse

    from python_jobs.models.neighbours import product_at

    rng = np.random.default_rng(6)
    # more rows than the kernel's chunks, so that one scratch row serves many users in turn
    left = sparse.random(300, 9, density=0.4, random_state=1, format="csr", dtype=np.float32)
    right = sparse.random(9, 15, density=0.3, random_state=2, format="csr", dtype=np.float32)
    cands = rng.integers(-1, 15, (300, 7))
    got = product_at(left, right, cands)
    product = (left @ right).toarray()
    wanted = np.where(cands >= 0, np.take_along_axis(product, np.maximum(cands, 0), axis=1), 0.0)
    assert np.allclose(got, wanted, atol=1e-6)
    assert product_at(left, right, cands[:, :0]).shape == (300, 0)


def test_the_merge_keeps_each_listing_once_for_its_first_retriever_never_one_the_user_bid_on():
    """The compiled merge against its definition, sorted: per row, the entries in column order that are not
    padding, not bid on, not a repeat; at most `size`, left-aligned."""
    from types import SimpleNamespace

    from scipy import sparse

    from python_jobs.models.retrieve import _merge

    rng = np.random.default_rng(5)
    found = rng.integers(-1, 12, (40, 16))
    source = np.repeat(np.arange(4), 4)[None, :].repeat(40, axis=0)
    seen = sparse.random(50, 12, density=0.2, format="csr", random_state=5)
    users = rng.permutation(50)[:40]
    for size in (5, 16, 30):
        got = _merge(SimpleNamespace(seen=seen, n_items=12), users, found, source, size)
        assert got.items.shape == (40, min(size, 16))
        for row, user in enumerate(users):
            expected, sources = [], []
            for item, src in zip(found[row], source[row]):
                if item >= 0 and item not in expected and not seen[user, item]:
                    expected.append(item)
                    sources.append(src)
            kept = min(size, len(expected))
            assert got.items[row, :kept].tolist() == expected[:kept] and (got.items[row, kept:] == -1).all()
            assert got.source[row, :kept].tolist() == sources[:kept] and (got.source[row, kept:] == -1).all()


def test_a_models_own_list_from_the_pool_is_its_best_scores_ties_by_listing_position():
    from python_jobs.models.hybrid import _best_pooled

    rng = np.random.default_rng(6)
    cands = np.stack([rng.permutation(100)[:30] for _ in range(50)])
    block = np.round(rng.random((50, 30)), 1).astype(np.float32)  # many ties
    block[rng.random((50, 30)) < 0.3] = -np.inf
    block[0] = -np.inf  # a user with nothing scored
    for n in (1, 10, 40):
        chosen, values = _best_pooled(block, cands, n)
        assert chosen.shape == values.shape == (50, n)
        for row in range(50):
            ranked = sorted((-v, c) for v, c in zip(block[row], cands[row]) if np.isfinite(v))[:n]
            kept = len(ranked)
            assert chosen[row, :kept].tolist() == [c for _, c in ranked]
            assert values[row, :kept].tolist() == [-v for v, _ in ranked]
            assert (chosen[row, kept:] == -1).all() and (values[row, kept:] == -np.inf).all()
