"""The marketplace's rules for a list: read from the seed, applied to every ranked list, and checked at the gate."""

from dataclasses import replace

import numpy as np
import pytest

from python_jobs.errors import UserError
from python_jobs.models.rules import ListRules, apply_to_ranked, eligible, load_rules


@pytest.mark.parametrize("rows,says", [
    (["max_per_seller,two"], "max_per_seller needs a number"),
    (["max_per_seller,2.5"], "must be a whole number"),
    (["min_listing_amount,-1"], "must be >= 0"),
    (["favourite_colour,3"], "unknown rule 'favourite_colour'"),
    (["min_listing_amount,10", "max_listing_amount,5"], "min_listing_amount is above max_listing_amount"),
])
def test_a_wrong_rule_names_its_line_and_the_fix(tmp_path, rows, says):
    path = tmp_path / "list_rules.csv"
    path.write_text("\n".join(["rule,value,why", *[row + ",because" for row in rows]]) + "\n")
    with pytest.raises(UserError, match=says):
        load_rules(path)


def test_the_shipped_rules_load_and_suspended_sellers_add_up(tmp_path):
    assert load_rules().max_per_seller >= 1
    path = tmp_path / "list_rules.csv"
    path.write_text("rule,value\nsuspended_seller,12\nsuspended_seller,40\nmax_per_seller,2\n")
    assert load_rules(path) == ListRules(max_per_seller=2, suspended_sellers=frozenset({12, 40}))


def test_own_listings_and_the_cap_per_seller_leave_the_next_best():
    # item positions 0..5 sold by sellers 7, 7, 7, 8, 9, 7; user 9 is a seller too, user 7 sells most
    sellers = np.array([7, 7, 7, 8, 9, 7])
    chosen = np.array([[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0]])
    scores = np.array([[6, 5, 4, 3, 2, 1], [6, 5, 4, 3, 2, 1]], float)
    kept, kept_scores, _ = apply_to_ranked(chosen, scores, "m", np.array([9, 7]), sellers, ListRules(max_per_seller=2), 3)
    assert kept.tolist() == [[0, 1, 3], [4, 3, -1]]  # user 9: seller 7's third and its own dropped
    assert kept_scores[0].tolist() == [6, 5, 3] and kept_scores[1, 2] == -np.inf


def test_ranked_lists_obey_every_rule_and_stay_full(tmp_path):
    from python_jobs import models as registry
    from python_jobs.config import DAILY_MODELS
    from python_jobs.ingest.generate import generate
    from python_jobs.models.data import from_marketplace
    from python_jobs.models.lists import block_lists, make_ranker

    params = registry.TrainParams(seed=5)
    data = from_marketplace(generate(300, 5), params.count_weight, params.amount_weight, params.half_life_days)[0]
    # six sellers, who are also users, share every listing round-robin; the dearest tenth lies outside the band
    sellers = data.user_ids[:6][np.arange(data.n_items) % 6]
    items = data.items.assign(is_open=data.items["ends_at"] > data.as_of, seller_uid=sellers)
    data = replace(data, items=items)
    ceiling = float(np.quantile(items["listing_amount"], 0.9))
    rules = ListRules(max_per_seller=3, max_listing_amount=ceiling, suspended_sellers=frozenset({int(sellers[0])}))
    components = [m.fit(data) for m in registry.build(DAILY_MODELS, params)]
    ranker = make_ranker(data, components, {s: {"taste": 1.0, "popularity": 0.5} for s in ("new", "light", "heavy")},
                         heavy_from=3, n=10, candidates=100, rules=rules)
    allowed = eligible(items, rules)
    assert allowed[ranker.open_items].all() and not allowed[items["is_open"].to_numpy(bool)].all()
    served, own = block_lists(ranker, np.arange(data.n_users))
    seller_of = dict(zip(data.item_ids, sellers))
    amount_of = dict(zip(data.item_ids, items["listing_amount"]))
    for frame, lists in ((served, ["uid"]), (own, ["uid", "model"])):
        seller = frame["listing_id"].map(seller_of)
        assert (seller != frame["uid"]).all()
        assert not seller.isin(rules.suspended_sellers).any()
        assert (frame["listing_id"].map(amount_of) <= ceiling).all()
        assert frame.assign(seller=seller).groupby([*lists, "seller"]).size().max() <= 3
        sizes = frame.groupby(lists).size()
        assert (sizes == 10).mean() > 0.95 and sizes.max() == 10
        ranks = frame.groupby(lists)["rank"].agg(lambda r: sorted(r) == list(range(1, len(r) + 1)))
        assert ranks.all()
    # the sellers among the users: never their own listings, and still a list
    assert set(served[served["uid"].isin(data.user_ids[1:6])]["uid"]) == set(data.user_ids[1:6])


