"""Popularity: the same list for everyone, recency-weighted bidders per listing.

Each bidder counts 0.5 ** (age of their latest bid / half-life); the weights
are in the training set's `recency` matrix. Normalised to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from python_jobs.models.base import everyone
from python_jobs.models.data import TrainingSet


@dataclass
class Popularity:
    name: str = "popularity"

    def fit(self, data: TrainingSet) -> Popularity:
        counts = np.asarray(data.recency.sum(axis=0)).ravel().astype(np.float32)
        self.popularity_ = counts / max(float(counts.max(initial=0.0)), 1e-12)
        return self

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity_[items], (len(users), len(items)))

    def score_pairs(self, users: np.ndarray, cands: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.popularity_[cands]

    def covers(self, users: np.ndarray) -> np.ndarray:
        return everyone(users)
