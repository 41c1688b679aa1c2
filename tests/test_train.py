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


def _replay(users: int, seed: int, extra: tuple[str, ...] = ()):
    """A generated marketplace's training set with the open listings marked, and every daily model (and `extra`)
    fitted on it."""
    from dataclasses import replace

    from python_jobs import models as registry
    from python_jobs.config import DAILY_MODELS
    from python_jobs.ingest.generate import generate
    from python_jobs.models.data import from_marketplace

    params = TrainParams(seed=seed)
    data = from_marketplace(generate(users, seed), params.count_weight, params.amount_weight, params.half_life_days)[0]
    data = replace(data, items=data.items.assign(is_open=data.items["ends_at"] > data.as_of))
    return data, [m.fit(data) for m in registry.build([*DAILY_MODELS, *extra], params)]


def _sorted(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame[columns].sort_values([c for c in columns if c != "score"]).reset_index(drop=True)


def test_lists_ranked_on_spark_in_blocks_of_users_are_the_lists_ranked_in_process(spark):
    """The Spark engine's tasks each rank a block of users with the in-process engine's function, from one
    broadcast of the fitted models (the deep ones' weights too): every user's served list and each model's own
    come out the same."""
    from python_jobs.models.lists import OWN_COLUMNS, SERVED_COLUMNS, block_lists, make_ranker
    from python_jobs.models.rank_spark import ranked_on_spark

    data, components = _replay(300, 7, ("mult_dae", "two_tower"))
    weights = {seg: {"als": 1.0, "taste": 0.5, "item_knn": 1.0, "ease": 0.25, "content": 0.25, "popularity": 0.5,
                     "mult_dae": 0.5, "two_tower": 0.25} for seg in ("new", "light", "heavy")}
    ranker = make_ranker(data, components, weights, heavy_from=3, n=10, candidates=100)
    served, own = block_lists(ranker, np.arange(data.n_users))
    with ranked_on_spark(spark, ranker, tasks=3) as lists:
        ranked = lists.toPandas()
    assert ranked["uid"].nunique() == served["uid"].nunique() > 250
    on_spark = ranked[ranked["model"].isna()]
    assert len(on_spark) == len(served) and len(ranked) - len(on_spark) == len(own)
    for local, remote, columns in ((served, on_spark, SERVED_COLUMNS), (own, ranked[ranked["model"].notna()], OWN_COLUMNS)):
        local, remote = _sorted(local, columns), _sorted(remote, columns)
        exact = [c for c in columns if c != "score"]
        pd.testing.assert_frame_equal(local[exact].astype(str), remote[exact].astype(str))
        assert np.allclose(local["score"], remote["score"], rtol=1e-5)
    assert set(own["model"]) == {m.name for m in components}


def test_ranking_leaves_the_driver_when_every_users_lists_would_take_a_quarter_of_its_memory():
    from python_jobs.models import engine

    gib = 2**30
    assert engine.for_ranking("auto", 100_000, 6, 10, 300, memory=24 * gib)[0] == "local"
    chosen, why = engine.for_ranking("auto", 1_000_000, 6, 10, 300, memory=24 * gib)
    assert chosen == "spark" and why.startswith("lists of 1,000,000 users by 6 models need"), why
    assert engine.for_ranking("spark", 10, 6, 10, 300) == ("spark", "ENCORE_TRAIN_ENGINE=spark")
