"""Each row's k largest entries of a sparse product, computed row by row and never held whole, and the cosine
similarity built on it: item KNN's neighbour lists, the retriever's co-bid neighbours, user KNN's.

The product of items x users by users x items at a million users has 2 billion entries (3 billion
multiply-adds), of which a fit keeps 50 per row. Multiplying blocks with SciPy and sorting each block's entries
took 444 s of item KNN's fit, three quarters of it in the sorting; `top_k_products` accumulates one row at a
time into a dense scratch row and keeps its k best in a heap, compiled by Numba and parallel over rows."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numba
import numpy as np
from scipy import sparse

# the kernels are called from `base.in_blocks`' threads too: Numba's fallback layer (workqueue) aborts the process
# when two threads enter it at once, so a layer that is safe across threads (OpenMP or TBB) or an error at import
numba.config.THREADING_LAYER = "threadsafe"
# compiled kernels are cached next to this file; where it is read-only (a wheel installed by root, as on EMR) and
# no NUMBA_CACHE_DIR is set, in the temp folder, since Numba fails the import when it has nowhere to cache
if not numba.config.CACHE_DIR and not os.access(Path(__file__).parent, os.W_OK):
    numba.config.CACHE_DIR = str(Path(tempfile.gettempdir()) / f"encore-numba-{os.getuid()}")

CHUNKS_PER_THREAD = 8  # rows are split into this many chunks per thread, so one costly chunk does not hold the rest


def normalise_rows(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    return (sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ matrix).astype(np.float32).tocsr()


def top_k_products(left: sparse.csr_matrix, right: sparse.csr_matrix, k: int,
                   exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(columns [n, k], values [n, k]) of each row of `left @ right`'s k largest positive entries, best first, ties
    by column, -1 / 0 padded; never row i's column `exclude[i]` (-1: none)."""
    left, right = left.tocsr(), right.tocsr()
    n_rows = left.shape[0]
    exclude = np.full(n_rows, -1, np.int64) if exclude is None else np.asarray(exclude, np.int64)
    cols = np.full((n_rows, k), -1, np.int64)
    values = np.zeros((n_rows, k), np.float32)
    if n_rows and k:
        _rows_top_k(*_arrays(left), *_arrays(right), right.shape[1], exclude, row_chunks(n_rows), cols, values)
    return cols, values


