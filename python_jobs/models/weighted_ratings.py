"""Weighted ratings: each listing's mean interaction strength shrunk towards the catalogue's (a Bayesian average).

wr = v / (v + m) * r + m / (v + m) * c, where v is the listing's number of
interactions, r their mean strength, c the mean over every interaction and m
the prior's weight (by default the median v of listings with any). A listing
with few interactions keeps close to the catalogue mean; one with many keeps
its own. The same list for everyone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from python_jobs.models.base import everyone
from python_jobs.models.data import TrainingSet


@dataclass
class WeightedRatings:
    prior_count: float | None = None
    name: str = "weighted_ratings"

    def fit(self, data: TrainingSet) -> WeightedRatings:
        votes = data.bidder_counts.astype(np.float64)
        totals = np.asarray(data.strength.sum(axis=0)).ravel()
        mean_all = totals.sum() / max(votes.sum(), 1.0)
        m = self.prior_count if self.prior_count is not None else float(np.median(votes[votes > 0])) if (votes > 0).any() else 1.0
        means = np.divide(totals, votes, out=np.zeros_like(totals), where=votes > 0)
        self.rating_ = ((votes * means + m * mean_all) / (votes + m)).astype(np.float32)
        return self

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.rating_[items], (len(users), len(items)))

    def score_pairs(self, users: np.ndarray, cands: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.rating_[cands]

    def covers(self, users: np.ndarray) -> np.ndarray:
        return everyone(users)
