"""The deep models (issue 31) on tiny hand-checkable marketplaces: they learn, they are reproducible, and the
two-tower scores a listing nobody has bid on from its features."""

import numpy as np
import pandas as pd
import pytest

from python_jobs.models import TrainParams, build
from python_jobs.models.base import top_n
from python_jobs.models.data import build as training_set

# listings 1-4 are vinyl (music), 5-8 lamps (home); 9 is a new vinyl record and 10 a new lamp nobody bid on
LISTINGS = pd.DataFrame({
    "listing_id": range(1, 11),
    "product": ["vinyl record jazz"] * 4 + ["desk lamp brass"] * 4 + ["vinyl record jazz", "desk lamp brass"],
    "category": ["music"] * 4 + ["home"] * 4 + ["music", "home"],
    "sub_category": ["vinyl"] * 4 + ["lamps"] * 4 + ["vinyl", "lamps"],
    "listing_amount": [20.0, 25.0, 30.0, 22.0, 80.0, 90.0, 85.0, 95.0, 24.0, 88.0]})


def _market(users: int = 60):
    """Odd users bid on listings 1 and 2 together (and now and then 3), even users on 5 and 6 (and 7); user 1 only
    on listing 1, so its co-bid listing 2 is what it lacks."""
    rows = []
    for uid in range(2, users + 1):
        base = [1, 2] if uid % 2 else [5, 6]
        rows += [(uid, item) for item in base] + ([(uid, base[0] + 2)] if uid % 3 == 0 else [])
    rows.append((1, 1))
    interactions = pd.DataFrame(rows, columns=["uid", "listing_id"]).assign(strength=1.0, last_bid_at=0.0)
    return training_set(interactions, pd.DataFrame({"uid": range(1, users + 1)}), LISTINGS, None, 0.0, 14.0)


@pytest.mark.parametrize("name", ["mult_vae", "mult_dae"])
def test_autoencoder_learns_the_co_bid_listing_and_its_loss_falls(name):
    data = _market()
    model = build([name], TrainParams(seed=7))[0]
    model.epochs = 60
    model.fit(data)
    assert model.losses_[-1] < 0.8 * model.losses_[0]
    user = data.user_positions([1])
    chosen, _ = top_n(model, data, user, np.arange(data.n_items), 3)
    assert data.item_ids[chosen[0, 0]] == 2  # the listing every bidder on 1 also bid on, never a lamp
    assert model.covers(data.user_positions([1, 2])).all()


@pytest.mark.parametrize("name", ["mult_vae", "mult_dae", "two_tower"])
def test_deep_models_are_reproducible_with_a_seed(name):
    data = _market()
    users, items = np.arange(data.n_users), np.arange(data.n_items)
    first, second, other = (build([name], TrainParams(seed=s))[0] for s in (3, 3, 4))
    for model in (first, second, other):
        model.epochs = 2
        model.fit(data)
    assert np.array_equal(first.score(users, items), second.score(users, items))
    assert not np.array_equal(first.score(users, items), other.score(users, items))


def test_two_tower_scores_a_new_listing_from_its_features():
    """Listings 9 (vinyl) and 10 (a lamp) have no bids: only their features can place them."""
    data = _market()
    model = build(["two_tower"], TrainParams(seed=7))[0].fit(data)
    assert model.losses_[-1] < model.losses_[0]
    new = data.item_positions([9, 10])
    vinyl_fan, lamp_fan = data.user_positions([1, 2])
    scores = model.score(np.array([vinyl_fan, lamp_fan]), new)
    assert scores[0, 0] > scores[0, 1] and scores[1, 1] > scores[1, 0]
    # and among every listing the vinyl fan has not bid on, the new record comes before every lamp
    chosen, _ = top_n(model, data, np.array([vinyl_fan]), np.arange(data.n_items), data.n_items)
    order = list(data.item_ids[chosen[0][chosen[0] >= 0]])
    assert order.index(9) < min(order.index(i) for i in (5, 6, 7, 8, 10))


