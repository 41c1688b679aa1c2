"""User KNN: what the user's most similar bidders bid on.

Users are vectors of the listings they bid on; the `neighbours` most similar
users (cosine) vote for their listings, each vote weighted by the similarity.
Neighbours are found only for the users being scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from python_jobs.models.base import bidders
from python_jobs.models.data import TrainingSet
from python_jobs.models.neighbours import normalise_rows, product_at, top_k_cosine


@dataclass
class UserKNN:
    neighbours: int = 50
    name: str = "user_knn"

    def fit(self, data: TrainingSet) -> UserKNN:
        self.normalised_ = normalise_rows(data.binary)
        self.data_ = data
        return self

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        near = top_k_cosine(self.normalised_[users], self.normalised_, self.neighbours, itself=users)
        votes = near @ self.data_.binary[:, items]
        return votes.toarray().astype(np.float32)

    def score_pairs(self, users: np.ndarray, cands: np.ndarray, items: np.ndarray) -> np.ndarray:
        near = top_k_cosine(self.normalised_[users], self.normalised_, self.neighbours, itself=users)
        return product_at(near, self.data_.binary, cands)

    def covers(self, users: np.ndarray) -> np.ndarray:
        return bidders(self.data_, users)
