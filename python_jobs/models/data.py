"""What every model learns from, in one process: the interaction matrix and the features of users and listings.

Rows are every known user and columns every known listing (also those nobody
has bid on yet, so content and taste can score them), in a fixed order, so
the training part of a split and the whole data share positions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import sparse

DAY = 86400.0


@dataclass(frozen=True)
class TrainingSet:
    user_ids: np.ndarray            # position -> uid
    item_ids: np.ndarray            # position -> listing_id
    strength: sparse.csr_matrix     # users x items: implicit-feedback strength (0 = no interaction)
    recency: sparse.csr_matrix      # users x items, same pattern: 0.5 ** (age of the latest bid / half-life)
    items: pd.DataFrame             # per item position: category, sub_category, product, listing_amount
    sub_of_item: np.ndarray         # item position -> sub-category index (into `subs`)
    subs: pd.DataFrame              # per sub-category index: category, sub_category
    interests: sparse.csr_matrix    # users x sub-categories: the questionnaire, each user's answers summing to 1
    as_of: float                    # epoch seconds the recency weights are measured from
    seen: sparse.csr_matrix | None = None  # users x items: what lists leave out (bids; a viewed listing stays in)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @cached_property
    def binary(self) -> sparse.csr_matrix:
        """1 where the user interacted with the listing (computed once per training set)."""
        out = self.strength.copy()
        out.data[:] = 1.0
        return out

    @cached_property
    def to_sub(self) -> sparse.csr_matrix:
        """items x sub-categories: 1 where the listing is in the sub-category."""
        return sparse.csr_matrix((np.ones(self.n_items, np.float32), (np.arange(self.n_items), self.sub_of_item)),
                                 shape=(self.n_items, len(self.subs)))

    def projected_bidders(self, floor: float = 0.02) -> np.ndarray:
        """Bidders so far over the share of the auction gone by (at least `floor`): a listing two days into ten
        with five bidders is on pace for twenty-five."""
        return self.bidder_counts / self.auction_elapsed(floor)

    def bid_counts(self) -> np.ndarray:
        """Listings each user interacted with."""
        return np.diff(self.strength.indptr)

    @cached_property
    def bidder_counts(self) -> np.ndarray:
        """Users who interacted with each listing."""
        return np.bincount(self.strength.indices, minlength=self.n_items)

    def auction_elapsed(self, floor: float = 0.02) -> np.ndarray:
        """Per listing, the share of its auction window gone by `as_of` (at least `floor`); 1 where the data has
        no windows (listed_at, ends_at) or the auction is over."""
        if "listed_at" not in self.items or "ends_at" not in self.items:
            return np.ones(self.n_items)
        listed = self.items["listed_at"].to_numpy(np.float64)
        length = self.items["ends_at"].to_numpy(np.float64) - listed
        elapsed = np.divide(self.as_of - listed, length, out=np.ones(self.n_items), where=length > 0)
        return np.clip(np.nan_to_num(elapsed, nan=1.0), floor, 1.0)

    def user_positions(self, uids) -> np.ndarray:
        """Positions of `uids` (all known)."""
        return np.searchsorted(self.user_ids, np.asarray(uids))

    def item_positions(self, listing_ids) -> np.ndarray:
        return np.searchsorted(self.item_ids, np.asarray(listing_ids))

    def with_interactions(self, interactions: pd.DataFrame, as_of: float, half_life_days: float) -> TrainingSet:
        """The same users, listings and features, learning from `interactions` only, as of `as_of`."""
        strength, recency, seen = _matrices(self.user_ids, self.item_ids, interactions, as_of, half_life_days)
        return replace(self, strength=strength, recency=recency, as_of=as_of, seen=seen)


def values_at(matrix: sparse.spmatrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """matrix[rows[i], cols[i]] for every i (0 where nothing is stored): one sorted search over the stored
    entries' keys, 5-10x scipy's element-wise indexing on millions of cells."""
    m = sparse.csr_matrix(matrix)
    if not m.has_canonical_format:  # sorted columns within each row, one entry per cell; the caller's untouched
        m = m.copy()
        m.sum_duplicates()
    cols = np.asarray(cols, np.int64)
    if len(cols) and (cols.min() < 0 or cols.max() >= m.shape[1]):
        raise IndexError(f"column outside 0..{m.shape[1] - 1}")
    if m.nnz == 0 or len(rows) == 0:
        return np.zeros(len(rows), m.dtype)
    width = np.int64(m.shape[1])
    keys = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) * width + m.indices
    wanted = np.asarray(rows, np.int64) * width + cols
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[at] == wanted, m.data[at], 0).astype(m.dtype)


def _matrices(user_ids, item_ids, interactions: pd.DataFrame, as_of: float, half_life_days: float):
    rows = np.searchsorted(user_ids, interactions["uid"].to_numpy())
    cols = np.searchsorted(item_ids, interactions["listing_id"].to_numpy())
    shape = (len(user_ids), len(item_ids))
    strength = sparse.csr_matrix((interactions["strength"].to_numpy(np.float32), (rows, cols)), shape=shape)
    age_days = np.maximum(as_of - interactions["last_bid_at"].to_numpy(np.float64), 0.0) / DAY
    weight = np.power(0.5, age_days / half_life_days).astype(np.float32)
    recency = sparse.csr_matrix((weight, (rows, cols)), shape=shape)
    strength.sum_duplicates()
    recency.sum_duplicates()
    seen = strength
    if "is_bid" in interactions:  # the app's events teach the models, but only a bid takes a listing off a list
        bid = interactions["is_bid"].to_numpy(bool)
        seen = sparse.csr_matrix((np.ones(bid.sum(), np.float32), (rows[bid], cols[bid])), shape=shape)
        seen.sum_duplicates()
    return strength, recency, seen


def build(interactions: pd.DataFrame, users: pd.DataFrame, listings: pd.DataFrame, interests: pd.DataFrame,
          as_of: float, half_life_days: float) -> TrainingSet:
    """interactions: uid, listing_id, strength, last_bid_at (epoch s), optionally is_bid (False for rows from
    the app's events: they add strength, but leave the listing on the user's lists); users: uid; listings: listing_id,
    category, sub_category, product, listing_amount; interests: uid, category, sub_category (None = the whole
    category). Users and listings that appear only in the interactions are added."""
    user_ids = np.union1d(users["uid"].to_numpy(np.int64), interactions["uid"].to_numpy(np.int64))
    items = listings.drop_duplicates("listing_id").sort_values("listing_id").reset_index(drop=True)
    item_ids = items["listing_id"].to_numpy(np.int64)
    interactions = interactions[np.isin(interactions["listing_id"].to_numpy(), item_ids)]
    strength, recency, seen = _matrices(user_ids, item_ids, interactions, as_of, half_life_days)
    items = items.assign(category=items["category"].fillna("unknown"), sub_category=items["sub_category"].fillna(""),
                         product=items["product"].fillna("") if "product" in items else "",
                         listing_amount=items["listing_amount"].astype(float) if "listing_amount" in items else 0.0)
    subs = items[["category", "sub_category"]].drop_duplicates().sort_values(["category", "sub_category"])
    subs = subs.reset_index(drop=True)
    key = pd.MultiIndex.from_frame(subs)
    sub_of_item = key.get_indexer(pd.MultiIndex.from_frame(items[["category", "sub_category"]]))
    return TrainingSet(user_ids, item_ids, strength, recency, items, sub_of_item, subs,
                       _interest_matrix(user_ids, subs, interests), as_of, seen)


def _interest_matrix(user_ids, subs: pd.DataFrame, interests: pd.DataFrame) -> sparse.csr_matrix:
    """A chosen sub-category counts 1; a chosen category without one (or with an unknown one) spreads 1 over
    its sub-categories; each user's answers then sum to 1."""
    shape = (len(user_ids), len(subs))
    if interests is None or interests.empty:
        return sparse.csr_matrix(shape, dtype=np.float32)
    known = interests[np.isin(interests["uid"].to_numpy(), user_ids)][["uid", "category", "sub_category"]]
    known = known.assign(answer=np.arange(len(known)))
    numbered = subs.assign(sub=np.arange(len(subs)))
    matched = known.merge(numbered, on=["category", "sub_category"], how="left")
    exact = matched[matched["sub"].notna()]
    spread = matched[matched["sub"].isna()][["uid", "category", "answer"]].merge(
        numbered[["category", "sub"]], on="category")
    targets = pd.concat([exact[["uid", "answer", "sub"]], spread[["uid", "answer", "sub"]]])
    weight = 1.0 / targets.groupby("answer")["sub"].transform("size").to_numpy()
    matrix = sparse.csr_matrix((weight.astype(np.float32), (np.searchsorted(user_ids, targets["uid"].to_numpy()),
                                                            targets["sub"].to_numpy(np.int64))), shape=shape)
    totals = np.asarray(matrix.sum(axis=1)).ravel()
    return sparse.diags(1.0 / np.maximum(totals, 1e-12)).astype(np.float32) @ matrix


def from_marketplace(market, count_weight: float, amount_weight: float, half_life_days: float):
    """(TrainingSet, interactions, listings) straight from a generated marketplace's frames, in process: the
    marts' interaction grain (one row per user and listing) with the train stage's strength, for benchmarks
    and tests that need realistic data without the pipeline."""
    bids = market.bids.assign(t=market.bids["bid_at"].astype("int64") / 1e9)
    grouped = bids.groupby(["uid", "listing_id"]).agg(bid_count=("bid_id", "size"), total=("bid_amount", "sum"),
                                                      first_bid_at=("t", "min"), last_bid_at=("t", "max"))
    interactions = grouped.reset_index()
    interactions["strength"] = count_weight * interactions["bid_count"] + amount_weight * np.log1p(interactions["total"])
    listings = market.listings.assign(listed_at=market.listings["listed_at"].astype("int64") / 1e9,
                                      ends_at=market.listings["ends_at"].astype("int64") / 1e9)
    data = build(interactions, market.users, listings, market.user_interests, market.as_of, half_life_days)
    return data, interactions, listings