def test_two_tower_retrieves_a_new_listing_when_als_is_not_fitted():
    from python_jobs.models.hybrid import Hybrid
    from python_jobs.models.retrieve import RETRIEVERS

    data = _market()
    tower = build(["two_tower"], TrainParams(seed=7))[0].fit(data)
    hybrid = Hybrid([tower], candidates=20)
    found = hybrid.retrieve(data, data.user_positions([1]), np.arange(data.n_items))
    from_factors = found.items[found.source == RETRIEVERS.index("factors")]
    assert data.item_positions([9])[0] in from_factors


def test_the_new_listings_segment_keeps_only_bids_on_listings_nobody_had_touched():
    from scipy import sparse

    from python_jobs.models.evaluate import Part, new_listing_bids

    data = _market()  # listings 9 and 10 have no interactions
    users = data.user_positions([1, 2, 3])
    bids = {0: [2, 9], 1: [5], 2: [10]}  # user 1 bid on an old and a new listing, user 2 on an old one only
    rows = [r for r, items in bids.items() for _ in items]
    cols = data.item_positions([i for items in bids.values() for i in items])
    relevant = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(3, data.n_items))
    who, fresh = new_listing_bids(Part(data, users, np.arange(data.n_items), relevant))
    assert who.tolist() == [True, False, True]
    assert [data.item_ids[row.indices].tolist() for row in fresh] == [[9], [10]]


