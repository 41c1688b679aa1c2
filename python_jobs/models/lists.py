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

from python_jobs.models.base import pair_scores
from python_jobs.models.data import TrainingSet
from python_jobs.models.hybrid import Hybrid
from python_jobs.models.rules import ListRules, apply_to_ranked, eligible

EXPLORE_SHARE, EXPLORE_POOL = 0.2, 200  # the least-seen fifth of the open listings, at most 200, to explore
EXPLORE_FROM = ("two_tower", "content", "taste")  # scorers that need no bidders on the listing
EXPLORE_USERS_AT_ONCE = 5_000
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


def make_ranker(data: TrainingSet, components: list, weights: dict, heavy_from: int, n: int,
                candidates: int, rules: ListRules = ListRules(), explore_slots: int = 0) -> Ranker:
    """A Ranker over the open listings of `data` that the rules let anyone see, its per-listing state built here,
    once; `explore_slots` of each served list for listings few have seen."""
    shown = data.items["is_open"].fillna(False).to_numpy(bool) & eligible(data.items, rules)
    open_items = np.flatnonzero(shown)
    hybrid = Hybrid(components, weights, heavy_from=heavy_from, candidates=candidates)
    hybrid.neighbours(data, open_items)
    sellers = (data.items["seller_uid"].fillna(-1).to_numpy(np.int64) if "seller_uid" in data.items
               else np.full(data.n_items, -1, np.int64))
    return Ranker(data, hybrid, open_items, n, rules, sellers, min(explore_slots, n), unseen_listings(data, shown))


def _rows(data: TrainingSet, users: np.ndarray, chosen: np.ndarray, scores: np.ndarray, sources) -> pd.DataFrame:
    n = chosen.shape[1]
    frame = pd.DataFrame({
        "uid": np.repeat(data.user_ids[users], n), "rank": np.tile(np.arange(1, n + 1), len(users)),
        "item": chosen.ravel(), "score": scores.ravel().astype(np.float64),
        "source": np.asarray(sources).ravel() if np.ndim(sources) else sources})
    frame = frame[frame["item"] >= 0]
    frame["listing_id"] = data.item_ids[frame.pop("item").to_numpy()]
    return frame[["uid", "rank", "listing_id", "score", "source"]]


def explore(ranker: Ranker, users: np.ndarray, chosen: np.ndarray, scores: np.ndarray, sources: np.ndarray):
    """The served lists [U, n] with their last `explore_slots` given to the user's best listings among those few
    have seen (by the first of EXPLORE_FROM the run fitted, which scores a listing from its features or the
    user's taste, not from its bidders), marked `explore`, each taking the score of the slot it fills. A listing
    already in the list, or the user's own, is not explored; a user with nothing to explore keeps the list."""
    slots, pool = ranker.explore_slots, ranker.explore_items
    explorer = next((m for name in EXPLORE_FROM for m in ranker.hybrid.components if m.name == name), None)
    if not slots or not len(pool) or explorer is None or not len(users):
        return chosen, scores, sources
    sellers = ranker.seller_of_item[pool]
    picked = []
    for start in range(0, len(users), EXPLORE_USERS_AT_ONCE):
        part, ranked = users[start:start + EXPLORE_USERS_AT_ONCE], chosen[start:start + EXPLORE_USERS_AT_ONCE]
        fit = pair_scores(explorer, part, np.broadcast_to(pool, (len(part), len(pool))), ranker.open_items)
        fit = fit.astype(np.float64)
        # never a listing already in the list or bid on, the user's own, or one of a seller the list already shows
        in_list = (pool[None, :, None] == ranked[:, None, :]).any(axis=2)
        if ranker.data.seen is not None:
            in_list |= ranker.data.seen[part][:, pool].toarray() > 0
        shown_sellers = np.where(ranked >= 0, ranker.seller_of_item[np.maximum(ranked, 0)], -2)
        known = sellers >= 0
        same_seller = known[None, :] & (sellers[None, :, None] == shown_sellers[:, None, :]).any(axis=2)
        own = sellers[None, :] == ranker.data.user_ids[part][:, None]
        fit[in_list | same_seller | own | ~np.isfinite(fit)] = -np.inf
        best = np.argsort(-fit, axis=1, kind="stable")[:, :slots]
        picked.append(np.where(np.isfinite(np.take_along_axis(fit, best, axis=1)), pool[best], -1))
    picked = np.concatenate(picked)
    sources = np.array(sources, dtype=object) if np.ndim(sources) else np.full(chosen.shape, sources, dtype=object)
    chosen, sources = chosen.copy(), sources.copy()
    n = chosen.shape[1]
    for slot in range(slots):
        column = n - slots + slot
        take = (picked[:, slot] >= 0) & (chosen[:, column] >= 0)
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

    served = _rows(data, users, *explore(ranker, users, *ruled(chosen, scores, sources, users)))
    ranked = served[served["source"] != "explore"]  # the model that served the list, the exploration slot aside
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
