"""The generated marketplace's app in use: users open it, see the list serve gives them, and respond to it.

What makes an experiment measurable on generated data: each session shows
the user the list `serving.app.served_list` answers (their variant's, when
an experiment holds them) and records an `impression` per listing shown,
with the variant serve answered and the listing's place in the list;
whether the user then views a listing depends on how well it fits the taste
the generator drew their bids from, and on its place in the list; views lead
on to watches and bids as in the generator's browsing. A better list earns
more views and bids; two variants serving the same list earn the same, up to
chance. The events are landed as the collector lands them, and the next
run's events stage ingests them.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from python_jobs.serving.app import served_list
from python_jobs.serving.loader import ServedRun

SHOWN = 10            # listings a session shows
VIEW_RATE = 0.04      # chance of a view at the top slot for a listing of average fit
MAX_VIEW = 0.9
WATCH_AFTER_VIEW = 0.45
BID_AFTER_VIEW = 0.08  # for a listing of average fit; grows with the fit as views do
SESSION_SPREAD = 3600.0  # sessions fall in the hour before `now`
COLUMNS = ["event_id", "type", "uid", "listing_id", "at", "received_at", "session_id", "watch_seconds", "variant",
           "position"]


def fit_of(truth: dict) -> callable:
    """(uid, listing_id) arrays -> how well each listing fits its user: the generator's bid propensity, relative to
    a listing drawn at random by popularity (1 = average)."""
    taste = (1 - truth["explore"]) * truth["prefs"] + truth["explore"] * truth["demand"]
    pair = truth["listing_pair"]
    n_pairs = taste.shape[1]
    return lambda uids, listings: taste[uids - 1, pair[listings - 1]] * n_pairs


def sessions(run: ServedRun, truth: dict, uids: np.ndarray, now: datetime, seed: int) -> pd.DataFrame:
    """The events of one session per user in `uids`: impressions (with their variant and position), then views,
    watches and bids (the generator's columns: event_id, type, uid, listing_id, at, received_at, session_id,
    watch_seconds, and variant and position)."""
    rng = np.random.default_rng(seed)
    end = now.timestamp()
    rows = []
    for uid in uids:
        try:
            answer = served_list(run, int(uid), SHOWN, None, [], now)
        except LookupError:
            continue
        start = end - rng.uniform(60, SESSION_SPREAD)
        for item in answer["recommendations"]:
            rows.append((int(uid), int(item["listing_id"]), item["rank"], start + item["rank"], answer["variant"]))
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    shown = pd.DataFrame(rows, columns=["uid", "listing_id", "rank", "at", "variant"])
    known = shown["listing_id"].to_numpy() <= len(truth["listing_pair"])
    fit = np.zeros(len(shown))
    fit[known] = fit_of(truth)(shown["uid"].to_numpy()[known], shown["listing_id"].to_numpy()[known])
    place = 1 / np.log2(shown["rank"].to_numpy() + 1)
    viewed = rng.random(len(shown)) < np.minimum(MAX_VIEW, VIEW_RATE * fit * place)
    views = shown[viewed].assign(at=lambda f: f["at"] + rng.uniform(2, 60, len(f)))
    fit_viewed = fit[viewed]
    watches = views[rng.random(len(views)) < WATCH_AFTER_VIEW].assign(at=lambda f: f["at"] + 5)
    bids = views[rng.random(len(views)) < np.minimum(MAX_VIEW, BID_AFTER_VIEW * fit_viewed)].assign(
        at=lambda f: f["at"] + 30)
    events = pd.concat([shown.assign(type="impression", position=shown["rank"]), views.assign(type="view"),
                        watches.assign(type="watch"), bids.assign(type="bid")], ignore_index=True)
    events["position"] = events["position"].astype("Int64")  # an integer in the JSON, or null
    events["variant"] = events["variant"].where(events["type"] == "impression", None)  # what was shown only
    events["at"] = np.minimum(events["at"], end - 1)
    events["received_at"] = np.minimum(events["at"] + rng.uniform(0.5, 5, len(events)), end)
    events["watch_seconds"] = np.where(events["type"] == "watch", np.round(rng.gamma(2.0, 12.0, len(events)), 1),
                                       np.nan)
    events = events.sort_values(["received_at", "uid"], kind="stable").reset_index(drop=True)
    events["event_id"] = [f"app{seed}-{int(end)}-{i}" for i in range(len(events))]
    events["session_id"] = [f"app{seed}-{u}-{int(end)}" for u in events["uid"]]
    return events[COLUMNS]
