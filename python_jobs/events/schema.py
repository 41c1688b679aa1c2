"""One app event, checked field by field so each rejected event gets its own reason.

An event is what the app saw a user do to a listing:
`{event_id, type, uid, listing_id, at, session_id?, watch_seconds?, variant?, position?}`;
an `impression` (a listing the app showed) may carry the experiment variant
whose list it came from (`variant`, as `serve` answered it: `experiment/variant`)
and its place in that list (`position`, from 1).
`at` is when it happened on the device (ISO 8601 with a zone); the collector
adds `received_at`, the arrival time that decides the landing hour, as
Firehose does. Users and listings the last run did not know are accepted:
they are new.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

TYPES = ("view", "watch", "like", "share", "bid", "impression")
FIELDS = ("event_id", "type", "uid", "listing_id", "at", "session_id", "watch_seconds", "variant", "position")
REQUIRED = ("event_id", "type", "uid", "listing_id", "at")
MAX_ID = 2**31 - 1
EVENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
MAX_AHEAD = timedelta(minutes=5)   # device clocks drift; further ahead is a wrong clock, not an event
MAX_LATE = timedelta(days=7)       # later than this, the run that could use it has long passed
MAX_WATCH_SECONDS = 86400.0
VARIANT = re.compile(r"^[A-Za-z0-9_.-]{1,64}/[A-Za-z0-9_.-]{1,64}$")
MAX_POSITION = 1000


def _id(value, name: str) -> tuple[int | None, str | None]:
    if isinstance(value, bool) or not isinstance(value, int):
        return None, f"{name} must be an integer"
    if not 1 <= value <= MAX_ID:
        return None, f"{name} {value} is outside 1..{MAX_ID}"
    return value, None


def parse_time(value) -> datetime | None:
    """An ISO 8601 timestamp with a zone (Z or ±hh:mm) as aware UTC, else None."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else None


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def check(event, received_at: datetime) -> tuple[dict | None, str | None]:
    """(the event as landed, None) or (None, why it is refused)."""
    if not isinstance(event, dict):
        return None, "an event must be a JSON object"
    unknown = sorted(set(event) - set(FIELDS))
    if unknown:
        return None, f"unknown field {unknown[0]!r}; the fields are {', '.join(FIELDS)}"
    missing = [name for name in REQUIRED if event.get(name) is None]
    if missing:
        return None, f"missing {missing[0]}"
    if not isinstance(event["event_id"], str) or not EVENT_ID.match(event["event_id"]):
        return None, "event_id must be 1-128 characters of letters, digits, _ . : -"
    if event["type"] not in TYPES:
        return None, f"type {str(event['type'])[:40]!r} is not one of {', '.join(TYPES)}"
    uid, why = _id(event["uid"], "uid")
    if why:
        return None, why
    listing_id, why = _id(event["listing_id"], "listing_id")
    if why:
        return None, why
    at = parse_time(event["at"])
    if at is None:
        return None, "at must be an ISO 8601 time with a zone, e.g. 2026-12-03T10:15:00Z"
    if at > received_at + MAX_AHEAD:
        return None, f"at {iso(at)} is more than 5 minutes after the server's clock ({iso(received_at)})"
    if at < received_at - MAX_LATE:
        return None, f"at {iso(at)} is more than 7 days late; events that old are not collected"
    session = event.get("session_id")
    if session is not None and (not isinstance(session, str) or not 1 <= len(session) <= 128):
        return None, "session_id must be a string of 1-128 characters"
    seconds = event.get("watch_seconds")
    if seconds is not None:
        if event["type"] != "watch":
            return None, "watch_seconds belongs to watch events only"
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
                or not 0 <= seconds <= MAX_WATCH_SECONDS:
            return None, f"watch_seconds must be a number from 0 to {MAX_WATCH_SECONDS:.0f}"
    shown, why = _what_was_shown(event)
    if why:
        return None, why
    landed = {"event_id": event["event_id"], "type": event["type"], "uid": uid, "listing_id": listing_id,
              "at": iso(at), "received_at": iso(received_at)}
    if session is not None:
        landed["session_id"] = session
    if seconds is not None:
        landed["watch_seconds"] = float(seconds)
    return {**landed, **shown}, None


def _what_was_shown(event: dict) -> tuple[dict, str | None]:
    """({variant?, position?} of an impression, None) or ({}, why they are refused)."""
    variant, position = event.get("variant"), event.get("position")
    if (variant is not None or position is not None) and event["type"] != "impression":
        return {}, "variant and position belong to impression events only"
    if variant is not None and (not isinstance(variant, str) or not VARIANT.match(variant)):
        return {}, "variant must be experiment/variant as serve answered it, e.g. hybrid_vs_popularity/hybrid"
    if position is not None and (isinstance(position, bool) or not isinstance(position, int)
                                 or not 1 <= position <= MAX_POSITION):
        return {}, f"position must be the listing's place in the list shown, 1 to {MAX_POSITION}"
    return {k: v for k, v in (("variant", variant), ("position", position)) if v is not None}, None
