"""The app's events for a generated marketplace, landed where the collector lands them.

Consistent with how the bids were drawn: before a bid the bidder views the
listing (and often watches it); besides that every user, cold-start ones
included, browses listings of the sub-categories they like, open at the
time, by popularity; some views become watches, likes or shares. Only the
last `days` days have events (the app began sending them then). Arrival is a
few seconds after the event, and for a few percent hours later (a phone
offline), so the event's hour and the landing hour differ.
"""

from __future__ import annotations

import gzip
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from python_jobs.events.landing import PREFIX, object_key

DAY = 86400.0
BROWSE_PER_BID = 1.5   # browsing views per bid a bidder makes (cold-start users browse as much as a median bidder)
LATE_SHARE = 0.03


def app_events(market, seed: int, days: float = 14.0, prefix: str | None = None) -> pd.DataFrame:
    """event_id (`prefix`-n; by default gen<seed>-n), type, uid, listing_id, at, received_at (epoch s), session_id,
    watch_seconds."""
    rng = np.random.default_rng(seed + 7)
    now, truth = market.as_of, market.truth
    start = now - days * DAY
    listings = market.listings
    listed = listings["listed_at"].astype("int64").to_numpy() / 1e9
    ends = listings["ends_at"].astype("int64").to_numpy() / 1e9
    ids = listings["listing_id"].to_numpy()

    bids = market.bids
    bid_at = bids["bid_at"].astype("int64").to_numpy() / 1e9
    recent = bid_at >= start
    b_uid, b_listing, b_at = bids["uid"].to_numpy()[recent], bids["listing_id"].to_numpy()[recent], bid_at[recent]
    lead = rng.uniform(60, 2 * DAY, len(b_at))  # the view that led to the bid
    frames = [pd.DataFrame({"uid": b_uid, "listing_id": b_listing, "at": np.maximum(b_at - lead, start)})]

    # browsing: per user, views drawn from their taste over sub-categories, then a listing open then
    users = market.users["uid"].to_numpy()
    per_user_bids = np.bincount(b_uid, minlength=users.max() + 1)[users]
    typical = max(1.0, float(np.median(per_user_bids[per_user_bids > 0])) if (per_user_bids > 0).any() else 1.0)
    n_views = rng.poisson(BROWSE_PER_BID * np.where(per_user_bids > 0, per_user_bids, typical))
    v_uid = np.repeat(users, n_views)
    v_pair = _pair_of_views(truth["prefs"], v_uid, rng.random(len(v_uid)))
    v_at = rng.uniform(start, now, len(v_uid))
    v_listing = np.full(len(v_uid), -1)
    popularity, pair_of = truth["popularity"], truth["listing_pair"]
    for pair in np.unique(v_pair):
        rows = np.flatnonzero(v_pair == pair)
        in_pair = np.flatnonzero(pair_of == pair)
        if len(in_pair):
            chosen = _open_by_popularity(listed[in_pair], ends[in_pair], popularity[in_pair], v_at[rows], rng)
            v_listing[rows[chosen >= 0]] = ids[in_pair[chosen[chosen >= 0]]]
    keep = v_listing > 0
    frames.append(pd.DataFrame({"uid": v_uid[keep], "listing_id": v_listing[keep], "at": v_at[keep]}))
    views = pd.concat(frames, ignore_index=True)
    views["type"] = "view"

    # some views lead on: a watch (most), a like, a share, a few seconds later
    follow = rng.random(len(views))
    more = []
    for kind, low, high in (("watch", 0.0, 0.45), ("like", 0.45, 0.53), ("share", 0.53, 0.56)):
        chosen = views[(follow >= low) & (follow < high)].copy()
        chosen["type"] = kind
        chosen["at"] = chosen["at"] + rng.uniform(5, 120, len(chosen))
        more.append(chosen)
    events = pd.concat([views, *more], ignore_index=True)
    events["at"] = np.minimum(events["at"], now - 1)
    watch = events["type"].to_numpy() == "watch"
    events["watch_seconds"] = np.where(watch, np.round(rng.gamma(2.0, 12.0, len(events)), 1), np.nan)
    delay = rng.uniform(0.5, 20, len(events))
    late = rng.random(len(events)) < LATE_SHARE
    delay[late] = rng.uniform(3600, 4 * 3600, late.sum())
    events["received_at"] = np.minimum(events["at"] + delay, now)
    events = events.sort_values(["received_at", "uid"], kind="stable").reset_index(drop=True)
    events["event_id"] = [f"{prefix or f'gen{seed}'}-{i}" for i in range(len(events))]
    events["session_id"] = [f"s{u}-{int(t // DAY)}" for u, t in zip(events["uid"], events["at"])]
    return events[["event_id", "type", "uid", "listing_id", "at", "received_at", "session_id", "watch_seconds"]]


