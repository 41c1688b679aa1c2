"""Faults that real exports carry, mixed into generated data at a given rate, each kind counted.

Every fault is placed so that it is rejected under exactly one reason code
(no cascades: listings in unknown categories and duplicate users are extra
rows that nobody bids on), so a run can check that the cleaning caught each one.
`normalised` faults (stray case and whitespace) must be repaired, not rejected.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

BID_FAULTS = (
    "duplicate", "unknown_user", "unknown_listing", "invalid_amount_null", "invalid_amount_zero",
    "invalid_amount_negative", "absurd_amount", "future_timestamp", "outside_auction_window",
)


def _reason(kind: str) -> str:
    return "invalid_amount" if kind.startswith("invalid_amount") else kind


def _messy(values: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Stray case and whitespace: '  MUSIC ' for 'music'."""
    upper = rng.random(len(values)) < 0.5
    return pd.Series(np.where(upper, values.str.upper(), values.str.title()), index=values.index).radd("  ") + " "


def inject(market, rate: float, seed: int, now: float):
    """Return (dirty market, {table: {reason: expected rejected rows}}, {table: normalised rows})."""
    if rate <= 0:
        return market, {}, {}
    rng = np.random.default_rng(seed + 1)
    users, listings = market.users.copy(), market.listings.copy()
    bids, interests = market.bids.copy(), market.user_interests.copy()
    rejected: dict[str, dict[str, int]] = {"users": {}, "listings": {}, "bids": {}, "user_interests": {},
                                           "promotions": {}}
    normalised: dict[str, int] = {}

    # bids: each kind on its own rows
    per_kind = max(1, int(round(rate * len(bids) / len(BID_FAULTS))))
    rows = rng.permutation(len(bids))[: per_kind * len(BID_FAULTS)].reshape(len(BID_FAULTS), per_kind)
    lst = listings.set_index("listing_id")
    amount_col, at_col = bids.columns.get_loc("bid_amount"), bids.columns.get_loc("bid_at")
    bids["bid_amount"] = bids["bid_amount"].astype("float64")
    extra = []
    for kind, idx in zip(BID_FAULTS, rows):
        if kind == "duplicate":
            extra.append(bids.iloc[idx].copy())
        elif kind == "unknown_user":
            bids.iloc[idx, bids.columns.get_loc("uid")] = len(users) + 1_000_000 + np.arange(per_kind)
        elif kind == "unknown_listing":
            bids.iloc[idx, bids.columns.get_loc("listing_id")] = len(listings) + 1_000_000 + np.arange(per_kind)
        elif kind == "invalid_amount_null":
            bids.iloc[idx, amount_col] = np.nan
        elif kind == "invalid_amount_zero":
            bids.iloc[idx, amount_col] = 0.0
        elif kind == "invalid_amount_negative":
            bids.iloc[idx, amount_col] = -bids.iloc[idx, amount_col].abs() - 1
        elif kind == "absurd_amount":
            ids = bids.iloc[idx]["listing_id"].to_numpy()
            bids.iloc[idx, amount_col] = lst.loc[ids, "listing_amount"].to_numpy() * 1000
        elif kind == "future_timestamp":
            bids.iloc[idx, at_col] = pd.Timestamp(now + 86400 * 400, unit="s", tz="UTC")
        elif kind == "outside_auction_window":
            ids = bids.iloc[idx]["listing_id"].to_numpy()
            bids.iloc[idx, at_col] = lst.loc[ids, "listed_at"].to_numpy() - pd.Timedelta(hours=1)
        reason = _reason(kind)
        rejected["bids"][reason] = rejected["bids"].get(reason, 0) + per_kind
    bids = pd.concat([bids, *extra], ignore_index=True)
    # a fixed order keeps the generator deterministic for a seed
    bids = bids.iloc[rng.permutation(len(bids))].reset_index(drop=True)

    # listings: extra listings (nobody bids on them) in categories outside the taxonomy;
    # stray case and whitespace on existing ones
    n_unknown = max(1, int(round(rate * len(listings) / 2)))
    unknown = listings.sample(n=min(n_unknown, len(listings)), random_state=seed).copy()
    unknown["listing_id"] = listings["listing_id"].max() + 1 + np.arange(len(unknown))
    unknown["category"] = "misc"
    messy = rng.random(len(listings)) < rate
    listings.loc[messy, "category"] = _messy(listings.loc[messy, "category"], rng)
    normalised["listings"] = int(messy.sum())
    listings = pd.concat([listings, unknown], ignore_index=True)
    rejected["listings"]["unknown_category"] = len(unknown)

    # users: copies that differ only in email case, signed up later, no bids
    n_dupes = max(1, int(round(rate * len(users) / 2)))
    copies = users.sample(n=n_dupes, random_state=seed).copy()
    copies["uid"] = len(users) + 1 + np.arange(n_dupes)
    copies["user_name"] = copies["user_name"] + "_2"
    copies["email"] = copies["email"].str.upper()
    copies["signup_at"] = copies["signup_at"] + pd.Timedelta(days=1)
    users = pd.concat([users, copies], ignore_index=True)
    rejected["users"]["duplicate"] = n_dupes

    # questionnaire answers: stray case, and categories outside the taxonomy
    messy_i = rng.random(len(interests)) < rate
    interests.loc[messy_i, "sub_category"] = _messy(interests.loc[messy_i, "sub_category"], rng)
    normalised["user_interests"] = int(messy_i.sum())
    n_bad = max(1, int(round(rate * len(interests) / 2)))
    bad = interests.drop_duplicates("uid").sample(n=min(n_bad, interests["uid"].nunique()), random_state=seed).copy()
    bad["category"], bad["sub_category"] = "misc", "other"
    interests = pd.concat([interests, bad], ignore_index=True)
    rejected["user_interests"]["unknown_category"] = len(bad)

    # promotions: of listings nobody listed, and windows that end before they start
    promotions = market.promotions.copy()
    n_bad = int(rate * len(promotions) / 2)  # none where one row would be past the rate: a small table
    if n_bad:
        bad = promotions.sample(n=n_bad, random_state=seed).copy()
        unknown, backwards = bad.copy(), bad.copy()
        unknown["listing_id"] = listings["listing_id"].max() + 1_000_000 + np.arange(len(bad))
        backwards["starts_at"], backwards["ends_at"] = bad["ends_at"], bad["starts_at"]
        extra_rows = pd.concat([unknown, backwards], ignore_index=True)
        extra_rows["promotion_id"] = promotions["promotion_id"].max() + 1 + np.arange(len(extra_rows))
        promotions = pd.concat([promotions, extra_rows], ignore_index=True)
        rejected["promotions"].update(unknown_listing=len(bad), invalid_window=len(bad))

    dirty = replace(market, users=users, listings=listings, bids=bids, user_interests=interests,
                    promotions=promotions)
    return dirty, {t: r for t, r in rejected.items() if r}, normalised
