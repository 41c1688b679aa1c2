"""Each user's lists, a block of users at a time: the one unit both ranking engines call.

A `Ranker` is what ranking reads and never changes: the training set, the
blend of the fitted models and the day's open listings, with what is built once
per listing (the co-bid neighbour lists) already built. `block_lists` ranks any
block of user positions with it: in this process every user is one block
(`train.build_lists`); on Spark each task ranks its block with the same call
(`rank_spark`), so the two engines cannot drift apart. A user's lists depend on
that user alone, never on who else is in the block.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from python_jobs.models.base import SCORE_CELLS, pair_scores
from python_jobs.models.data import TrainingSet
from python_jobs.models.hybrid import Hybrid
from python_jobs.models.rules import ListRules, apply_to_ranked, eligible

EXPLORE_SHARE, EXPLORE_POOL = 0.2, 200  # the least-seen fifth of the open listings, at most 200, to explore
EXPLORE_FROM = ("two_tower", "content", "taste")  # scorers that need no bidders on the listing
EXPLORE_USERS_AT_ONCE = 5_000
PROMOTE_FROM = ("taste", "content", "two_tower")  # what ranks the promoted listings that fit a user
PROMOTED_AT = 3  # the rank the first promoted slot takes; the listings from there on move down
SERVED_COLUMNS = ["uid", "rank", "listing_id", "score", "source", "list_source"]
OWN_COLUMNS = ["uid", "rank", "listing_id", "score", "source", "model"]


@dataclass
class Ranker:
    """The fitted blend over a training set, ranking among `open_items` (item positions), `n` per list, under the
    marketplace's `rules` (`seller_of_item`: each item position's seller uid, -1 unknown)."""
    data: TrainingSet
    hybrid: Hybrid
    open_items: np.ndarray
    n: int
    rules: ListRules = ListRules()
    seller_of_item: np.ndarray | None = None
    explore_slots: int = 0
    explore_items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    promoted_slots: int = 0
    promoted_items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def unseen_listings(data: TrainingSet, shown: np.ndarray) -> np.ndarray:
    """The least-seen EXPLORE_SHARE (at most EXPLORE_POOL) of the item positions among `shown` (bool per item):
    the fewest have seen them yet, by the times
    the app showed them (the items' `impressions`, when the events have any), then by the users who acted on
    them, the newest first among equals."""
    impressions = (data.items["impressions"].fillna(0).to_numpy(np.float64) if "impressions" in data.items
                   else np.zeros(data.n_items))
    listed = (data.items["listed_at"].to_numpy(np.float64) if "listed_at" in data.items else np.zeros(data.n_items))
    candidates = np.flatnonzero(shown)
    order = np.lexsort((candidates, -listed[candidates], data.bidder_counts[candidates], impressions[candidates]))
    return candidates[order][:min(EXPLORE_POOL, int(np.ceil(EXPLORE_SHARE * len(candidates))))]


def promoted_listings(data: TrainingSet, shown: np.ndarray) -> np.ndarray:
    """The item positions among `shown` that a promotion running at the data's as-of promotes (`promoted_until`,
    from the listings mart)."""
    if "promoted_until" not in data.items:
        return np.zeros(0, np.int64)
    until = data.items["promoted_until"].to_numpy(np.float64)
    return np.flatnonzero(shown & (until > data.as_of))


def make_ranker(data: TrainingSet, components: list, weights: dict, heavy_from: int, n: int,
                candidates: int, rules: ListRules = ListRules(), explore_slots: int = 0,
                promoted_slots: int = 0) -> Ranker:
    """A Ranker over the open listings of `data` that the rules let anyone see, its per-listing state built here,
    once; `explore_slots` of each served list for listings few have seen, `promoted_slots` for promoted ones."""
    shown = data.items["is_open"].fillna(False).to_numpy(bool) & eligible(data.items, rules)
    open_items = np.flatnonzero(shown)
    hybrid = Hybrid(components, weights, heavy_from=heavy_from, candidates=candidates)
    hybrid.neighbours(data, open_items)
    sellers = (data.items["seller_uid"].fillna(-1).to_numpy(np.int64) if "seller_uid" in data.items
               else np.full(data.n_items, -1, np.int64))
    return Ranker(data, hybrid, open_items, n, rules, sellers, min(explore_slots, n), unseen_listings(data, shown),
                  max(0, min(promoted_slots, n - PROMOTED_AT + 1)), promoted_listings(data, shown))


def _rows(data: TrainingSet, users: np.ndarray, chosen: np.ndarray, scores: np.ndarray, sources) -> pd.DataFrame:
    n = chosen.shape[1]
    frame = pd.DataFrame({
        "uid": np.repeat(data.user_ids[users], n), "rank": np.tile(np.arange(1, n + 1), len(users)),
        "item": chosen.ravel(), "score": scores.ravel().astype(np.float64),
        "source": np.asarray(sources).ravel() if np.ndim(sources) else sources})
    frame = frame[frame["item"] >= 0]
    frame["listing_id"] = data.item_ids[frame.pop("item").to_numpy()]
    return frame[["uid", "rank", "listing_id", "score", "source"]]


def _best_in_pool(ranker: Ranker, scorer, users: np.ndarray, chosen: np.ndarray, pool: np.ndarray,
                  slots: int, allowed=None) -> np.ndarray:
    """[U, slots] item positions: each user's best of `pool` by `scorer` (where `allowed(users)` [U, pool] says so,
    when given), never a listing already in the user's list or bid on, the user's own, or one of a seller the list
    already shows; -1 where none is left. Users in blocks of at most SCORE_CELLS cells of pool x list."""
    sellers = ranker.seller_of_item[pool]
    picked = []
    step = max(1, min(EXPLORE_USERS_AT_ONCE, SCORE_CELLS // max(1, len(pool) * chosen.shape[1])))
    for start in range(0, len(users), step):
        part, ranked = users[start:start + step], chosen[start:start + step]
        fit = pair_scores(scorer, part, np.broadcast_to(pool, (len(part), len(pool))), ranker.open_items)
        fit = fit.astype(np.float64)
        in_list = (pool[None, :, None] == ranked[:, None, :]).any(axis=2)
        if ranker.data.seen is not None:
            in_list |= ranker.data.seen[part][:, pool].toarray() > 0
        shown_sellers = np.where(ranked >= 0, ranker.seller_of_item[np.maximum(ranked, 0)], -2)
        known = sellers >= 0
        same_seller = known[None, :] & (sellers[None, :, None] == shown_sellers[:, None, :]).any(axis=2)
        own = sellers[None, :] == ranker.data.user_ids[part][:, None]
        fit[in_list | same_seller | own | ~np.isfinite(fit)] = -np.inf
        if allowed is not None:
            fit[~allowed(part)] = -np.inf
        best = np.argsort(-fit, axis=1, kind="stable")[:, :slots]
        picked.append(np.where(np.isfinite(np.take_along_axis(fit, best, axis=1)), pool[best], -1))
    return np.concatenate(picked)


def _scorer(ranker: Ranker, names: tuple[str, ...]):
    return next((m for name in names for m in ranker.hybrid.components if m.name == name), None)


def _as_array(sources, shape) -> np.ndarray:
    return (np.array(sources, dtype=object) if np.ndim(sources) else np.full(shape, sources, dtype=object)).copy()


def in_their_sub_categories(data: TrainingSet, pool: np.ndarray):
    """allowed(users) -> [U, pool]: whether each listing of `pool` is of a sub-category the user interacted in or
    chose in the questionnaire."""
    subs = data.sub_of_item[pool]
    # only the block's users: promote runs once per block of users (a Spark task each), not over everyone
    return lambda users: ((data.binary[users] @ data.to_sub) + data.interests[users])[:, subs].toarray() > 0


def promote(ranker: Ranker, users: np.ndarray, chosen: np.ndarray, scores: np.ndarray, sources):
    """The served lists [U, n] with up to `promoted_slots` promoted listings placed from rank PROMOTED_AT on: the
    user's best promoted listings (by the first of PROMOTE_FROM the run fitted) among those that fit their taste,
    a listing of a sub-category they interacted in or chose, marked `promoted`; the listings from there on move
    down and the last ones leave the list. Each rank keeps its score. A user whom no promoted listing fits keeps
    the list."""
    slots, pool, scorer = ranker.promoted_slots, ranker.promoted_items, _scorer(ranker, PROMOTE_FROM)
    if not slots or not len(pool) or scorer is None or not len(users):
        return chosen, scores, sources
    picked = _best_in_pool(ranker, scorer, users, chosen, pool, slots, in_their_sub_categories(ranker.data, pool))
    sellers = np.where(picked >= 0, ranker.seller_of_item[np.maximum(picked, 0)], -1)
    for slot in range(1, slots):  # one listing of a seller among the picks, as in the rest of the list
        repeated = (sellers[:, slot:slot + 1] >= 0) & (sellers[:, slot:slot + 1] == sellers[:, :slot]).any(axis=1,
                                                                                                       keepdims=True)
        picked[:, slot][repeated[:, 0]] = -1
    n, sources = chosen.shape[1], _as_array(sources, chosen.shape)
    valid = picked >= 0
    # each listing's place after the insertion: ranks before the slots stay, the rest move down by the picks
    at = np.minimum(PROMOTED_AT - 1, (chosen >= 0).sum(axis=1))[:, None]
    column = np.arange(n)[None, :]
    keys = np.concatenate([column + np.where(column >= at, valid.sum(axis=1, keepdims=True), 0),
                           np.where(valid, at + np.cumsum(valid, axis=1) - 1, 2 * n + 1)], axis=1)
    order = np.argsort(keys, axis=1, kind="stable")[:, :n]
    chosen = np.take_along_axis(np.concatenate([chosen, picked], axis=1), order, axis=1)
    marks = np.concatenate([sources, np.full(picked.shape, "promoted", dtype=object)], axis=1)
    # a short list's padding had no score: a listing moved onto it takes the lowest score the list has
    scores = np.asarray(scores, np.float64).copy()
    lowest = np.min(np.where(np.isfinite(scores), scores, np.inf), axis=1, keepdims=True)
    unscored = (chosen >= 0) & ~np.isfinite(scores)
    scores[unscored] = np.broadcast_to(np.where(np.isfinite(lowest), lowest, 0.0), scores.shape)[unscored]
    return chosen, scores, np.take_along_axis(marks, order, axis=1)


def explore(ranker: Ranker, users: np.ndarray, chosen: np.ndarray, scores: np.ndarray, sources):
    """The served lists [U, n] with their last `explore_slots` given to the user's best listings among those few
    have seen (by the first of EXPLORE_FROM the run fitted, which scores a listing from its features or the
    user's taste, not from its bidders), marked `explore`, each taking the score of the slot it fills. A listing
    already in the list, or the user's own, is not explored, nor is a promoted slot given up; a user with nothing
    to explore keeps the list."""
    slots, pool, explorer = ranker.explore_slots, ranker.explore_items, _scorer(ranker, EXPLORE_FROM)
    if not slots or not len(pool) or explorer is None or not len(users):
        return chosen, scores, sources
    picked = _best_in_pool(ranker, explorer, users, chosen, pool, slots)
    sources = _as_array(sources, chosen.shape)
    chosen = chosen.copy()
    n = chosen.shape[1]
    for slot in range(slots):
        column = n - slots + slot
        take = (picked[:, slot] >= 0) & (chosen[:, column] >= 0) & (sources[:, column] != "promoted")
        chosen[take, column] = picked[take, slot]
        sources[take, column] = "explore"
    return chosen, scores, sources


def block_lists(ranker: Ranker, users: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(served hybrid rows with each user's `list_source`, each model's own rows) for the user positions
    `users`: each user's candidates among the open listings, ranked by the blend and by each model."""
    data, users = ranker.data, np.asarray(users, np.int64)
    fetch = ranker.rules.fetch(ranker.n)
    chosen, scores, sources, by_model = ranker.hybrid.ranked_with_own(data, users, ranker.open_items, fetch)

    def ruled(chosen, scores, sources, who):  # the user's own listings and the cap per seller, then n
        return apply_to_ranked(chosen, scores, sources, data.user_ids[who], ranker.seller_of_item, ranker.rules,
                               ranker.n)

    promoted = promote(ranker, users, *ruled(chosen, scores, sources, users))
    served = _rows(data, users, *explore(ranker, users, *promoted))
    # the model that served the list, the promoted and exploration slots aside
    ranked = served[~served["source"].isin(["explore", "promoted"])]
    kinds = ranked.groupby("uid")["source"].nunique()
    single = ranked.groupby("uid")["source"].first()
    served["list_source"] = served["uid"].map(single.where(kinds == 1, "hybrid")).fillna("hybrid")
    own = []
    for model in ranker.hybrid.components:
        covered = model.covers(users)
        chosen, scores = by_model[model.name]
        chosen, scores, _ = ruled(chosen[covered], scores[covered], model.name, users[covered])
        own.append(_rows(data, users[covered], chosen, scores, model.name).assign(model=model.name))
    own = pd.concat(own, ignore_index=True) if own else pd.DataFrame(columns=OWN_COLUMNS)
    return served[SERVED_COLUMNS], own[OWN_COLUMNS]