SLICE = 1_000_000  # views whose sub-category pair is drawn at once (a slice's cumulative preferences in memory)
ROUNDS = 64         # rejection rounds before the views still unplaced are placed exactly


def _pair_of_views(prefs: np.ndarray, uids: np.ndarray, draw: np.ndarray) -> np.ndarray:
    """Each view's sub-category pair, drawn from its user's preferences by `draw` (uniform), a slice at a time."""
    pairs = np.empty(len(uids), np.int64)
    for start in range(0, len(uids), SLICE):
        cum = prefs[uids[start:start + SLICE] - 1].cumsum(axis=1)
        pairs[start:start + SLICE] = (draw[start:start + SLICE, None] > cum).sum(axis=1)
    return pairs.clip(max=prefs.shape[1] - 1)


def _open_by_popularity(listed: np.ndarray, ends: np.ndarray, weight: np.ndarray, at: np.ndarray,
                        rng: np.random.Generator) -> np.ndarray:
    """For each time in `at`, a listing open then (listed <= t < ends), drawn with probability proportional to
    its weight among those open; -1 where none with weight is open. Rejection sampling: propose among the
    listings that end after t (a suffix of them sorted by end, by weight), keep a proposal already listed at t;
    that is exact, and costs O(log n) a view and round instead of a views x listings matrix (34 GiB for one
    pair at a million users)."""
    by_end = np.argsort(ends, kind="stable")
    end_sorted, w = ends[by_end], weight[by_end].astype(np.float64)
    cum = np.concatenate([[0.0], np.cumsum(w)])
    by_listed = np.argsort(listed, kind="stable")
    listed_cum = np.concatenate([[0.0], np.cumsum(weight[by_listed].astype(np.float64))])
    # the weight open at t: listed by t less ended by t (a listing ends after it is listed)
    open_weight = (listed_cum[np.searchsorted(listed[by_listed], at, side="right")]
                   - cum[np.searchsorted(end_sorted, at, side="right")])
    chosen = np.full(len(at), -1)
    todo = np.flatnonzero(open_weight > 1e-12 * max(cum[-1], 1e-300))
    for _ in range(ROUNDS):
        if not len(todo):
            return chosen
        first = np.searchsorted(end_sorted, at[todo], side="right")  # the suffix that ends after t
        target = cum[first] + rng.random(len(todo)) * (cum[-1] - cum[first])
        pick = np.minimum(np.searchsorted(cum, target, side="right") - 1, len(w) - 1)
        pick = np.maximum(pick, first)
        ok = (listed[by_end[pick]] <= at[todo]) & (w[pick] > 0)
        chosen[todo[ok]] = by_end[pick[ok]]
        todo = todo[~ok]
    for row in todo:  # rare: a time when little of what ends later is listed yet
        open_now = np.flatnonzero((listed <= at[row]) & (ends > at[row]) & (weight > 0))
        if not len(open_now):
            continue
        chosen[row] = open_now[np.searchsorted(np.cumsum(weight[open_now]), rng.random() * weight[open_now].sum(),
                                               side="right").clip(max=len(open_now) - 1)]
    return chosen


def _iso(seconds: pd.Series) -> pd.Series:
    """Epoch seconds as the collector's ISO 8601 text, to the millisecond, UTC ('...T10:00:00.123Z'), by NumPy's
    formatter over the whole column (pandas' strftime took minutes for the 40 million events of 1M users)."""
    stamps = pd.to_datetime(seconds, unit="s").to_numpy().astype("datetime64[ms]")
    return pd.Series(np.datetime_as_string(stamps, unit="ms", timezone="UTC"), index=seconds.index)


def land(client, bucket: str, events: pd.DataFrame, tag: str) -> int:
    """Write the events as the collector would have: one gzip JSON-lines object per arrival hour, named after
    `tag` and the hour (the same events land on the same keys). Returns the objects written. Each hour's object
    is compressed and put on a thread of its own while the next hour's lines are written (zlib and the upload
    let go of the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    hours = (events["received_at"] // 3600).astype("int64")

    def put(key: str, body: bytes) -> None:
        client.put_object(Bucket=bucket, Key=key, Body=gzip.compress(body, mtime=0), ContentEncoding="gzip")

    with ThreadPoolExecutor(max_workers=4) as pool:
        puts: list = []
        for hour, rows in events.groupby(hours.to_numpy(), sort=True):
            # formatted an hour at a time: the text of every event at once was 6 GB more at 1M users
            first = datetime.fromtimestamp(float(rows["received_at"].min()), timezone.utc)
            text = rows.assign(at=_iso(rows["at"]), received_at=_iso(rows["received_at"]))
            puts.append(pool.submit(put, object_key(PREFIX, first, f"{tag}-{hour}"),
                                    text.to_json(orient="records", lines=True).encode()))
            if len(puts) > 8:  # a bounded queue: hours of lines are not all held at once
                puts[-9].result()  # an upload's error stops the landing here
        for done in puts:
            done.result()
    return len(puts)
