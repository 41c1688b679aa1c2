"""Item KNN (product KNN): listings scored by their cosine similarity to what the user bid on.

Listings are vectors of their bidders; each keeps its `neighbours` most
similar listings. A user's score for a listing is the sum of its similarities
to the listings the user bid on, each weighted by the strength of that bid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from python_jobs.models.base import bidders, for_candidates
from python_jobs.models.data import TrainingSet
from python_jobs.models.neighbours import normalise_rows, product_at, top_k_cosine


@dataclass
class ItemKNN:
    neighbours: int = 50
    name: str = "item_knn"

    def fit(self, data: TrainingSet) -> ItemKNN:
        items = normalise_rows(data.binary.T.tocsr())
        # row i: listing i's neighbours; used as similarity[j, i] = how much a bid on j says about i
        self.similarity_ = top_k_cosine(items, items, self.neighbours, itself=np.arange(data.n_items)).T.tocsr()
        self.data_ = data
        return self

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        history = self.data_.strength[users]
        columns = for_candidates(self, self.similarity_, items, lambda: self.similarity_[:, items].tocsc())
        return (history @ columns).toarray().astype(np.float32)

    def score_pairs(self, users: np.ndarray, cands: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Sparse all the way: a user's history times the top-k neighbour lists, read at the candidates."""
        return product_at(self.data_.strength[users], self.similarity_, cands)

    def covers(self, users: np.ndarray) -> np.ndarray:
        return bidders(self.data_, users)

    def similar(self, items: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """[len(items), len(candidates)]: similarity of each listing to each candidate."""
        return self.similarity_[items][:, candidates].toarray()