def test_the_last_slot_explores_a_listing_few_have_seen_from_a_seller_not_in_the_list():
    from python_jobs import models as registry
    from python_jobs.ingest.generate import generate
    from python_jobs.models.data import from_marketplace
    from python_jobs.models.lists import block_lists, make_ranker

    params = registry.TrainParams(seed=8)
    data = from_marketplace(generate(300, 8), params.count_weight, params.amount_weight, params.half_life_days)[0]
    items = data.items.assign(is_open=data.items["ends_at"] > data.as_of,
                              seller_uid=10_000 + np.arange(data.n_items) % 40)
    data = replace(data, items=items)
    components = [m.fit(data) for m in registry.build(("taste", "popularity", "content"), params)]
    weights = {s: {"taste": 1.0, "popularity": 0.5, "content": 0.0} for s in ("light", "heavy")}
    weights["new"] = {"taste": 0.0, "popularity": 1.0, "content": 0.0}  # cold users: lists of one model

    def lists(slots):
        ranker = make_ranker(data, components, weights, heavy_from=3, n=10, candidates=100, rules=ListRules(
            max_per_seller=3), explore_slots=slots)
        return ranker, block_lists(ranker, np.arange(data.n_users))[0]

    ranker, explored = lists(1)
    _, plain = lists(0)
    open_counts = data.bidder_counts[items["is_open"].to_numpy(bool)]
    assert 0 < len(ranker.explore_items) <= 0.2 * len(open_counts) + 1
    assert data.bidder_counts[ranker.explore_items].max() <= np.quantile(open_counts, 0.25)
    unseen = set(data.item_ids[ranker.explore_items])
    marked = explored[explored["source"] == "explore"]
    assert "explore" not in set(plain["source"]) and marked["uid"].nunique() > 0.9 * plain["uid"].nunique()
    assert (marked["rank"] == 10).all() and set(marked["listing_id"]) <= unseen
    position = {listing: i for i, listing in enumerate(data.item_ids)}
    user = {uid: i for i, uid in enumerate(data.user_ids)}
    assert not any(data.seen[user[u], position[l]] for u, l in zip(marked["uid"], marked["listing_id"]))
    # the rest of each list is the list without exploration; a list one model served keeps saying so
    rest = explored[explored["source"] != "explore"].merge(plain, on=["uid", "rank", "listing_id", "source"])
    assert len(rest) == len(explored) - len(marked)
    before, after = plain.groupby("uid")["list_source"].first(), explored.groupby("uid")["list_source"].first()
    single = before[before != "hybrid"]
    assert len(single) and (after[single.index] == single).all()
    seller = dict(zip(data.item_ids, items["seller_uid"]))
    for uid, rows in explored[explored["uid"].isin(marked["uid"])].groupby("uid"):
        sellers = rows["listing_id"].map(seller)
        assert sellers.value_counts().max() <= 3 and len(rows) == 10
        assert sellers[rows["source"] == "explore"].iloc[0] not in set(sellers[rows["source"] != "explore"])
