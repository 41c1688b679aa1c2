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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from python_jobs.models.data import TrainingSet
from python_jobs.models.hybrid import Hybrid
from python_jobs.models.rules import ListRules, apply_to_ranked, eligible

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


def make_ranker(data: TrainingSet, components: list, weights: dict, heavy_from: int, n: int,
                candidates: int, rules: ListRules = ListRules()) -> Ranker:
    """A Ranker over the open listings of `data` that the rules let anyone see, its per-listing state built here,
    once."""
    shown = data.items["is_open"].fillna(False).to_numpy(bool) & eligible(data.items, rules)
    open_items = np.flatnonzero(shown)
    hybrid = Hybrid(components, weights, heavy_from=heavy_from, candidates=candidates)
    hybrid.neighbours(data, open_items)
    sellers = (data.items["seller_uid"].fillna(-1).to_numpy(np.int64) if "seller_uid" in data.items
               else np.full(data.n_items, -1, np.int64))
    return Ranker(data, hybrid, open_items, n, rules, sellers)


def _rows(data: TrainingSet, users: np.ndarray, chosen: np.ndarray, scores: np.ndarray, sources) -> pd.DataFrame:
    n = chosen.shape[1]
    frame = pd.DataFrame({
        "uid": np.repeat(data.user_ids[users], n), "rank": np.tile(np.arange(1, n + 1), len(users)),
        "item": chosen.ravel(), "score": scores.ravel().astype(np.float64),
        "source": np.asarray(sources).ravel() if np.ndim(sources) else sources})
    frame = frame[frame["item"] >= 0]
    frame["listing_id"] = data.item_ids[frame.pop("item").to_numpy()]
    return frame[["uid", "rank", "listing_id", "score", "source"]]


def block_lists(ranker: Ranker, users: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(served hybrid rows with each user's `list_source`, each model's own rows) for the user positions
    `users`: each user's candidates among the open listings, ranked by the blend and by each model."""
    data, users = ranker.data, np.asarray(users, np.int64)
    fetch = ranker.rules.fetch(ranker.n)
    chosen, scores, sources, by_model = ranker.hybrid.ranked_with_own(data, users, ranker.open_items, fetch)

    def ruled(chosen, scores, sources, who):  # the user's own listings and the cap per seller, then n
        return apply_to_ranked(chosen, scores, sources, data.user_ids[who], ranker.seller_of_item, ranker.rules,
                               ranker.n)

    served = _rows(data, users, *ruled(chosen, scores, sources, users))
    kinds = served.groupby("uid")["source"].nunique()
    single = served.groupby("uid")["source"].first()
    served["list_source"] = served["uid"].map(single.where(kinds == 1, "hybrid"))
    own = []
    for model in ranker.hybrid.components:
        covered = model.covers(users)
        chosen, scores = by_model[model.name]
        chosen, scores, _ = ruled(chosen[covered], scores[covered], model.name, users[covered])
        own.append(_rows(data, users[covered], chosen, scores, model.name).assign(model=model.name))
    own = pd.concat(own, ignore_index=True) if own else pd.DataFrame(columns=OWN_COLUMNS)
    return served[SERVED_COLUMNS], own[OWN_COLUMNS]
