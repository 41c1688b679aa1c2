"""One more day of a generated marketplace (`encore-recs generate --next-day`): what a day of Encore adds.

Day d of a marketplace generated as of T0 is the window [T0 + (d-1) days,
T0 + d days). It brings new users (GROWTH of the first day's a day, with
tastes and questionnaire answers drawn as `generate` draws them), new
listings (a 40th of the first day's, as `generate` lists over 40 days), the
day's bids (each bidder at their own daily pace, by the same taste and
popularity, on listings open then), a few bids of the days before that
arrive only now (LATE), the status of the auctions that ended in the window,
and promotions of some new listings. Ids continue where the tables end. It
is a function of the seed and the day alone: the marketplace as of day d is
`generate` then days 1..d, the same rows whichever day it is rebuilt on.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from python_jobs.ingest.generate import DAY, EXPLORE, PROMOTED, Marketplace, _timestamps, generate, load_taxonomy

GROWTH = 0.01      # new users a day, as a share of the first day's users
LISTING_DAYS = 40  # `generate` lists over the 40 days before its as-of
LATE = 0.02        # share of a day's bids dated 1-3 days earlier (an app that sent them late)


def grown(users: int, seed: int, as_of: float, days: int) -> Marketplace:
    """The marketplace `generate` made as of `as_of` (epoch s), `days` days later."""
    from datetime import datetime, timezone

    market = generate(users, seed, datetime.fromtimestamp(as_of, timezone.utc))
    for day in range(1, days + 1):
        market = next_day(market, seed, day, users)[0]
    return market


def _seconds(column: pd.Series) -> np.ndarray:
    return column.astype("int64").to_numpy() / 1e9


def next_day(market: Marketplace, seed: int, day: int, first_users: int) -> tuple[Marketplace, dict]:
    """(the marketplace a day later, the day's change: {table: new rows} and `ended`: listing id -> new status)."""
    rng = np.random.default_rng([seed, 2, day])
    start, end = market.as_of, market.as_of + DAY
    truth = market.truth
    taxonomy = load_taxonomy().sort_values(["category", "sub_category"]).reset_index(drop=True)
    pair_cat, pair_sub = taxonomy["category"].to_numpy(), taxonomy["sub_category"].to_numpy()
    n_pairs = len(taxonomy)
    demand = truth["demand"]

    # new users: tastes and questionnaire answers as `generate` draws them
    n_new = max(1, round(GROWTH * first_users))
    uid = int(market.users["uid"].max()) + 1 + np.arange(n_new)
    prefs = rng.dirichlet(np.full(n_pairs, 0.15), n_new)
    segment = rng.choice(["both", "cold", "no_questionnaire"], n_new, p=[0.75, 0.15, 0.10])
    signup = rng.uniform(start, end, n_new)
    names = np.array([f"newcomer{u}" for u in uid])
    users = pd.DataFrame({"uid": uid, "user_name": names, "email": [f"{n}@example.com" for n in names],
                          "signup_at": _timestamps(signup)})
    answering = segment != "no_questionnaire"
    top = np.argsort(-prefs[answering], axis=1)[:, :1]
    interests = pd.DataFrame({"uid": uid[answering], "category": pair_cat[top[:, 0]],
                              "sub_category": pair_sub[top[:, 0]], "answered_at": _timestamps(signup[answering] + 60)})

    # new listings, listed during the day
    first_listings = max(200, first_users // 5)
    n_listings = max(1, round(first_listings / LISTING_DAYS))
    listing_id = int(market.listings["listing_id"].max()) + 1 + np.arange(n_listings)
    l_pair = rng.choice(n_pairs, n_listings, p=demand)
    popularity = rng.pareto(2.0, n_listings) + 0.1
    listed = rng.uniform(start, end, n_listings)
    ends = listed + rng.uniform(3, 21, n_listings) * DAY
    start_price = np.round(np.exp(rng.normal(3.0, 0.8, n_listings)), 2)
    all_uids = np.concatenate([market.users["uid"].to_numpy(), uid])
    listings = pd.DataFrame({
        "listing_id": listing_id, "product": [f"fresh {pair_sub[p]} #{lid}" for p, lid in zip(l_pair, listing_id)],
        "category": pair_cat[l_pair], "sub_category": pair_sub[l_pair],
        "listing_amount": np.round(start_price * rng.uniform(1.2, 2.0, n_listings), 2), "start_price": start_price,
        "seller_uid": rng.choice(all_uids, n_listings), "listed_at": _timestamps(listed), "ends_at": _timestamps(ends),
        "status": "active"})
    every = pd.concat([market.listings, listings], ignore_index=True)
    truth = {**truth, "prefs": np.vstack([truth["prefs"], prefs]),
             "listing_pair": np.concatenate([truth["listing_pair"], l_pair]),
             "popularity": np.concatenate([truth["popularity"], popularity])}

    bids = _days_bids(market, every, truth, uid[segment != "cold"], start, end, rng)
    bids.insert(0, "bid_id", int(market.bids["bid_id"].max()) + 1 + np.arange(len(bids)))
    all_bids = pd.concat([market.bids, bids], ignore_index=True)

    # the auctions that ended during the day: sold when anyone bid, else ended
    every_ends = _seconds(every["ends_at"])
    closing = (every_ends >= start) & (every_ends < end) & (every["status"].to_numpy() == "active")
    sold = every["listing_id"].isin(all_bids["listing_id"]).to_numpy()
    every.loc[closing, "status"] = np.where(sold[closing], "sold", "ended")
    ended = dict(zip(every.loc[closing, "listing_id"].astype(int), every.loc[closing, "status"]))

    promoted = listing_id[rng.random(n_listings) < PROMOTED]
    promo_start = listed[np.isin(listing_id, promoted)]
    promotions = pd.DataFrame({
        "promotion_id": int(market.promotions["promotion_id"].max() if len(market.promotions) else 0) + 1
        + np.arange(len(promoted)),
        "listing_id": promoted, "starts_at": _timestamps(promo_start),
        "ends_at": _timestamps(promo_start + rng.uniform(1, 3, len(promoted)) * DAY)})

    grown_market = replace(
        market, users=pd.concat([market.users, users], ignore_index=True), listings=every, bids=all_bids,
        user_interests=pd.concat([market.user_interests, interests], ignore_index=True),
        promotions=pd.concat([market.promotions, promotions], ignore_index=True), as_of=end, truth=truth)
    return grown_market, {"users": users, "listings": listings, "bids": bids, "user_interests": interests,
                          "promotions": promotions, "ended": ended}


def _days_bids(market: Marketplace, listings: pd.DataFrame, truth: dict, newcomers: np.ndarray, start: float,
               end: float, rng: np.random.Generator) -> pd.DataFrame:
    """The day's bids: each bidder at their own pace (their bids so far over the days they had; a newcomer who
    bids, at the median pace), a sub-category by their taste (EXPLORE of them by everyone's demand), a listing
    of it open during the day by popularity, at a time it was open; LATE of them dated 1-3 days earlier."""
    days_so_far = (market.as_of - _seconds(market.bids["bid_at"]).min()) / DAY if len(market.bids) else 1.0
    counts = market.bids["uid"].value_counts()
    pace = counts.to_numpy() / max(days_so_far, 1.0)
    bidders = np.concatenate([counts.index.to_numpy(), newcomers])
    pace = np.concatenate([pace, np.full(len(newcomers), np.median(pace) if len(pace) else 1.0)])
    b_uid = np.repeat(bidders, rng.poisson(pace))
    if not len(b_uid):
        return pd.DataFrame(columns=["uid", "listing_id", "bid_amount", "bid_at"])
    cum = truth["prefs"][b_uid - 1].cumsum(axis=1)
    b_pair = (rng.random(len(b_uid))[:, None] > cum).sum(axis=1).clip(max=cum.shape[1] - 1)
    explore = rng.random(len(b_uid)) < EXPLORE
    b_pair[explore] = rng.choice(cum.shape[1], explore.sum(), p=truth["demand"])
    listed, ends = _seconds(listings["listed_at"]), _seconds(listings["ends_at"])
    open_today = np.flatnonzero((listed < end) & (ends > start))
    b_listing = np.full(len(b_uid), -1)
    for pair in np.unique(b_pair):
        rows = np.flatnonzero(b_pair == pair)
        in_pair = open_today[truth["listing_pair"][open_today] == pair]
        in_pair = in_pair if len(in_pair) else open_today
        weight = truth["popularity"][in_pair]
        b_listing[rows] = in_pair[rng.choice(len(in_pair), len(rows), p=weight / weight.sum())]
    low, high = np.maximum(listed[b_listing], start), np.minimum(ends[b_listing], end)
    bid_at = low + rng.random(len(b_uid)) * (high - low)
    late = rng.random(len(b_uid)) < LATE
    bid_at[late] = np.maximum(listed[b_listing][late], bid_at[late] - rng.uniform(1, 3, late.sum()) * DAY)
    frac = (bid_at - listed[b_listing]) / (ends[b_listing] - listed[b_listing])
    amount = np.round(listings["start_price"].to_numpy()[b_listing] * (1 + 1.5 * frac)
                      * rng.uniform(0.97, 1.03, len(b_uid)), 2)
    order = np.argsort(bid_at, kind="stable")
    return pd.DataFrame({"uid": b_uid[order], "listing_id": listings["listing_id"].to_numpy()[b_listing][order],
                         "bid_amount": amount[order], "bid_at": _timestamps(bid_at[order])})


def write_day(dsn: str, change: dict) -> dict[str, int]:
    """Append the day's new rows to the raw tables and set the status of the auctions that ended, in one
    transaction; rows written per table."""
    import psycopg2
    from psycopg2.extras import execute_values

    from python_jobs.ingest.generate import _copy_frame

    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            for table in ("users", "listings", "bids", "user_interests", "promotions"):
                if len(change[table]):
                    _copy_frame(cur, table, change[table])
            if change["ended"]:
                execute_values(cur, "update raw.listings as l set status = v.status from (values %s) as "
                                    "v(listing_id, status) where l.listing_id = v.listing_id",
                               list(change["ended"].items()))
    finally:
        conn.close()
    return {**{t: len(change[t]) for t in ("users", "listings", "bids", "user_interests", "promotions")},
            "ended": len(change["ended"])}
