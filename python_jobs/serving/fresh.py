"""Today's events at request time: what a user did since the published run re-ranks their list.

The run's similar-listings file says, per listing, its closest open listings.
A user who viewed, watched, liked, shared or bid on listings since the run
gets those listings' neighbours scored by how strongly they acted (a bid
counts most, an impression nothing) and by how similar each neighbour is;
the best of them take the top of the list (`source: fresh`), the published
list follows. A user the run does not know gets a list from their events
alone. No listing whose auction has ended is ever returned: every item's end
time is checked against the clock at each request; the marketplace's rules
(`models.rules`) are applied again to every list as it is answered.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from datetime import datetime, timezone

from python_jobs.events.schema import parse_time

WEIGHTS = {"bid": 5.0, "like": 3.0, "share": 3.0, "watch": 2.0, "view": 1.0, "impression": 0.0}
PER_USER = 50  # the most recent events kept per user


class FreshEvents:
    """Each user's latest events since the served run, fed by the events API of this process."""

    def __init__(self) -> None:
        self._by_user: dict[int, deque] = defaultdict(lambda: deque(maxlen=PER_USER))
        self._lock = threading.Lock()

    def add(self, event: dict) -> None:
        with self._lock:
            self._by_user[event["uid"]].append(
                (event["listing_id"], event["type"], parse_time(event["received_at"]).timestamp()))

    def forget_before(self, moment: float) -> None:
        """Drop what a newly served run has already learned from (events received before it was published)."""
        with self._lock:
            for uid in list(self._by_user):
                kept = [e for e in self._by_user[uid] if e[2] >= moment]
                if kept:
                    self._by_user[uid] = deque(kept, maxlen=PER_USER)
                else:
                    del self._by_user[uid]

    def of(self, uid: int) -> list[tuple[int, str, float]]:
        with self._lock:
            return list(self._by_user.get(uid, ()))


def still_open(ends_at: str | None, now: datetime) -> bool:
    """A listing without an end time is kept; one whose auction has ended is not."""
    if not ends_at:
        return True
    ended = parse_time(ends_at)
    return ended is None or ended > now


def fresh_scores(run, events: list[tuple[int, str, float]]) -> dict[int, float]:
    """listing_id -> sum over the user's events of weight(type) x similarity(event's listing, listing); the
    listings acted on themselves are left out (the published list or the user already has them)."""
    scores: dict[int, float] = defaultdict(float)
    acted = {listing for listing, _, _ in events}
    for listing, kind, _ in events:
        weight = WEIGHTS.get(kind, 0.0)
        line = run.similar.get(listing)
        if not weight or line is None:
            continue
        for neighbour in json.loads(line)["similar"]:
            if neighbour["similar_listing_id"] not in acted:
                scores[neighbour["similar_listing_id"]] += weight * neighbour["score"]
    return scores


def rerank(run, items: list[dict], events: list[tuple[int, str, float]], n: int, now: datetime | None = None,
           rules=None, uid: int | None = None) -> list[dict]:
    """The list to return: fresh items first (at most half the list, at least one), then the published items,
    a promoted one at its published rank, never an ended auction, ranks renumbered. `rules`
    (`models.rules.ListRules`, for user `uid`): never the user's own listing, a suspended seller's or one outside
    the price band, at most the cap of one seller."""
    now = now or datetime.now(timezone.utc)

    def seller(listing: int):
        return run.listings.get(listing, {}).get("seller_uid")

    def shown(listing: int, details: dict) -> bool:
        return still_open(details.get("ends_at"), now) and (
            rules is None or rules.allows(uid, seller(listing), details.get("listing_amount")))

    published = [item for item in items if shown(item["listing_id"], item)]
    scores = fresh_scores(run, events) if events else {}
    fresh = []
    for listing, score in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])):
        details = run.listings.get(listing)
        if details is None or not shown(listing, details):
            continue
        fresh.append({"listing_id": listing, **{k: v for k, v in details.items() if k != "seller_uid"},
                      "score": round(score, 6), "source": "fresh"})
    room = n if not published else max(1, n // 2)
    fresh = fresh[:room]
    moved = {item["listing_id"] for item in fresh}
    promoted = [item for item in published if item.get("source") == "promoted" and item["listing_id"] not in moved]
    chosen = fresh + [item for item in published if item["listing_id"] not in moved and item not in promoted]
    for item in sorted(promoted, key=lambda item: item["rank"]):  # a promoted slot keeps its rank
        chosen.insert(min(item["rank"] - 1, len(chosen)), item)
    if rules is not None:
        keep = rules.within_cap([seller(item["listing_id"]) for item in chosen])
        chosen = [item for item, kept in zip(chosen, keep) if kept]
    return [{**item, "rank": rank} for rank, item in enumerate(chosen[:n], start=1)]
