"""The train stage's pieces on tiny hand-made frames: strength, the splits, the lists it writes."""

import math

import numpy as np
import pandas as pd
import pytest

from python_jobs.models.evaluate import per_user_splitter, sample_users, time_splitter
from python_jobs.models import TrainParams
from python_jobs.models.data import build
from python_jobs.models.item_knn import ItemKNN
from python_jobs.models.popularity import Popularity
from python_jobs.models.taste import Taste
from python_jobs.models.train import build_lists, interaction_strength


def test_interaction_strength_weights_counts_and_amounts(spark):
    df = spark.createDataFrame([(1, 1, 2, 99.0), (1, 2, 1, 0.0)], "uid int, listing_id int, bid_count int, total_bid_amount double")
    params = TrainParams(count_weight=2.0, amount_weight=0.5)
    out = {r.listing_id: r.strength for r in interaction_strength(df, params).collect()}
    assert out[1] == pytest.approx(2.0 * 2 + 0.5 * math.log1p(99.0))
    assert out[2] == pytest.approx(2.0)


def test_per_user_split_keeps_one_train_row_and_holds_out_a_share():
    rows = [(1, i) for i in range(1, 6)] + [(2, 9)] + [(3, 7), (3, 8)]
    df = pd.DataFrame(rows, columns=["uid", "listing_id"]).assign(strength=1.0, first_bid_at=0.0, last_bid_at=0.0)
    train, test, items, _ = per_user_splitter(0.4, seed=1, as_of=0.0)(df, 10)
    assert sorted(test.groupby("uid").size().to_dict().items()) == [(1, 2), (3, 1)]  # uid 2 has one row: kept
    assert len(train) + len(test) == len(df) and len(items) == 10
    again = per_user_splitter(0.4, seed=1, as_of=0.0)(df, 10)[1]
    assert again.equals(test)  # seeded


def test_time_split_scores_among_listings_open_at_the_cutoff():
    df = pd.DataFrame({"uid": [1, 1, 2, 2, 3], "listing_id": [0, 1, 1, 2, 2], "strength": 1.0,
                       "first_bid_at": [1.0, 2.0, 3.0, 8.0, 9.0], "last_bid_at": 9.0})
    listed = np.array([0.0, 0.0, 5.0, 9.5])
    ends = np.array([4.0, 20.0, 20.0, 30.0])
    train, test, items, cutoff = time_splitter(0.4, listed, ends)(df, 4)
    assert cutoff == 8.0
    assert train["first_bid_at"].tolist() == [1.0, 2.0, 3.0] and test["first_bid_at"].tolist() == [8.0, 9.0]
    assert items.tolist() == [1, 2]  # 0 ended before the cutoff, 3 was listed after it


def test_sample_users_is_seeded_and_bounded():
    uids = np.arange(1, 1001)
    assert len(sample_users(uids, 10, 42)) == 10
    assert sample_users(uids, 10, 42).tolist() == sample_users(uids[::-1], 10, 42).tolist()
    assert sample_users(uids, 10, 42).tolist() != sample_users(uids, 10, 7).tolist()
    assert len(sample_users(uids, 0, 42)) == 1000


def test_lists_are_open_unseen_and_labelled_by_source():
    listings = pd.DataFrame({"listing_id": [10, 11, 12, 13], "category": ["music"] * 3 + ["home"],
                             "sub_category": ["vinyl", "vinyl", "cassettes", "lamps"], "product": ["a", "b", "c", "d"],
                             "listing_amount": 1.0, "is_open": [True, True, False, True]})
    bids = pd.DataFrame({"uid": [1, 2, 2], "listing_id": [10, 10, 11], "strength": 1.0, "last_bid_at": 0.0})
    data = build(bids, pd.DataFrame({"uid": [1, 2, 3]}), listings, None, 0.0, 14.0)
    components = [m.fit(data) for m in (Taste(), ItemKNN(), Popularity())]
    weights = {seg: {"taste": 1.0, "item_knn": 0.0, "popularity": 0.0} for seg in ("new", "light", "heavy")}
    served, own, similar = build_lists(data, components, weights, heavy_from=3, n=3)
    assert 12 not in served["listing_id"].tolist()  # closed
    assert not served[served["uid"] == 1]["listing_id"].isin([10]).any()  # already bid
    assert set(served["list_source"]) == {"taste"}
    # item_knn lists only users who bid; taste and popularity everyone
    assert set(own[own["model"] == "item_knn"]["uid"]) == {1, 2}
    assert set(own[own["model"] == "taste"]["uid"]) == {1, 2, 3}
    # similar listings from item_knn: 10 and 11 were bid on together, never a listing with itself
    assert similar[similar["listing_id"] == 10]["similar_listing_id"].tolist() == [11]
    assert (similar["listing_id"] != similar["similar_listing_id"]).all()
