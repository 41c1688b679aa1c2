"""Synthetic Encore marketplace data, written into the raw Postgres tables.

Vectorised with numpy (Faker only for names), deterministic for a seed and an
as-of time. Behaviour the recommender should be able to learn: users bid
mostly in a few favourite sub-categories that usually match their sign-up
questionnaire; listing popularity is long-tailed; bids fall inside the
listing's auction window and rise over it. Segments: cold-start users (answers,
no bids), bidders who skipped the questionnaire, and users with both.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from python_jobs.config import PROJECT_DIR
from python_jobs.ingest.raw_schema import RAW_TABLES, raw_ddl

DAY = 86400.0
EXPLORE = 0.15  # share of bids in a sub-category drawn from everyone's demand rather than the user's taste
PROMOTED = 0.02  # share of listings a seller paid to promote, each for a window of 1-7 days around the as-of



@dataclass(frozen=True)
class Marketplace:
    users: pd.DataFrame
    listings: pd.DataFrame
    bids: pd.DataFrame
    user_interests: pd.DataFrame
    promotions: pd.DataFrame
    as_of: float = 0.0
    # how the bids were drawn, for benchmarks to score against (never given to a model): per user the taste over
    # taxonomy pairs, per listing its pair and popularity, the pairs' overall demand and the exploration rate
    truth: dict | None = None

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in RAW_TABLES}


def load_taxonomy() -> pd.DataFrame:
    return pd.read_csv(PROJECT_DIR / "seeds" / "category_taxonomy.csv")


def _timestamps(seconds: np.ndarray) -> pd.Series:
    return pd.to_datetime(seconds.astype("int64"), unit="s", utc=True)


def generate(users: int, seed: int, as_of: datetime | None = None) -> Marketplace:
    """Build the raw tables for `users` users."""
    from faker import Faker

    rng = np.random.default_rng(seed)
    now = (as_of or datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)).timestamp()
    taxonomy = load_taxonomy().sort_values(["category", "sub_category"]).reset_index(drop=True)
    pair_cat = taxonomy["category"].to_numpy()
    pair_sub = taxonomy["sub_category"].to_numpy()
    n_pairs = len(taxonomy)

    # users: tastes are a few sub-categories (sparse Dirichlet over the taxonomy); segments
    uid = np.arange(1, users + 1)
    fake = Faker()
    fake.seed_instance(seed)
    names = np.array([f"{fake.user_name()}{u}" for u in uid])
    signup = now - rng.uniform(30, 400, users) * DAY
    prefs = rng.dirichlet(np.full(n_pairs, 0.15), users)
    segment = rng.choice(["both", "cold", "no_questionnaire"], users, p=[0.75, 0.15, 0.10])
    users_df = pd.DataFrame(
        {"uid": uid, "user_name": names, "email": [f"{n.lower()}@example.com" for n in names],
         "signup_at": _timestamps(signup)}
    )

    # listings: sub-category by overall demand, long-tailed popularity, auction windows
    n_listings = max(200, users // 5)
    demand = prefs.sum(axis=0) / prefs.sum()
    l_pair = rng.choice(n_pairs, n_listings, p=demand)
    popularity = rng.pareto(2.0, n_listings) + 0.1
    listed = now - rng.uniform(0, 40, n_listings) * DAY
    ends = listed + rng.uniform(3, 21, n_listings) * DAY
    start_price = np.round(np.exp(rng.normal(3.0, 0.8, n_listings)), 2)
    listing_amount = np.round(start_price * rng.uniform(1.2, 2.0, n_listings), 2)
    listing_id = np.arange(1, n_listings + 1)
    adjectives = np.array(["vintage", "retro", "rare", "classic", "limited", "worn-in", "mint", "y2k"])
    product = [f"{adjectives[i % len(adjectives)]} {pair_sub[p]} #{lid}" for i, (p, lid) in enumerate(zip(l_pair, listing_id))]

    # bids: per bidder a count; each bid in a sub-category drawn from the user's taste
    # (15% exploration), then a listing in it by popularity
    bidders = uid[segment != "cold"]
    per_user = np.maximum(1, rng.lognormal(2.75, 0.9, len(bidders)).astype(int))
    b_uid = np.repeat(bidders, per_user)
    n_bids = len(b_uid)
    draw = rng.random(n_bids)
    b_pair = np.empty(n_bids, dtype=np.int64)
    for start in range(0, n_bids, 1_000_000):  # bids x pairs in slices: 20M bids would need ~5 GB at once
        cum = prefs[b_uid[start:start + 1_000_000] - 1].cumsum(axis=1)
        b_pair[start:start + 1_000_000] = (draw[start:start + 1_000_000, None] > cum).sum(axis=1)
    b_pair = b_pair.clip(max=n_pairs - 1)
    explore = rng.random(n_bids) < EXPLORE
    b_pair[explore] = rng.choice(n_pairs, explore.sum(), p=demand)
    b_listing = np.empty(n_bids, dtype=np.int64)
    for pair in range(n_pairs):
        rows = np.flatnonzero(b_pair == pair)
        if len(rows) == 0:
            continue
        in_pair = np.flatnonzero(l_pair == pair)
        if len(in_pair) == 0:
            in_pair = np.arange(n_listings)
        p = popularity[in_pair] / popularity[in_pair].sum()
        b_listing[rows] = in_pair[rng.choice(len(in_pair), len(rows), p=p)]
    window_end = np.minimum(ends, now - 60)[b_listing]
    frac = rng.random(n_bids)
    bid_at = listed[b_listing] + frac * (window_end - listed[b_listing])
    bid_amount = np.round(start_price[b_listing] * (1 + 1.5 * frac) * rng.uniform(0.97, 1.03, n_bids), 2)
    order = np.argsort(bid_at, kind="stable")
    bids_df = pd.DataFrame(
        {"bid_id": np.arange(1, n_bids + 1), "uid": b_uid[order], "listing_id": listing_id[b_listing][order],
         "bid_amount": bid_amount[order], "bid_at": _timestamps(bid_at[order])}
    )

    has_bids = np.zeros(n_listings, dtype=bool)
    has_bids[np.unique(b_listing)] = True
    status = np.where(ends > now, "active", np.where(has_bids, "sold", "ended"))
    listings_df = pd.DataFrame(
        {"listing_id": listing_id, "product": product, "category": pair_cat[l_pair], "sub_category": pair_sub[l_pair],
         "listing_amount": listing_amount, "start_price": start_price,
         "seller_uid": rng.integers(1, users + 1, n_listings), "listed_at": _timestamps(listed),
         "ends_at": _timestamps(ends), "status": status}
    )

    # questionnaire: 1-3 answers, mostly the user's strongest sub-categories (10% noise)
    answering = uid[segment != "no_questionnaire"]
    n_answers = rng.integers(1, 4, len(answering))
    a_uid = np.repeat(answering, n_answers)
    a_prefs = prefs[a_uid - 1]
    ranked = np.argsort(-(a_prefs + rng.random(a_prefs.shape) * 0.02), axis=1)
    rank = np.concatenate([np.arange(k) for k in n_answers])
    chosen = ranked[np.arange(len(a_uid)), rank]
    noisy = rng.random(len(a_uid)) < 0.1
    chosen[noisy] = rng.integers(0, n_pairs, noisy.sum())
    interests_df = pd.DataFrame(
        {"uid": a_uid, "category": pair_cat[chosen], "sub_category": pair_sub[chosen],
         "answered_at": _timestamps(signup[a_uid - 1] + 60)}
    ).drop_duplicates(["uid", "category", "sub_category"])

    truth = {"prefs": prefs, "listing_pair": l_pair, "popularity": popularity, "demand": demand, "explore": EXPLORE}
    return Marketplace(users_df, listings_df, bids_df, interests_df, promotions(listed, ends, now, seed), now, truth)


def promotions(listed: np.ndarray, ends: np.ndarray, now: float, seed: int) -> pd.DataFrame:
    """PROMOTED of the open listings, each promoted for 1-7 days that began in the 3 days before `now` and within
    its auction (some promotions are over by `now`). A generator of its own, so the other tables stay as they
    were."""
    rng = np.random.default_rng([seed, 1])
    open_now = np.flatnonzero(ends > now)
    chosen = np.sort(rng.choice(open_now, min(len(open_now), max(1, round(PROMOTED * len(listed)))), replace=False))
    starts = np.maximum(listed[chosen], now - rng.uniform(0, 3, len(chosen)) * DAY)
    until = np.minimum(ends[chosen], starts + rng.uniform(1, 7, len(chosen)) * DAY)
    return pd.DataFrame({"promotion_id": np.arange(1, len(chosen) + 1), "listing_id": chosen + 1,
                         "starts_at": _timestamps(starts), "ends_at": _timestamps(until)})


def _copy_frame(cur, table: str, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, quoting=csv.QUOTE_MINIMAL, date_format="%Y-%m-%dT%H:%M:%S%z")
    buffer.seek(0)
    columns = ", ".join(frame.columns)
    cur.copy_expert(f"copy raw.{table} ({columns}) from stdin with (format csv)", buffer)


def write_raw(dsn: str, market: Marketplace) -> dict[str, int]:
    """Replace the raw tables' contents in one transaction; return rows written per table."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(raw_ddl())
            cur.execute("truncate " + ", ".join(f"raw.{t}" for t in RAW_TABLES))
            for name, frame in market.tables().items():
                _copy_frame(cur, name, frame)
    finally:
        conn.close()
    return {name: len(frame) for name, frame in market.tables().items()}
