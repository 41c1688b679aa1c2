"""The blend: a weighted sum of the models' scores, with weights per user segment chosen on validation.

Segments by the listings a user bid on in the training data: `new` (none),
`light` (fewer than `heavy_from`), `heavy`. The blend ranks each user's
candidates (`retrieve`: a few hundred per user from cheap retrievers, never
every listing); each model scores only those (user, candidate) pairs, and its
scores are scaled to [0, 1] per user over the candidates, so weights compare
models, not their units. Each listed item names the model that contributed
most to its score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np

from python_jobs.models.base import SCORE_CELLS, Model, for_candidates, in_blocks, pair_scores
from python_jobs.models.data import TrainingSet
from python_jobs.models.neighbours import row_chunks
from python_jobs.models.retrieve import CANDIDATES, Candidates, neighbour_matrix, retrieve

SEGMENTS = ("new", "light", "heavy")
WEIGHT_STEPS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)


def segments(data: TrainingSet, users: np.ndarray, heavy_from: int) -> np.ndarray:
    """0 new, 1 light, 2 heavy for each of `users`."""
    counts = data.bid_counts()[users]
    return np.where(counts == 0, 0, np.where(counts < heavy_from, 1, 2))


@dataclass
class Pool:
    """Per user: candidate item positions [U, P] (-1 = none), each model's scaled score [U, P, M]; with `own`,
    each model's own best n (item positions, raw scores) taken from its part of the pool."""
    items: np.ndarray
    features: np.ndarray
    segment: np.ndarray
    own: dict = field(default_factory=dict)