def _arrays(matrix: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A CSR matrix as the kernels take it: (indptr, indices, float32 data)."""
    return matrix.indptr, matrix.indices, matrix.data.astype(np.float32)


def row_chunks(rows: int) -> int:
    return max(1, min(rows, CHUNKS_PER_THREAD * numba.get_num_threads()))


def top_k_cosine(queries: sparse.csr_matrix, against: sparse.csr_matrix, k: int,
                 itself: np.ndarray | None = None) -> sparse.csr_matrix:
    """[len(queries), len(against)]: each query row's k most similar rows of `against` (both row-normalised),
    with only positive similarities kept (ties by position) and never query i's own row `itself[i]` of
    `against` when given."""
    cols, values = top_k_products(queries, against.T.tocsr(), k, itself)
    return as_matrix(cols, values, against.shape[0])


def as_matrix(cols: np.ndarray, values: np.ndarray, width: int) -> sparse.csr_matrix:
    """The CSR matrix [len(cols), width] of per-row (columns, values), -1 columns left out."""
    found = cols >= 0
    indptr = np.concatenate([[0], np.cumsum(found.sum(axis=1))])
    matrix = sparse.csr_matrix((values[found], cols[found], indptr), shape=(len(cols), width), dtype=np.float32)
    matrix.sort_indices()  # canonical, as SciPy's own products are
    return matrix


def product_at(left: sparse.csr_matrix, right: sparse.csr_matrix, cands: np.ndarray) -> np.ndarray:
    """float32 [U, C]: `(left @ right)[u, cands[u, c]]` for each row u of `left` and its candidate columns (-1: 0),
    a row at a time, never the whole product (a user's history times item KNN's neighbour lists is thousands of
    entries, of which ranking reads 300)."""
    left, right = left.tocsr(), right.tocsr()
    cands = np.ascontiguousarray(cands, np.int64)
    out = np.zeros(cands.shape, np.float32)
    if out.size:
        _rows_at(*_arrays(left), *_arrays(right), right.shape[1], cands, row_chunks(len(cands)), out)
    return out


@numba.njit(parallel=True, cache=True, nogil=True)
def _rows_at(l_ptr, l_idx, l_val, r_ptr, r_idx, r_val, width, cands, chunks, out):
    n_rows, n_cands = cands.shape
    per = (n_rows + chunks - 1) // chunks
    for chunk in numba.prange(chunks):
        acc = np.zeros(width, np.float32)
        for row in range(chunk * per, min(n_rows, (chunk + 1) * per)):
            for p in range(l_ptr[row], l_ptr[row + 1]):
                u, a = l_idx[p], l_val[p]
                for q in range(r_ptr[u], r_ptr[u + 1]):
                    acc[r_idx[q]] += a * r_val[q]
            for c in range(n_cands):
                if cands[row, c] >= 0:
                    out[row, c] = acc[cands[row, c]]
            for p in range(l_ptr[row], l_ptr[row + 1]):
                u = l_idx[p]
                for q in range(r_ptr[u], r_ptr[u + 1]):
                    acc[r_idx[q]] = 0.0


@numba.njit(parallel=True, cache=True, nogil=True)
def _rows_top_k(l_ptr, l_idx, l_val, r_ptr, r_idx, r_val, width, exclude, chunks, out_cols, out_vals):
    n_rows, k = out_cols.shape
    per = (n_rows + chunks - 1) // chunks
    for chunk in numba.prange(chunks):
        acc = np.zeros(width, np.float32)
        seen = np.zeros(width, np.bool_)
        touched = np.empty(width, np.int64)
        heap_c = np.empty(k, np.int64)
        heap_v = np.empty(k, np.float32)
        for row in range(chunk * per, min(n_rows, (chunk + 1) * per)):
            m = 0
            for p in range(l_ptr[row], l_ptr[row + 1]):
                u, a = l_idx[p], l_val[p]
                for q in range(r_ptr[u], r_ptr[u + 1]):
                    j = r_idx[q]
                    if not seen[j]:
                        seen[j] = True
                        touched[m] = j
                        m += 1
                    acc[j] += a * r_val[q]
            size = 0
            for t in range(m):
                j = touched[t]
                v = acc[j]
                acc[j] = 0.0
                seen[j] = False
                if v <= 0.0 or j == exclude[row]:
                    continue
                if size < k:
                    heap_c[size], heap_v[size] = j, v
                    _sift_up(heap_c, heap_v, size)
                    size += 1
                elif v > heap_v[0] or (v == heap_v[0] and j < heap_c[0]):
                    heap_c[0], heap_v[0] = j, v
                    _sift_down(heap_c, heap_v, size)
            for slot in range(size - 1, -1, -1):  # the worst leaves first: fill from the end
                out_cols[row, slot], out_vals[row, slot] = heap_c[0], heap_v[0]
                heap_c[0], heap_v[0] = heap_c[slot], heap_v[slot]
                _sift_down(heap_c, heap_v, slot)


@numba.njit(cache=True, inline="always")
def _worse(c1, v1, c2, v2):
    """Entry 1 ranks below entry 2: a smaller value, or the same value at a larger column."""
    return v1 < v2 or (v1 == v2 and c1 > c2)


@numba.njit(cache=True)
def _sift_up(cols, vals, i):
    while i > 0:
        parent = (i - 1) // 2
        if not _worse(cols[i], vals[i], cols[parent], vals[parent]):
            return
        cols[i], cols[parent] = cols[parent], cols[i]
        vals[i], vals[parent] = vals[parent], vals[i]
        i = parent


@numba.njit(cache=True)
def _sift_down(cols, vals, size):
    """Restore the min-heap (the worst entry at the root) of its first `size` entries after the root changed."""
    i = 0
    while True:
        low, left, right = i, 2 * i + 1, 2 * i + 2
        if left < size and _worse(cols[left], vals[left], cols[low], vals[low]):
            low = left
        if right < size and _worse(cols[right], vals[right], cols[low], vals[low]):
            low = right
        if low == i:
            return
        cols[i], cols[low] = cols[low], cols[i]
        vals[i], vals[low] = vals[low], vals[i]
        i = low


def row_top(matrix: sparse.csr_matrix, q: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a sparse matrix, (columns, values) of its q largest entries, best first (ties by column),
    -1 / 0 padded. The entries are already grouped by row, columns ascending: one stable sort by (row, value)
    keeps ties in column order (a third sort key cost 2.8x the time, 25 s of train at 100,000 users)."""
    matrix = matrix.tocsr()
    if not matrix.has_sorted_indices:
        matrix = matrix.sorted_indices()
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    order = np.lexsort((-matrix.data, rows))
    cols, vals = matrix.indices[order], matrix.data[order]
    rank = np.arange(len(rows)) - matrix.indptr[:-1][rows]
    keep = rank < q
    out = np.full((matrix.shape[0], q), -1, np.int64)
    values = np.zeros((matrix.shape[0], q), np.float32)
    out[rows[keep], rank[keep]] = cols[keep]
    values[rows[keep], rank[keep]] = vals[keep]
    return out, values
