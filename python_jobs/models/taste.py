"""Taste: personal popularity. The user's affinity for each sub-category times the listing's share of it.

affinity[u, s] mixes, in proportions of evidence:
- the sub-categories of the listings the user bid on (each counts 1, plus up
  to 1 more the more recent the bid: 1 + 0.5 ** (age / half-life)),
- the same bids at category level, spread over the category's sub-categories
  by their share of everyone's bidders (`category_weight` per bid),
- the sign-up questionnaire (`questionnaire_weight` in all), and its answers
  at category level as the bids are,
- everyone's sub-category demand (`prior_weight`), so an unexplored
  sub-category is never zero.
A listing's share of its sub-category is its projected bidders plus
`listing_prior`, over the same sum of the candidate listings of that
sub-category, so a listing nobody has bid on yet still has a place. Projected
bidders are the bidders so far over the share of the auction gone by (at
least `pace_floor`): a listing two days into a ten-day auction with five
bidders is on pace for twenty-five, and is as good a bet as a listing that
ended with twenty-five. Without auction windows in the data, the bidders as
they are.
It is the cold-start model generalised to everyone: a user with no bids gets
the questionnaire and the prior, one with many gets their own history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from python_jobs.models.base import everyone, for_candidates
from python_jobs.models.data import TrainingSet


@dataclass
class Taste:
    category_weight: float = 0.3
    # chosen on the validation split of the 1k and 100k replays from {2, 4, 8, 16}: 8 is best for users with
    # and without bids at both scales, and keeps a questionnaire-only user's list in their categories
    questionnaire_weight: float = 8.0
    prior_weight: float = 2.0
    listing_prior: float = 0.5
    pace_floor: float = 0.02
    name: str = "taste"

    def fit(self, data: TrainingSet) -> Taste:
        to_sub = data.to_sub
        bids = data.binary + data.recency  # 1 per listing, plus its recency weight
        per_sub = np.asarray((bids @ to_sub).todense(), dtype=np.float32)
        demand = (np.asarray(data.bidder_counts @ to_sub).ravel() + 1.0).astype(np.float32)
        demand /= demand.sum()
        categories = data.subs["category"].astype("category").cat.codes.to_numpy()
        to_cat = np.eye(categories.max() + 1, dtype=np.float32)[categories]  # sub-category x category, one-hot
        cat_demand = to_cat.T @ demand
        within_cat = demand / cat_demand[categories]
        per_cat = (per_sub @ to_cat)[:, categories] * within_cat
        answers = data.interests.toarray()
        answers_cat = (answers @ to_cat)[:, categories] * within_cat
        answered = answers.sum(axis=1) > 0
        evidence = (per_sub + self.category_weight * per_cat + self.prior_weight * demand
                    + self.questionnaire_weight * (answers + self.category_weight * answers_cat))
        totals = ((per_sub.sum(axis=1) + self.questionnaire_weight * answered) * (1 + self.category_weight)
                  + self.prior_weight)
        self.affinity_ = (evidence / totals[:, None]).astype(np.float32)
        self.popularity_ = (data.projected_bidders(self.pace_floor) + self.listing_prior).astype(np.float32)
        self.sub_of_item_ = data.sub_of_item
        return self

    def shares(self, items: np.ndarray) -> np.ndarray:
        """Each candidate's share of its sub-category among the candidates."""
        subs = self.sub_of_item_[items]
        totals = np.bincount(subs, weights=self.popularity_[items], minlength=self.affinity_.shape[1])
        return (self.popularity_[items] / totals[subs]).astype(np.float32)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.affinity_[users][:, self.sub_of_item_[items]] * self.shares(items)

    def score_pairs(self, users: np.ndarray, cands: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The same as `score`: each candidate's share of its sub-category among the day's listings `items`."""
        def every_share():
            out = np.zeros(len(self.sub_of_item_), np.float32)
            out[items] = self.shares(items)
            return out

        share = for_candidates(self, self.affinity_, items, every_share)
        return self.affinity_[users[:, None], self.sub_of_item_[cands]] * share[cands]

    def covers(self, users: np.ndarray) -> np.ndarray:
        return everyone(users)
