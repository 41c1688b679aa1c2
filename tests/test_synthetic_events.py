"""The generated app's browsing draws a listing open at the view's time, by popularity among those open, without a
views x listings matrix (at a million users one sub-category pair's matrix was 34.6 GiB and `generate` died)."""

import numpy as np

from python_jobs.events.synthetic import _open_by_popularity, _pair_of_views


def test_a_view_gets_a_listing_open_then_in_proportion_to_popularity_among_those_open():
    listed = np.array([0.0, 0.0, 5.0, 5.0, 20.0])
    ends = np.array([10.0, 30.0, 30.0, 8.0, 40.0])
    weight = np.array([1.0, 2.0, 3.0, 0.0, 5.0])
    rng = np.random.default_rng(1)
    for t, expected in ((6.0, {0: 1, 1: 2, 2: 3}), (25.0, {1: 2, 2: 3, 4: 5})):
        drawn = _open_by_popularity(listed, ends, weight, np.full(60_000, t), rng)
        share = np.bincount(drawn, minlength=len(listed)) / len(drawn)
        total = sum(expected.values())
        for j in range(len(listed)):
            assert abs(share[j] - expected.get(j, 0) / total) < 0.01, (t, j, share)
    # before anything is listed, after everything ended, and when only a weightless listing is open: none
    assert _open_by_popularity(listed, ends, weight, np.array([-1.0, 45.0]), rng).tolist() == [-1, -1]
    assert _open_by_popularity(listed[3:4], ends[3:4], weight[3:4], np.array([6.0]), rng).tolist() == [-1]


def test_a_view_gets_a_listing_even_when_almost_nothing_that_ends_later_is_listed_yet():
    # one listing open at t=1 and 500 heavier ones listed later: rejection rarely hits, the exact draw places it
    listed = np.concatenate([[0.0], np.full(500, 2.0)])
    ends = np.concatenate([[5.0], np.full(500, 9.0)])
    weight = np.concatenate([[1.0], np.full(500, 100.0)])
    assert _open_by_popularity(listed, ends, weight, np.full(20, 1.0), np.random.default_rng(2)).tolist() == [0] * 20


def test_each_views_pair_follows_its_users_preferences_slice_by_slice():
    prefs = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    uids = np.array([1, 2, 2, 1, 2])
    draw = np.array([0.9, 0.2, 0.7, 0.1, 0.999])
    assert _pair_of_views(prefs, uids, draw).tolist() == [0, 1, 2, 0, 2]