def _scale(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `block` (padding -inf): (low, span) mapping its finite scores onto [0, 1]."""
    finite = np.isfinite(block)
    low = np.min(block, axis=1, where=finite, initial=np.inf)
    high = np.max(block, axis=1, where=finite, initial=-np.inf)
    span = np.where(high > low, high - low, 1.0).astype(np.float32)
    return np.where(np.isfinite(low), low, 0.0).astype(np.float32), span


def build_pool(models: list[Model], data: TrainingSet, users: np.ndarray, candidates: np.ndarray,
               items: np.ndarray, heavy_from: int, own: int = 0) -> Pool:
    """Each model scores each user's `candidates` [U, C] (item positions, -1 = none; never what the user bid
    on) among the day's listings `items`, scaled per user over the candidates. `own` > 0 also keeps each
    model's best `own` of the candidates, ties by listing position."""
    users, cand = np.asarray(users, np.int64), np.asarray(candidates, np.int64)
    feats = np.zeros((*cand.shape, len(models)), np.float32)
    mine = {m.name: (np.full((len(users), own), -1, np.int64), np.full((len(users), own), -np.inf, np.float32))
            for m in models} if own else {}

    def work(start: int, stop: int) -> None:
        part, usable = cand[start:stop], cand[start:stop] >= 0
        for m, model in enumerate(models):
            block = np.where(usable, pair_scores(model, users[start:stop], part, items), -np.inf)
            if own:
                chosen, scores = _best_pooled(block, part, own)
                mine[model.name][0][start:stop], mine[model.name][1][start:stop] = chosen, scores
            low, span = _scale(block)
            feats[start:stop, :, m] = np.where(usable, (block - low[:, None]) / span[:, None], 0.0)

    in_blocks(len(users), SCORE_CELLS // max(1, cand.shape[1] * len(models)), work)
    return Pool(cand, feats, segments(data, users, heavy_from), mine)


def _best_pooled(block: np.ndarray, cands: np.ndarray, n: int):
    """(item positions [U, n], scores [U, n]) of the n best candidates of each row, best first, ties by
    listing position; -1 / -inf where fewer than n finite scores."""
    chosen, values = np.full((len(block), n), -1, np.int64), np.full((len(block), n), -np.inf, np.float32)
    if len(block) and n:
        _best_rows(np.ascontiguousarray(block, np.float32), np.ascontiguousarray(cands, np.int64),
                   row_chunks(len(block)), chosen, values)
    return chosen, values


@numba.njit(parallel=True, cache=True, nogil=True)
def _best_rows(block, cands, chunks, chosen, values):
    """Per row, the finite scores' n best (score down, then listing position up) kept in order by insertion:
    n is a list's length, a few dozen of a row's few hundred candidates, so no row is sorted whole."""
    n_rows, width = block.shape
    n = chosen.shape[1]
    per = (n_rows + chunks - 1) // chunks
    for chunk in numba.prange(chunks):
        for row in range(chunk * per, min(n_rows, (chunk + 1) * per)):
            size = 0
            for c in range(width):
                v, item = block[row, c], cands[row, c]
                if not np.isfinite(v):
                    continue
                if size == n and (v < values[row, n - 1] or (v == values[row, n - 1] and item > chosen[row, n - 1])):
                    continue
                if size < n:
                    size += 1
                at = size - 1
                while at > 0 and (values[row, at - 1] < v or (values[row, at - 1] == v and chosen[row, at - 1] > item)):
                    values[row, at], chosen[row, at] = values[row, at - 1], chosen[row, at - 1]
                    at -= 1
                values[row, at], chosen[row, at] = v, item


def rank_pool(pool: Pool, weights: np.ndarray, n: int, rows: np.ndarray | None = None):
    """(pool columns [U, n] best first, their blended scores [U, n], -inf where the pool ran out) of the blend
    with per-segment `weights` [3, M], for `rows` of the pool (all by default)."""
    rows = np.arange(len(pool.items)) if rows is None else rows
    blended = np.einsum("upm,um->up", pool.features[rows], weights[pool.segment[rows]])
    blended = np.where(pool.items[rows] >= 0, blended, -np.inf)
    order = np.argsort(-blended, axis=1, kind="stable")[:, :n]
    return order, np.take_along_axis(blended, order, axis=1)


@dataclass
class Hybrid:
    """Not fitted itself: it retrieves each user's candidates and ranks them by the blend of its fitted
    `components` (`base.top_n` calls `ranked`)."""
    components: list[Model]
    weights: dict[str, dict[str, float]] = field(default_factory=dict)  # segment -> model name -> weight
    heavy_from: int = 3
    candidates: int = CANDIDATES
    name: str = "hybrid"

    def weight_matrix(self) -> np.ndarray:
        names = [m.name for m in self.components]
        default = {name: 1.0 for name in names}
        return np.array([[self.weights.get(seg, default).get(name, 0.0) for name in names] for seg in SEGMENTS],
                        np.float32)

    def retrieve(self, data: TrainingSet, users: np.ndarray, items: np.ndarray) -> Candidates:
        """Each user's candidates among `items`; the `factors` retriever searches ALS's factors when ALS is a
        fitted component, else the two-tower's vectors when it is (which reach listings nobody has bid on yet),
        and the co-bid neighbour lists are built once per training set and listings."""
        als = next((m for m in self.components if m.name == "als" and hasattr(m, "user_factors_")), None)
        tower = next((m for m in self.components if hasattr(m, "item_vectors_")), None)
        factors = (als.user_factors_, als.item_factors_) if als is not None else (
            (tower.user_vectors_, tower.item_vectors_) if tower is not None else None)
        return retrieve(data, users, items, max(1, self.candidates), neighbours=self.neighbours(data, items),
                        factors=factors)

    def neighbours(self, data: TrainingSet, items: np.ndarray):
        """The co-bid neighbour lists among `items`, built once per training set and listings (and kept with
        the blend, so a copy of it shipped to Spark's workers carries them)."""
        return for_candidates(self, data, items, lambda: neighbour_matrix(data, items))

    def pool(self, data: TrainingSet, users: np.ndarray, items: np.ndarray, own: int = 0) -> Pool:
        found = self.retrieve(data, np.asarray(users, np.int64), np.asarray(items, np.int64))
        return build_pool(self.components, data, users, found.items, items, self.heavy_from, own)

    def ranked(self, data: TrainingSet, users: np.ndarray, items: np.ndarray, n: int):
        """(item positions, scores, the name of the model that contributed most, per listed item) for `users`."""
        return self.blend(self.pool(data, users, items), n)

    def ranked_with_own(self, data: TrainingSet, users: np.ndarray, items: np.ndarray, n: int,
                        users_at_once: int = 20_000):
        """`ranked`, and each component's own n best {name: (item positions, scores)} of the same candidates,
        from one scoring pass; `users_at_once` at a time, so the pool (users x candidates x models floats) stays
        a few hundred MB whatever the number of users."""
        parts = []
        for start in range(0, max(1, len(users)), users_at_once):  # one empty part for no users
            pool = self.pool(data, users[start:start + users_at_once], items, own=n)
            parts.append((*self.blend(pool, n), pool.own))
        chosen, scores, sources = (np.concatenate([part[i] for part in parts]) for i in range(3))
        own = {m.name: tuple(np.concatenate([part[3][m.name][i] for part in parts]) for i in range(2))
               for m in self.components}
        return chosen, scores, sources, own

    def blend(self, pool: Pool, n: int):
        weights = self.weight_matrix()
        order, scores = rank_pool(pool, weights, n)
        chosen = np.where(np.isfinite(scores), np.take_along_axis(pool.items, order, axis=1), -1)
        contrib = np.take_along_axis(pool.features, order[:, :, None], axis=1) * weights[pool.segment][:, None, :]
        names = np.array([m.name for m in self.components])
        return chosen, scores, names[contrib.argmax(axis=2)]

    def covers(self, users: np.ndarray) -> np.ndarray:
        return np.ones(len(users), dtype=bool)


# a segment with fewer validation users than this is too noisy to choose weights on: it takes FALLBACK
MIN_SEGMENT_USERS = 100
FALLBACK = ("taste", "popularity")


def choose_weights(pool: Pool, relevant: np.ndarray, n_relevant: np.ndarray, names: list[str], n: int,
                   passes: int = 2, min_users: int = MIN_SEGMENT_USERS) -> tuple[dict[str, dict[str, float]], dict]:
    """Per segment, coordinate ascent over WEIGHT_STEPS from the best single model, by nDCG@n on `pool`.

    relevant: bool [U, P], the pool's candidates the user went on to bid on; n_relevant: per user, how many
    listings they bid on in all. A segment with fewer than `min_users` users takes the first of FALLBACK that
    runs (the cold-start model) alone. Returns the weights and each segment's validation nDCG (or why not)."""
    from python_jobs.models.metrics import ndcg_per_user

    chosen, scores = {}, {}
    for s, seg in enumerate(SEGMENTS):
        rows = np.flatnonzero(pool.segment == s)
        if len(rows) < min_users:
            pick = next((f for f in FALLBACK if f in names), names[0])
            chosen[seg] = {name: float(name == pick) for name in names}
            scores[seg] = f"{len(rows)} validation users, fewer than {min_users}: {pick} alone"
            continue

        def value(w):
            weights = np.zeros((3, len(names)), np.float32)
            weights[s] = w
            order, top = rank_pool(pool, weights, n, rows)
            hit = np.take_along_axis(relevant[rows], order, axis=1) & np.isfinite(top)
            return float(ndcg_per_user(hit, n_relevant[rows]).mean())

        singles = [value(np.eye(len(names), dtype=np.float32)[m]) for m in range(len(names))]
        w = np.eye(len(names), dtype=np.float32)[int(np.argmax(singles))]
        best = max(singles)
        for _ in range(passes):
            for m in range(len(names)):
                for step in WEIGHT_STEPS:
                    trial = w.copy()
                    trial[m] = step
                    if trial.sum() == 0:
                        continue
                    got = value(trial)
                    if got > best + 1e-9:
                        best, w = got, trial
        chosen[seg] = {name: float(x) for name, x in zip(names, w)}
        scores[seg] = round(best, 5)
    return chosen, scores
