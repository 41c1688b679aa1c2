"""The marketplace's rules for a list: read from the seed, applied to every ranked list, and checked at the gate."""

from dataclasses import replace

import numpy as np
import pandas as pd
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


def test_promoted_slots_go_to_promoted_listings_that_fit_the_users_taste_from_rank_3():
    """A quarter of the open listings promoted (two of them no longer: their promotion ended): each user whose taste
    a promoted listing fits gets the best one at rank 3, marked, and the rest of the list moves down a place;
    nobody gets one of another sub-category, an ended promotion, or more than the slots; exploration still takes
    the last slot."""
    from python_jobs import models as registry
    from python_jobs.ingest.generate import generate
    from python_jobs.models.data import from_marketplace
    from python_jobs.models.lists import PROMOTED_AT, block_lists, make_ranker

    params = registry.TrainParams(seed=8)
    data = from_marketplace(generate(300, 8), params.count_weight, params.amount_weight, params.half_life_days)[0]
    is_open = (data.items["ends_at"] > data.as_of).to_numpy()
    promoted = np.flatnonzero(is_open)[::4]
    until = np.full(data.n_items, np.nan)
    until[promoted] = data.as_of + 86400
    until[promoted[:2]] = data.as_of - 60  # over before the run
    items = data.items.assign(is_open=is_open, seller_uid=10_000 + np.arange(data.n_items), promoted_until=until)
    data = replace(data, items=items)
    components = [m.fit(data) for m in registry.build(("taste", "popularity"), params)]
    weights = {s: {"taste": 1.0, "popularity": 0.5} for s in ("new", "light", "heavy")}

    def lists(slots, explore=1):
        ranker = make_ranker(data, components, weights, heavy_from=3, n=10, candidates=100, explore_slots=explore,
                             promoted_slots=slots)
        return ranker, block_lists(ranker, np.arange(data.n_users))[0]

    ranker, with_promoted = lists(1)
    _, plain = lists(0)
    _, ranked = lists(0, explore=0)
    assert set(ranker.promoted_items) == set(promoted[2:])
    marked = with_promoted[with_promoted["source"] == "promoted"]
    assert "promoted" not in set(plain["source"]) and marked["uid"].nunique() > 0.3 * plain["uid"].nunique()
    assert (marked["rank"] == PROMOTED_AT).all() and marked["uid"].is_unique
    assert set(marked["listing_id"]) <= set(data.item_ids[promoted[2:]])
    evidence = ((data.binary @ data.to_sub) + data.interests).toarray() > 0
    subs = data.sub_of_item[data.item_positions(marked["listing_id"].to_numpy())]
    assert evidence[data.user_positions(marked["uid"].to_numpy()), subs].all()  # of a sub-category of theirs
    # whom none was given: no promoted listing of their sub-categories was left (in the list already, or bid on)
    in_list = set(zip(ranked["uid"], ranked["listing_id"]))
    for uid in np.setdiff1d(data.user_ids, marked["uid"]):
        u = data.user_positions([uid])[0]
        assert all((uid, data.item_ids[i]) in in_list or data.seen[u, i]
                   for i in ranker.promoted_items if evidence[u, data.sub_of_item[i]])
    # before rank 3 the list is the plain one; from it, the plain list moved down one place; explore keeps rank 10
    for uid, rows in with_promoted[with_promoted["uid"].isin(marked["uid"])].groupby("uid"):
        before = plain[plain["uid"] == uid]
        organic = rows[~rows["source"].isin(["promoted", "explore"])]["listing_id"].tolist()
        expect = before[before["source"] != "explore"]["listing_id"].tolist()
        assert organic == [listing for listing in expect if listing != rows.iloc[PROMOTED_AT - 1]["listing_id"]][:8]
        assert rows["source"].iloc[-1] == "explore" and len(rows) == 10


def test_a_short_list_takes_its_promoted_listing_with_a_score_and_two_slots_never_show_one_seller_twice():
    """A list of one listing (the rest padding) and two promoted listings of one seller: the best promoted
    listing lands right after the one there is, with the list's lowest score (never the padding's -inf), and the
    second slot stays empty rather than show that seller twice."""
    from python_jobs import models as registry
    from python_jobs.models.data import build
    from python_jobs.models.lists import make_ranker, promote

    listings = pd.DataFrame({"listing_id": [1, 2, 3, 4], "category": "music", "sub_category": "vinyl",
                             "product": ["a", "b", "c", "d"], "listing_amount": 10.0,
                             "is_open": [True, True, True, False], "seller_uid": [100, 200, 200, 300],
                             "promoted_until": [np.nan, 1e12, 1e12, np.nan]})
    bids = pd.DataFrame({"uid": [1, 2], "listing_id": [4, 4], "strength": 1.0, "last_bid_at": 0.0})
    data = build(bids, pd.DataFrame({"uid": [1, 2]}), listings, None, 0.0, 14.0)
    components = [m.fit(data) for m in registry.build(("taste",), registry.TrainParams())]
    ranker = make_ranker(data, components, {s: {"taste": 1.0} for s in ("new", "light", "heavy")}, heavy_from=3,
                         n=5, candidates=10, promoted_slots=2)
    one = data.item_positions([1])[0]
    chosen = np.array([[one, -1, -1, -1, -1]])
    scores = np.array([[0.7, -np.inf, -np.inf, -np.inf, -np.inf]])
    chosen, scores, sources = promote(ranker, data.user_positions([1]), chosen, scores, "taste")
    assert data.item_ids[chosen[0, :2]].tolist()[0] == 1 and data.item_ids[chosen[0, 1]] in (2, 3)
    assert (chosen[0, 2:] == -1).all() and list(sources[0, :2]) == ["taste", "promoted"]
    assert scores[0, 1] == 0.7