def test_evaluate_feeds_items_to_the_listing_tower_and_reports_new_listings(tmp_path, monkeypatch, capsys):
    """Two tastes; each user bids on all ten old listings of theirs, then (the test, by time) on one of listings
    21-30, which nobody bid on before: only their words and category (`--items`) tell the two-tower whose they
    are, while popularity puts the other taste's old listings first."""
    import json

    from python_jobs.cli import main

    monkeypatch.setenv("ENCORE_MODELS", "two_tower,popularity")
    rng = np.random.default_rng(5)
    music = lambda user: user % 2 == 1  # noqa: E731
    rows = []
    for user in range(1, 81):
        old = rng.permutation(range(1, 11) if music(user) else range(11, 21))
        new = rng.choice(range(21, 26) if music(user) else range(26, 31), 1)
        rows += [f"u{user},i{item},{k * 100 + user}" for k, item in enumerate(old)]
        rows += [f"u{user},i{item},{1000 + k * 100 + user}" for k, item in enumerate(new)]
    (tmp_path / "bids.csv").write_text("user,item,when\n" + "\n".join(rows) + "\n")
    (tmp_path / "items.csv").write_text("item,title,category\n" + "\n".join(
        f"i{i},{'vinyl record' if i <= 10 or 21 <= i <= 25 else 'desk lamp'} {i},"
        f"{'music' if i <= 10 or 21 <= i <= 25 else 'home'}" for i in range(1, 31)))
    out = tmp_path / "m.json"
    code = main(["evaluate", "--interactions", str(tmp_path / "bids.csv"), "--user-col", "user", "--item-col", "item",
                 "--time-col", "when", "--test-fraction", "0.1", "--items", str(tmp_path / "items.csv"),
                 "--text-col", "title", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    segments = json.loads(out.read_text())["segments"]
    tower, popular = segments["two_tower"]["new_listings"], segments["popularity"]["new_listings"]
    assert tower["users"] > 0 and tower["ndcg"] > popular["ndcg"] + 0.2


def test_carried_keeps_each_learned_row_by_its_key_and_starts_new_keys_fresh():
    from python_jobs.models.gradient import carried

    fresh = {"w": np.zeros((3, 2)), "v": np.zeros((2, 3)), "b": np.zeros(2)}
    saved = {"w": np.array([[1.0, 1.0], [2.0, 2.0]]), "v": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": np.array([5.0, 6.0])}
    keyed = {"w": ("listing", 0), "v": ("listing", 1)}
    out = carried(fresh, saved, {"listing": np.array([30, 10, 99])}, {"listing": np.array([10, 30])}, keyed)
    assert np.asarray(out["w"]).tolist() == [[2, 2], [1, 1], [0, 0]]  # 30, 10 from the saved fit; 99 is new
    assert np.asarray(out["v"]).tolist() == [[2, 1, 0], [4, 3, 0]]
    assert np.asarray(out["b"]).tolist() == [5, 6]
    with pytest.raises(ValueError, match="shape"):
        carried({"b": np.zeros(3)}, saved, {}, {}, {})


def test_a_warm_start_needs_the_same_settings_no_later_data_and_a_recent_full_fit():
    from python_jobs.models.data import DAY
    from python_jobs.models.warm_start import decide

    saved = {"settings": "s", "as_of": 10 * DAY, "full_as_of": 5 * DAY, "run_id": "r1"}
    assert decide(None, "s", 11 * DAY, 7) == (False, "no earlier fit")
    assert decide(saved, "t", 11 * DAY, 7) == (False, "the model's settings changed")
    assert decide(saved, "s", 9 * DAY, 7) == (False, "the saved fit saw data after this fit's cutoff")
    assert decide(saved, "s", 12 * DAY, 7)[0] is False  # seven days after the full fit: full again
    assert decide(saved, "s", 11 * DAY, 7) == (True, "from run r1, 6.0 days after its full fit")


@pytest.mark.parametrize("name", ["mult_vae", "two_tower"])
def test_a_warm_start_continues_from_the_earlier_fit(name):
    """With no passes, a warm start scores exactly as the fit it started from; with one pass it begins where that
    fit's loss ended, far below a fresh start's first pass."""
    data = _market()
    users, items = np.arange(data.n_users), np.arange(data.n_items)
    first = build([name], TrainParams(seed=7))[0]
    first.epochs = 40
    first.fit(data)
    params, keys = first.keyed_weights()
    still = build([name], TrainParams(seed=7, deep_warm_epochs=0))[0]
    still.start = {"params": params, "keys": keys}
    still.fit(data)
    assert still.epochs_run_ == 0
    assert np.array_equal(still.score(users, items), first.score(users, items))
    warm, cold = (build([name], TrainParams(seed=8, deep_warm_epochs=1))[0] for _ in range(2))
    warm.start = {"params": params, "keys": keys}
    cold.epochs, cold.min_steps, warm.min_steps = 1, 0, 0
    warm.fit(data)
    cold.fit(data)
    assert warm.epochs_run_ == cold.epochs_run_ == 1
    assert warm.losses_[0] < 0.9 * cold.losses_[0]


def test_the_cadence_keeps_weights_in_the_lake_warm_starts_daily_and_fits_in_full_weekly(stack):
    from dataclasses import replace

    from python_jobs.infra.s3 import delete_prefix, s3_client
    from python_jobs.models.data import DAY
    from python_jobs.models.warm_start import WarmStarts

    delete_prefix(s3_client(stack), stack.lake_bucket, "models/deep/")
    day = lambda n: replace(_market(), as_of=n * DAY)  # noqa: E731
    fits = []
    for run, (as_of, part) in enumerate([(1, "final"), (2, "final"), (3, "test"), (9, "final"), (0.5, "final"),
                                         (10, "final")]):
        starts = WarmStarts(stack, f"run{run}", full_every_days=7)
        model = build(["mult_dae"], TrainParams(seed=7, deep_epochs=3, deep_warm_epochs=1))[0]
        model.min_steps = 0
        starts.fit(model, day(as_of), part)
        fits.append(starts.fits[f"{part}/mult_dae"])
    modes = [(f["mode"], f["epochs"]) for f in fits]
    assert modes == [("full", 3), ("warm", 1), ("full", 3), ("full", 3), ("full", 3), ("warm", 1)]
    assert fits[1]["why"].startswith("from run run0") and fits[2]["why"] == "no earlier fit"  # parts are apart
    assert "8.0 days old" in fits[3]["why"]
    assert fits[4]["why"] == "the saved fit saw data after this fit's cutoff"
    # the backfill as of day 0.5 did not replace the newer fit: day 10 starts from day 9's full fit
    assert fits[5]["why"] == "from run run3, 1.0 days after its full fit"
    delete_prefix(s3_client(stack), stack.lake_bucket, "models/deep/")
