"""Ranking metrics on lists held in NumPy, after Microsoft Recommenders' definitions.

lists: [U, k] item positions, best first, -1 where a list ran short;
relevant: a users x items sparse matrix, row u = what list u's user went on to
interact with (every user of `lists` counts, with zeros when nothing hit).

- precision@k: hits in the top k / k
- recall@k: hits in the top k / relevant items
- nDCG@k: sum over hits of 1 / log2(rank + 1), over the ideal for min(relevant, k) hits
- MAP@k: sum over hits of precision at that rank / min(relevant, k)
- coverage: distinct items recommended in any top k / catalogue size
- novelty: mean self-information -log2(share of training users who interacted with the item) of what is listed
- diversity: distinct sub-categories in a list / its length (intra-list diversity), averaged over lists; None
  (not available) when the catalogue holds one sub-category only (no categories known), where it would be
  1 / length whatever the list
- long_tail: share of listed items outside the head (the most-interacted items that together hold half of all
  training interactions)
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from python_jobs.models.data import values_at

METRICS = ("precision", "recall", "ndcg", "map", "coverage", "novelty", "diversity", "long_tail")


def hits_of(lists: np.ndarray, relevant: sparse.csr_matrix) -> np.ndarray:
    """bool [U, k]: listed item u, r is relevant to user u."""
    rows = np.repeat(np.arange(len(lists)), lists.shape[1])
    cols = lists.ravel()
    found = np.zeros(len(cols), dtype=bool)
    ok = cols >= 0
    found[ok] = values_at(relevant, rows[ok], cols[ok]) > 0
    return found.reshape(lists.shape)


def ndcg_per_user(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    k = hits.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.clip(np.minimum(n_relevant, k) - 1, 0, k - 1)]
    dcg = hits @ discounts
    return np.where(n_relevant > 0, dcg / ideal, 0.0)


class ItemStats:
    """What novelty, diversity and the long tail need to know about the training data's items."""

    def __init__(self, train: sparse.csr_matrix, sub_of_item: np.ndarray):
        bidders = np.diff(train.tocsc().indptr).astype(np.float64)
        self.self_information = -np.log2((bidders + 1.0) / (train.shape[0] + 1.0))
        order = np.argsort(-bidders, kind="stable")
        ranked = bidders[order]
        within_head = (np.cumsum(ranked) - ranked < 0.5 * ranked.sum()) & (ranked > 0)
        self.in_head = np.zeros(len(bidders), dtype=bool)
        self.in_head[order[within_head]] = True
        self.sub_of_item = sub_of_item
        self.has_categories = len(np.unique(sub_of_item)) > 1


def ranking_metrics_at(lists: np.ndarray, relevant: sparse.csr_matrix, cutoffs, catalog_size: int,
                       stats: ItemStats | None = None) -> dict[int, dict[str, float | int | None]]:
    cutoffs = sorted(set(cutoffs))
    relevant = relevant.tocsr()
    n_relevant = np.diff(relevant.indptr)
    hits = hits_of(lists[:, :cutoffs[-1]], relevant)
    result = {}
    for k in cutoffs:
        h, top = hits[:, :k], lists[:, :k]
        ranks = np.arange(1, k + 1)
        precision_at = np.cumsum(h, axis=1) / ranks
        ideal_hits = np.minimum(n_relevant, k)
        ap = np.where(ideal_hits > 0, (precision_at * h).sum(axis=1) / np.maximum(ideal_hits, 1), 0.0)
        listed = top[top >= 0]
        at = {
            "precision": float((h.sum(axis=1) / k).mean()) if len(h) else 0.0,
            "recall": float(np.where(n_relevant > 0, h.sum(axis=1) / np.maximum(n_relevant, 1), 0.0).mean())
            if len(h) else 0.0,
            "ndcg": float(ndcg_per_user(h, n_relevant).mean()) if len(h) else 0.0,
            "map": float(ap.mean()) if len(h) else 0.0,
            "coverage": len(np.unique(listed)) / catalog_size if catalog_size else 0.0,
            "users": int(len(lists)),
        }
        if stats is not None:
            at["novelty"] = float(stats.self_information[listed].mean()) if len(listed) else 0.0
            at["long_tail"] = float((~stats.in_head[listed]).mean()) if len(listed) else 0.0
            at["diversity"] = _diversity(top, stats.sub_of_item) if stats.has_categories else None
        result[k] = at
    return result


def _diversity(top: np.ndarray, sub_of_item: np.ndarray) -> float:
    """Distinct sub-categories per list over its length, averaged over lists."""
    k = top.shape[1]
    subs = np.where(top >= 0, sub_of_item[np.maximum(top, 0)], -1)
    subs.sort(axis=1)
    distinct = ((subs[:, 1:] != subs[:, :-1]) & (subs[:, 1:] >= 0)).sum(axis=1) + (subs[:, 0] >= 0) \
        if k > 1 else (subs[:, 0] >= 0).astype(int)
    lengths = (top >= 0).sum(axis=1)
    return float(np.where(lengths > 0, distinct / np.maximum(lengths, 1), 0.0).mean()) if len(top) else 0.0


def ranking_metrics(lists, relevant, k: int, catalog_size: int,
                    stats: ItemStats | None = None) -> dict[str, float | int | None]:
    return ranking_metrics_at(lists, relevant, [k], catalog_size, stats)[k]