def test_serve_applies_the_rules_file_at_every_request_and_reloads_it(tmp_path, settings):
    """A seller suspended in the file is out of the next answer without a run; the user's own listing and the cap
    per seller hold for the published items and for those today's events bring in; a broken file keeps the last."""
    import json
    import os
    import sys
    from datetime import datetime, timezone
    from pathlib import Path

    from fastapi.testclient import TestClient

    from python_jobs.events.collector import Collector
    from python_jobs.events.spool import Spool
    from python_jobs.models.rules import WatchedRules
    from python_jobs.serving.app import build_app
    from python_jobs.serving.fresh import FreshEvents
    from python_jobs.serving.loader import RunHolder, ServedRun

    sys.path.insert(0, str(Path(__file__).parent / "helpers"))
    from api_keys import keyed

    ends = "2099-01-01T00:00:00Z"
    # listing -> (seller, price): 1 is user 5's own, 2 a seller to be suspended, 3-5 one seller, 7 too dear
    sold = {1: (5, 10.0), 2: (77, 10.0), 3: (88, 10.0), 4: (88, 10.0), 5: (88, 10.0), 6: (99, 10.0), 7: (66, 9000.0),
            8: (5, 10.0), 9: (88, 10.0)}
    listings = {i: {"product": f"p{i}", "category": "music", "sub_category": "vinyl", "listing_amount": price,
                    "ends_at": ends, "seller_uid": seller} for i, (seller, price) in sold.items()}
    items = [{"rank": r, "listing_id": i, **{k: v for k, v in listings[i].items() if k != "seller_uid"},
              "score": 1.0 / r, "source": "als"} for r, i in enumerate(range(1, 8), start=1)]
    line = json.dumps({"uid": 5, "user_name": "five", "source": "als", "recommendations": items}).encode()
    similar = {6: json.dumps({"listing_id": 6, "similar": [{"rank": 1, "similar_listing_id": 8, "score": 0.9},
                                                         {"rank": 2, "similar_listing_id": 9, "score": 0.8}]}).encode()}
    holder = RunHolder(settings)
    holder.current = ServedRun("20300101T000010Z-rules0", "2030-01-01T00:00:10Z", {}, {}, {5: line}, {"five": 5},
                               similar, listings=listings)
    path = tmp_path / "list_rules.csv"
    path.write_text("rule,value\nmax_per_seller,2\nmax_listing_amount,5000\nsuspended_seller,77\n")
    fresh = FreshEvents()
    collector = Collector(Spool(tmp_path / "spool", 10**6, 900), sink=None, on_event=fresh.add)
    store, header = keyed(tmp_path)
    client = TestClient(build_app(holder, collector, fresh, keys=store, rules=WatchedRules(path)), headers=header)

    def shown() -> list[int]:
        body = client.get("/v1/users/5/recommendations?n=10").json()
        assert all("seller_uid" not in item for item in body["recommendations"])
        return [item["listing_id"] for item in body["recommendations"]]

    assert shown() == [3, 4, 6]  # not its own (1), not suspended (2), seller 88 twice only (5), not too dear (7)
    path.write_text("rule,value\nmax_per_seller,2\nmax_listing_amount,5000\n")
    os.utime(path, ns=(10**18, 10**18))  # a changed file, even within the file system's time resolution
    assert shown() == [2, 3, 4, 6]  # the suspension lifted, at the next request
    path.write_text("rule,value\nmax_per_seller,two\n")
    os.utime(path, ns=(2 * 10**18, 2 * 10**18))
    assert shown() == [2, 3, 4, 6]  # a file that does not parse: the last good rules stay
    path.write_text("rule,value\nmax_per_seller,1\n")
    os.utime(path, ns=(3 * 10**18, 3 * 10**18))
    event = {"event_id": "rules-1", "type": "like", "uid": 5, "listing_id": 6,
             "at": datetime.now(timezone.utc).isoformat()}
    assert client.post("/v1/events", json={"events": [event]}).json()["accepted"] == 1
    # 6's neighbours: 8 is user 5's own, 9 is seller 88's, who now has one slot: 9 leads (fresh) and 3, 4 go
    assert shown() == [9, 2, 6, 7]
    collector.spool.close()
