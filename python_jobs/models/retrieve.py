"""Candidate retrieval: per user, a bounded set of listings (a few hundred) from cheap retrievers, so that ranking
costs users x candidates, never users x listings (YouTube's candidate generation, then ranking).

Each retriever makes sense on any marketplace's bids and gives each user up to its quota of listings among the
candidates of the day (the open listings), best first:

- `taste`: the best listings of the user's strongest sub-categories (their bids, then the questionnaire),
  best by projected bidders (bidders over the share of the auction gone by);
- `neighbours`: listings co-bid with what the user acted on most recently (sparse co-occurrence, the top
  `NEIGHBOURS` per listing; never a dense listings x listings matrix);
- `factors`: the nearest listings to the user's ALS factors, exact, in blocks of users (when ALS is fitted; else
  the two-tower's user and listing vectors when it is, whose listing side needs no bids);
- `rising`: the open listings gaining bidders fastest, the same for everyone;
- `popular`: the most bid-on open listings, so a user with nothing still has a list.

Merged in that order: a listing counts for the first retriever that names it; listings the user bid on are left
out; at most `size` per user.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from scipy import sparse

from python_jobs.models.data import TrainingSet
from python_jobs.models.metrics import hits_of
from python_jobs.models.neighbours import as_matrix, row_chunks, row_top, top_k_products

CANDIDATES = 300  # listings per user that ranking scores (ENCORE_CANDIDATES)
RETRIEVERS = ("taste", "neighbours", "factors", "rising", "popular")
# each retriever's share of the candidate set, in the order above
SHARES = (0.35, 0.3, 0.2, 0.1, 0.05)
NEIGHBOURS = 50      # co-bid neighbours kept per listing
RECENT = 10          # a user's most recent listings whose neighbours are retrieved
TOP_SUBS = 5         # a user's strongest sub-categories searched by `taste`


@dataclass(frozen=True)
class Candidates:
    """items: [U, size] item positions, best retrievers first, -1 padded; source: [U, size] index into
    RETRIEVERS of the retriever that named each (-1 for padding)."""
    items: np.ndarray
    source: np.ndarray

    def counts(self) -> dict[str, float]:
        """Mean candidates per user each retriever contributed."""
        users = max(len(self.items), 1)
        return {name: round(float((self.source == r).sum()) / users, 1) for r, name in enumerate(RETRIEVERS)}


def quotas(size: int) -> list[int]:
    return [max(1, int(round(size * share))) for share in SHARES]


def _ranked(values: np.ndarray, items: np.ndarray, q: int) -> np.ndarray:
    """The q best of `items` by `values` (per item position), best first, ties by position."""
    order = np.lexsort((items, -values[items]))
    return items[order[:q]]


def _global(data: TrainingSet, items: np.ndarray, users: np.ndarray, q: int, values: np.ndarray) -> np.ndarray:
    top = _ranked(values, items, q)
    return np.broadcast_to(np.pad(top, (0, q - len(top)), constant_values=-1), (len(users), q))


def by_taste(data: TrainingSet, users: np.ndarray, items: np.ndarray, q: int) -> np.ndarray:
    """Round-robin over the user's TOP_SUBS strongest sub-categories (bids first, the questionnaire to break
    ties and for users with none) of each sub-category's best candidates by projected bidders."""
    n_subs = len(data.subs)
    to_sub = data.to_sub
    strength = np.asarray((data.binary[users] @ to_sub).todense(), np.float32)
    strength += 0.5 * np.asarray(data.interests[users].todense(), np.float32)
    strength += 1e-6 * np.asarray(data.bidder_counts @ to_sub).ravel()  # the marketplace's demand last
    subs = np.argsort(-strength, axis=1, kind="stable")[:, :TOP_SUBS]
    per_sub = max(1, -(-q // TOP_SUBS))
    value = data.projected_bidders()
    best = np.full((n_subs + 1, per_sub), -1, np.int64)
    order = items[np.lexsort((items, -value[items], data.sub_of_item[items]))]
    sub_of = data.sub_of_item[order]
    starts = np.searchsorted(sub_of, np.arange(n_subs))
    rank = np.arange(len(order)) - starts[sub_of]
    keep = rank < per_sub
    best[sub_of[keep], rank[keep]] = order[keep]
    picked = best[subs]                      # [U, TOP_SUBS, per_sub]
    # rank by rank across the sub-categories
    return picked.transpose(0, 2, 1).reshape(len(users), subs.shape[1] * per_sub)[:, :q]


def neighbour_matrix(data: TrainingSet, items: np.ndarray, k: int = NEIGHBOURS) -> sparse.csr_matrix:
    """listings x listings: for each listing, its k strongest co-bid neighbours among `items` (co-bidders),
    accumulated a listing at a time (`top_k_products`), so it never holds more than a row of co-occurrences."""
    column = np.full(data.n_items, -1, np.int64)
    column[items] = np.arange(len(items))  # never a listing's own column
    cols, values = top_k_products(data.binary.T.tocsr(), data.binary[:, items].tocsr(), k, column)
    return as_matrix(np.where(cols >= 0, items[np.maximum(cols, 0)], -1), values, data.n_items)


def by_neighbours(data: TrainingSet, users: np.ndarray, neighbours: sparse.csr_matrix, q: int) -> np.ndarray:
    """The neighbours of each user's RECENT most recent listings, summed and weighted by how recent each is."""
    top, weights = row_top(data.recency[users], RECENT)
    rows = np.repeat(np.arange(len(users)), RECENT)
    found = top.ravel() >= 0
    latest = sparse.csr_matrix((weights.ravel()[found], (rows[found], top.ravel()[found])),
                               shape=(len(users), data.n_items))
    return top_k_products(latest, neighbours, q)[0]  # the product a user at a time, never all users' at once


def by_factors(user_factors: np.ndarray, item_factors: np.ndarray, users: np.ndarray, items: np.ndarray,
               q: int) -> np.ndarray:
    """The q candidates of largest dot product with each user's factors, best first, ties by position: implicit's
    blocked, multi-threaded exact top-k (2.3x NumPy's score blocks and partition for 20,000 users against 59,000
    listings), whose ties come out last column first, put in position order."""
    from implicit.cpu.topk import topk

    out = np.full((len(users), q), -1, np.int64)
    keep = min(q, len(items))  # implicit leaves slots past the candidates at 0, a real position
    if keep and len(users):
        ids, scores = topk(np.ascontiguousarray(item_factors[items], np.float32),
                           np.ascontiguousarray(user_factors[users], np.float32), keep, num_threads=0)
        found = items[ids]
        order = np.lexsort((found, -scores), axis=1)
        out[:, :keep] = np.take_along_axis(found, order, axis=1)
    return out


def retrieve(data: TrainingSet, users: np.ndarray, items: np.ndarray, size: int,
             factors: tuple[np.ndarray, np.ndarray] | None = None,
             neighbours: sparse.csr_matrix | None = None) -> Candidates:
    """Per user, at most `size` candidates among `items` the user has not bid on. factors: ALS's (or the
    two-tower's) (user, item) vectors when fitted on `data`; neighbours: `neighbour_matrix(data, items)` when
    already built."""
    users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
    q = quotas(size)
    if neighbours is None:
        neighbours = neighbour_matrix(data, items)
    recency = np.asarray(data.recency.sum(axis=0)).ravel()
    # the lists that are the same for everyone reach further, so that a user keeps their share of them once their
    # own bids are left out (by twice the share, or 20: the merge's width, and so its cost, stays bounded), and
    # the same for every user whoever else is retrieved with them
    reach = [q[3] + max(2 * q[3], 20), q[4] + max(2 * q[4], 20)]
    parts = [by_taste(data, users, items, q[0]), by_neighbours(data, users, neighbours, q[1]),
             by_factors(*factors, users, items, q[2]) if factors is not None
             else np.full((len(users), q[2]), -1, np.int64),
             _global(data, items, users, reach[0], recency / data.auction_elapsed()),
             _global(data, items, users, reach[1], data.projected_bidders())]
    found = np.concatenate(parts, axis=1)
    source = np.concatenate([np.full(p.shape, r) for r, p in enumerate(parts)], axis=1)
    return _merge(data, users, found, source, size)


def _merge(data: TrainingSet, users: np.ndarray, found: np.ndarray, source: np.ndarray, size: int) -> Candidates:
    """Drop padding, listings the user bid on and repeats (the first retriever keeps a listing); left-align."""
    seen = data.seen[users] if data.seen is not None and data.seen.nnz else sparse.csr_matrix((len(users), 1))
    size = min(size, found.shape[1])
    items, sources = np.full((len(users), size), -1, np.int64), np.full((len(users), size), -1, np.int64)
    if len(users) and size:
        _first_unseen(np.ascontiguousarray(found, np.int64), np.ascontiguousarray(source, np.int64),
                      seen.indptr.astype(np.int64), seen.indices.astype(np.int64), data.n_items,
                      row_chunks(len(users)), items, sources)
    return Candidates(items, sources)


@numba.njit(parallel=True, cache=True, nogil=True)
def _first_unseen(found, source, seen_ptr, seen_idx, n_items, chunks, out_items, out_source):
    """Per row, the first `out_items.shape[1]` entries of `found` in column order that are not padding, not among
    the row's seen columns and not a repeat of an earlier entry; a scratch mark per listing, no sorting."""
    n_rows, width = found.shape
    size = out_items.shape[1]
    per = (n_rows + chunks - 1) // chunks
    for chunk in numba.prange(chunks):
        mark = np.full(n_items, -1, np.int64)
        for row in range(chunk * per, min(n_rows, (chunk + 1) * per)):
            for p in range(seen_ptr[row], seen_ptr[row + 1]):
                mark[seen_idx[p]] = row
            kept = 0
            for c in range(width):
                item = found[row, c]
                if kept == size:
                    break
                if item < 0 or mark[item] == row:
                    continue
                mark[item] = row
                out_items[row, kept] = item
                out_source[row, kept] = source[row, c]
                kept += 1


def recall(candidates: Candidates, relevant: sparse.csr_matrix) -> dict:
    """The share of the relevant (user, listing) pairs among the candidates, overall and per retriever."""
    hits = hits_of(candidates.items, relevant)
    total = max(int(relevant.nnz), 1)
    return {"recall": round(float(hits.sum()) / total, 4),
            "recall_by_retriever": {name: round(float((hits & (candidates.source == r)).sum()) / total, 4)
                                    for r, name in enumerate(RETRIEVERS)}}
