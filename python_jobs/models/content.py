"""Content: listings as TF-IDF of their words, taxonomy and price band; users as the mean of what they bid on
and answered.

Listing vector: the product text's words (those in at least two listings)
plus `category=`, `sub_category=` and `price=` tokens (price in quintiles
of the catalogue), TF-IDF weighted and of unit length. User profile: the
unit-length mean of the listings they bid on (weighted by strength) plus
`questionnaire_weight` times the unit-length vector of their questionnaire
answers' taxonomy tokens. Score: the dot product. It needs no bids on a
listing, so new listings score as well as old ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from python_jobs.models.base import SCORE_CELLS, for_candidates
from python_jobs.models.data import TrainingSet
from python_jobs.models.neighbours import normalise_rows

WORD = re.compile(r"[a-z][a-z0-9'-]+")


def listing_tokens(items: pd.DataFrame) -> list[list[str]]:
    amounts = items["listing_amount"].astype(float).fillna(0.0).to_numpy()
    edges = np.quantile(amounts, [0.2, 0.4, 0.6, 0.8]) if len(amounts) else []
    bands = np.searchsorted(edges, amounts, side="right")
    tokens = []
    for product, category, sub, band in zip(items["product"].fillna(""), items["category"], items["sub_category"],
                                            bands):
        tokens.append(WORD.findall(str(product).lower())
                      + [f"category={category}", f"sub_category={category}/{sub}", f"price={band}"])
    return tokens


def tfidf(documents: list[list[str]], min_df: int = 2) -> tuple[sparse.csr_matrix, dict[str, int]]:
    """Rows of unit length; a token in fewer than `min_df` documents is dropped (e.g. a listing's own number)."""
    frame = pd.DataFrame([(d, t) for d, doc in enumerate(documents) for t in doc], columns=["doc", "token"])
    df = frame.drop_duplicates().groupby("token").size()
    vocab_tokens = df[df >= min_df].index
    vocab = {t: i for i, t in enumerate(vocab_tokens)}
    frame = frame[frame["token"].isin(vocab)]
    counts = frame.groupby(["doc", "token"]).size().reset_index(name="tf")
    idf = np.log(len(documents) / df[vocab_tokens].to_numpy()) + 1.0
    cols = counts["token"].map(vocab).to_numpy()
    values = counts["tf"].to_numpy() * idf[cols]
    matrix = sparse.csr_matrix((values.astype(np.float32), (counts["doc"].to_numpy(), cols)),
                               shape=(len(documents), len(vocab)))
    return normalise_rows(matrix), vocab


@dataclass
class Content:
    questionnaire_weight: float = 0.5
    name: str = "content"

    def fit(self, data: TrainingSet) -> Content:
        self.vectors_, vocab = tfidf(listing_tokens(data.items))
        self.tokens_ = np.array(list(vocab), dtype=str)  # the token of each column of vectors_
        self.padded_ = _padded(self.vectors_)
        taxonomy = sparse.lil_matrix((len(data.subs), len(vocab)), dtype=np.float32)
        for s, (category, sub) in enumerate(zip(data.subs["category"], data.subs["sub_category"])):
            for token in (f"category={category}", f"sub_category={category}/{sub}"):
                if token in vocab:
                    taxonomy[s, vocab[token]] = 1.0
        from_bids = normalise_rows(data.strength @ self.vectors_)
        answered = normalise_rows(data.interests @ taxonomy.tocsr())
        self.profiles_ = (from_bids + self.questionnaire_weight * answered).tocsr()
        return self

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        candidates = for_candidates(self, self.vectors_, items, lambda: _dense_if_small(self.vectors_[items].T))
        scores = self.profiles_[users] @ candidates
        return (scores.toarray() if sparse.issparse(scores) else np.asarray(scores)).astype(np.float32, copy=False)

    def score_pairs(self, users: np.ndarray, cands: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Per pair, the dot product of the user's profile and the candidate's words: a dense block of profiles
        read at each candidate's few tokens, which every listing holds as one padded row (`_padded`)."""
        tokens, weights = self.padded_
        out = np.zeros(cands.shape, np.float32)
        cells = max(1, cands.shape[1] * tokens.shape[1])
        step = max(1, min(SCORE_CELLS // max(1, self.vectors_.shape[1]), SCORE_CELLS // cells))
        for start in range(0, len(users), step):
            profiles = self.profiles_[users[start:start + step]].toarray()
            block = cands[start:start + step]
            read = profiles[np.arange(len(block))[:, None, None], tokens[block]]
            out[start:start + step] = np.sum(read * weights[block], axis=2, dtype=np.float64)
        return out

    def covers(self, users: np.ndarray) -> np.ndarray:
        """Users who bid or answered the questionnaire."""
        return np.diff(self.profiles_.indptr)[users] > 0


def _padded(vectors: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(token columns, weights), each [listings, most tokens of a listing]: every listing's row of `vectors` in
    order, padded with column 0 at weight 0."""
    counts = np.diff(vectors.indptr)
    width = int(counts.max()) if len(counts) else 0
    tokens, weights = np.zeros((vectors.shape[0], width), np.int32), np.zeros((vectors.shape[0], width), np.float32)
    rows = np.repeat(np.arange(vectors.shape[0]), counts)
    slots = np.arange(vectors.nnz) - np.repeat(vectors.indptr[:-1], counts)
    tokens[rows, slots], weights[rows, slots] = vectors.indices, vectors.data
    return tokens, weights


def _dense_if_small(matrix: sparse.spmatrix):
    """The candidates' vectors dense when they fit the scoring budget: sparse profiles times a dense matrix is
    several times faster than sparse times sparse with a mostly filled product."""
    return matrix.toarray() if matrix.shape[0] * matrix.shape[1] <= SCORE_CELLS else matrix.tocsc()
