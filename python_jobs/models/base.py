"""The contract every model keeps, and the candidate selection they share.

After `implicit` and LensKit: a model is `fit` on a `TrainingSet`, then
`score`s a block of (user, candidate listing) pairs. `top_n` is the one
candidate selection every model goes through: chunks of users, listings the
user already bid on removed, the best n by score with ties broken by listing
id. Evaluation, tuning, the blend, training and publish loop over models and
never need to know which one they hold.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from python_jobs.models.data import TrainingSet

# score cells held at once while ranking (users x candidates), about 64 MB of float32
SCORE_CELLS = 16_000_000


class Model(Protocol):
    name: str

    def fit(self, data: TrainingSet) -> Model:
        """Learn from `data`; returns self."""

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """float32 [len(users), len(items)], higher is better, for user and item positions of the fitted data."""

    def covers(self, users: np.ndarray) -> np.ndarray:
        """Which of `users` this model has something personal to say about (a list is published only for them)."""


def bidders(data: TrainingSet, users: np.ndarray) -> np.ndarray:
    """The `covers` of models that learn only from interactions."""
    return data.bid_counts()[users] > 0


def everyone(users: np.ndarray) -> np.ndarray:
    return np.ones(len(users), dtype=bool)


def seen_mask(data: TrainingSet, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """bool [len(users), len(items)]: the user already interacted with the listing."""
    block = data.strength[users][:, items]
    return block.toarray() > 0


def top_columns(scores: np.ndarray, k: int) -> np.ndarray:
    """Per row, the columns of the min(k, width) largest scores, in no particular order."""
    keep = min(k, scores.shape[1])
    if keep == 0:
        return np.zeros((len(scores), 0), np.int64)
    return np.argpartition(-scores, keep - 1, axis=1)[:, :keep]


def best_n(scores: np.ndarray, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the n best columns: best score first, ties by listing position. -inf scores are never chosen
    (their slots come back as -1)."""
    part = top_columns(scores, n)
    keep = part.shape[1]
    if keep == 0:
        return np.full((len(scores), n), -1, np.int64), np.full((len(scores), n), -np.inf, np.float32)
    top = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((items[part], -top), axis=1)
    part, top = np.take_along_axis(part, order, 1), np.take_along_axis(top, order, 1)
    chosen = np.where(np.isfinite(top), items[part], -1)
    if keep < n:
        chosen = np.pad(chosen, ((0, 0), (0, n - keep)), constant_values=-1)
        top = np.pad(top, ((0, 0), (0, n - keep)), constant_values=-np.inf)
    return chosen, top


def top_n(model: Model, data: TrainingSet, users: np.ndarray, items: np.ndarray, n: int,
          exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(item positions [U, n], scores [U, n]) of `model` for `users` among candidate `items`; -1 pads a list
    that ran out of candidates. A model with its own candidate selection (`ranked`, e.g. the hybrid's pool)
    uses it; it always leaves out what the user interacted with."""
    if hasattr(model, "ranked"):
        return model.ranked(data, users, items, n)[:2]
    users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
    chosen = np.full((len(users), n), -1, np.int64)
    scores = np.full((len(users), n), -np.inf, np.float32)
    step = max(1, SCORE_CELLS // max(1, len(items)))
    for start in range(0, len(users), step):
        part = users[start:start + step]
        block = model.score(part, items).astype(np.float32, copy=False)
        if exclude_seen:
            block = np.where(seen_mask(data, part, items), -np.inf, block)
        chosen[start:start + step], scores[start:start + step] = best_n(block, items, n)
    return chosen, scores
