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
