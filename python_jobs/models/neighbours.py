"""Cosine similarity with only each row's k nearest kept, computed in blocks so it never holds n x n at once."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from python_jobs.models.base import SCORE_CELLS, top_columns


def normalise_rows(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    return (sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ matrix).astype(np.float32).tocsr()


def top_k_cosine(queries: sparse.csr_matrix, against: sparse.csr_matrix, k: int,
                 itself: np.ndarray | None = None) -> sparse.csr_matrix:
    """[len(queries), len(against)]: each query row's k most similar rows of `against` (both row-normalised),
    with only positive similarities kept and never query i's own row `itself[i]` of `against` when given."""
    n_q, n_a = queries.shape[0], against.shape[0]
    step = max(1, SCORE_CELLS // max(1, n_a))
    rows, cols, vals = [], [], []
    against_t = against.T.tocsr()
    for start in range(0, n_q, step):
        sims = (queries[start:start + step] @ against_t).toarray()
        if itself is not None:
            sims[np.arange(len(sims)), itself[start:start + step]] = 0.0
        best = top_columns(sims, k)
        top = np.take_along_axis(sims, best, axis=1)
        nz = top > 0
        rows.append(np.repeat(np.arange(start, start + len(sims)), best.shape[1])[nz.ravel()])
        cols.append(best[nz])
        vals.append(top[nz])
    if not rows:
        return sparse.csr_matrix((n_q, n_a), dtype=np.float32)
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(n_q, n_a), dtype=np.float32)
