"""The contract every model keeps, and the candidate selection they share.

After `implicit` and LensKit: a model is `fit` on a `TrainingSet`, then
`score`s a block of (user, candidate listing) pairs. `top_n` is the one
candidate selection every model goes through: chunks of users, listings the
user already bid on removed, the best n by score with ties broken by listing
id. Evaluation, tuning, the blend, training and publish loop over models and
never need to know which one they hold.
"""

from __future__ import annotations

import os
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

    # optional: score_pairs(users [U], cands [U, C] item positions, items: the day's listings) -> float32 [U, C],
    # each user's own candidates only; `pair_scores` falls back to `score` over the block's candidates


def bidders(data: TrainingSet, users: np.ndarray) -> np.ndarray:
    """The `covers` of models that learn only from interactions."""
    return data.bid_counts()[users] > 0


def everyone(users: np.ndarray) -> np.ndarray:
    return np.ones(len(users), dtype=bool)


def seen_cells(data: TrainingSet, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the cells of a [len(users), len(items)] block where the user already bid on the
    listing."""
    column = np.full(data.n_items, -1, np.int64)
    column[items] = np.arange(len(items))
    history = data.seen[users]
    cols = column[history.indices]
    rows = np.repeat(np.arange(len(users)), np.diff(history.indptr))
    keep = cols >= 0
    return rows[keep], cols[keep]


def unseen_scores(model: Model, data: TrainingSet, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """`model`'s float32 scores of the block, -inf where the user already interacted with the listing."""
    block = np.asarray(model.score(users, items), np.float32)
    if not block.flags.writeable or not block.flags.owndata:
        block = block.copy()
    block[seen_cells(data, users, items)] = -np.inf
    return block


def pair_scores(model: Model, users: np.ndarray, cands: np.ndarray, items: np.ndarray) -> np.ndarray:
    """float32 [U, C]: `model`'s score of each user's own candidates (item positions; -1 = none, scored 0).
    `items` are the day's listings, which a model that normalises over the candidates normalises over. Cost
    follows users x candidates for a model with `score_pairs`; otherwise `score` over the union of the block's
    candidates."""
    users = np.asarray(users, np.int64)
    safe = np.maximum(np.asarray(cands, np.int64), 0)
    if hasattr(model, "score_pairs"):
        out = np.asarray(model.score_pairs(users, safe, np.asarray(items, np.int64)), np.float32)
    else:
        union, inverse = np.unique(safe, return_inverse=True)
        block = np.asarray(model.score(users, union), np.float32)
        out = np.take_along_axis(block, inverse.reshape(safe.shape), axis=1)
    return np.where(cands >= 0, out, 0.0).astype(np.float32)


def for_candidates(model, fitted, items: np.ndarray, make):
    """`make()` once per fitted state and candidate set: models score many blocks of users against the same
    listings, and what they gather per listing (columns of a weight matrix, vectors) is the same each time."""
    key = np.asarray(items).tobytes()
    cached = model.__dict__.get("_for_candidates")
    if cached is None or cached[0] is not fitted or cached[1] != key:
        cached = (fitted, key, make())
        model.__dict__["_for_candidates"] = cached
    return cached[2]


def top_columns(scores: np.ndarray, k: int) -> np.ndarray:
    """Per row, the columns of the min(k, width) largest scores, in no particular order."""
    keep = min(k, scores.shape[1])
    if keep == 0:
        return np.zeros((len(scores), 0), np.int64)
    # selecting the smallest of the negated scores: 5x faster than the largest when most scores tie at 0
    return np.argpartition(-scores, keep - 1, axis=1)[:, :keep]


def in_blocks(count: int, step: int, work) -> None:
    """`work(start, stop)` for consecutive blocks of `count` rows, on every core: the blocks write disjoint
    rows, and NumPy's and SciPy's kernels let go of the interpreter while they run."""
    from concurrent.futures import ThreadPoolExecutor

    starts = range(0, count, max(1, step))
    workers = min(len(starts), os.cpu_count() or 1)
    if workers <= 1:
        for start in starts:
            work(start, min(count, start + step))
        return
    with ThreadPoolExecutor(workers) as pool:
        for done in [pool.submit(work, start, min(count, start + step)) for start in starts]:
            done.result()


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

    def work(start: int, stop: int) -> None:
        part = users[start:stop]
        if exclude_seen:
            block = unseen_scores(model, data, part, items)
        else:
            block = np.asarray(model.score(part, items), np.float32)
        chosen[start:stop], scores[start:stop] = best_n(block, items, n)

    in_blocks(len(users), SCORE_CELLS // max(1, len(items)), work)
    return chosen, scores
