"""The marketplace's experiments: their definitions (the dbt seed `seeds/experiments.csv`) and who gets which variant.

A user's place is two hashes, the same in Python (serve, the app's sessions)
and in SQL (the `experiment_bucket` macro of the experiment marts), so
assignment is stable across runs and processes and needs no table: the
traffic bucket `bucket("encore", uid)` decides which experiment a user is in
(experiments running at the same time hold disjoint ranges of it, so no user
is in two), and `bucket(experiment, uid)` picks the variant by the variants'
shares. A variant serves a list the run publishes: `hybrid` (the blend) or one
model's own list.
"""

from __future__ import annotations

import csv
import hashlib
from datetime import datetime, timezone
from pathlib import Path

from python_jobs.config import MODELS, PROJECT_DIR
from python_jobs.errors import UserError

BUCKETS = 10_000
TRAFFIC_SALT = "encore"
DEFINITIONS = PROJECT_DIR / "seeds" / "experiments.csv"
COLUMNS = ("experiment", "variant", "serves", "is_control", "share", "traffic_from", "traffic_to", "starts_at",
           "ends_at")
SERVES = ("hybrid", *MODELS)
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def bucket(salt: str, uid: int) -> int:
    """0..BUCKETS-1 from the first 32 bits of SHA-256("salt:uid"): what the SQL macro computes with sha2/conv."""
    return int(hashlib.sha256(f"{salt}:{uid}".encode()).hexdigest()[:8], 16) % BUCKETS


def _time(text: str, where: str) -> str:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"{where}: {text!r} is not a time; write e.g. 2026-12-01T00:00:00Z") from None
    if moment.tzinfo is None:
        raise UserError(f"{where}: {text!r} has no zone; end it with Z")
    return moment.astimezone(timezone.utc).strftime(STAMP)


def _row(raw: dict, where: str) -> dict:
    try:
        row = {**raw, "is_control": {"true": True, "false": False}[raw["is_control"].strip().lower()],
               "share": float(raw["share"]), "traffic_from": int(raw["traffic_from"]),
               "traffic_to": int(raw["traffic_to"])}
    except (KeyError, ValueError):
        raise UserError(f"{where}: is_control must be true/false, share a number, traffic_from/to whole numbers")
    if row["serves"] not in SERVES:
        raise UserError(f"{where}: serves {row['serves']!r} is not a list the run publishes; use one of "
                        f"{', '.join(SERVES)}")
    if not 0 <= row["traffic_from"] < row["traffic_to"] <= BUCKETS:
        raise UserError(f"{where}: traffic {row['traffic_from']}..{row['traffic_to']} must lie within 0..{BUCKETS}")
    if not 0 < row["share"] <= 1:
        raise UserError(f"{where}: share {row['share']} must be in (0, 1]")
    row["starts_at"], row["ends_at"] = _time(row["starts_at"], where), _time(row["ends_at"], where)
    if row["starts_at"] >= row["ends_at"]:
        raise UserError(f"{where}: starts_at must be before ends_at")
    return row


def load(path: Path = DEFINITIONS) -> list[dict]:
    """The definitions, one dict a variant, checked: a wrong file stops the run with the line to fix."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise UserError(f"{path}: the header must be {','.join(COLUMNS)}")
        rows = [_row(raw, f"{path}:{number}") for number, raw in enumerate(reader, start=2)]
    experiments: dict[str, list[dict]] = {}
    for row in rows:
        experiments.setdefault(row["experiment"], []).append(row)
    for name, variants in experiments.items():
        if abs(sum(v["share"] for v in variants) - 1) > 1e-9:
            raise UserError(f"{path}: the shares of experiment {name} add up to "
                            f"{sum(v['share'] for v in variants):g}, not 1")
        if sum(v["is_control"] for v in variants) != 1:
            raise UserError(f"{path}: experiment {name} needs exactly one variant with is_control true")
        if len({(v["traffic_from"], v["traffic_to"], v["starts_at"], v["ends_at"]) for v in variants}) != 1:
            raise UserError(f"{path}: the variants of experiment {name} must share traffic_from/to and the window")
        if len({v["variant"] for v in variants}) != len(variants):
            raise UserError(f"{path}: experiment {name} names a variant twice")
    firsts = [variants[0] for variants in experiments.values()]
    for i, one in enumerate(firsts):
        for other in firsts[i + 1:]:
            if (one["starts_at"] < other["ends_at"] and other["starts_at"] < one["ends_at"]
                    and one["traffic_from"] < other["traffic_to"] and other["traffic_from"] < one["traffic_to"]):
                raise UserError(f"{path}: experiments {one['experiment']} and {other['experiment']} run at the same "
                                "time over the same traffic; give them disjoint traffic_from..traffic_to")
    return rows


def running(definitions: list[dict], at: datetime) -> list[dict]:
    """The variants of experiments whose window holds `at`."""
    stamp = at.astimezone(timezone.utc).strftime(STAMP)
    return [row for row in definitions if row["starts_at"] <= stamp < row["ends_at"]]


def assign(definitions: list[dict], uid: int, at: datetime) -> dict | None:
    """The variant `uid` gets at `at` (its definition row), or None when no running experiment holds the user."""
    traffic = bucket(TRAFFIC_SALT, uid)
    variants = sorted((row for row in running(definitions, at) if row["traffic_from"] <= traffic < row["traffic_to"]),
                      key=lambda row: row["variant"])  # name order, as the SQL walks them
    if not variants:
        return None
    point, edge = bucket(variants[0]["experiment"], uid) / BUCKETS, 0.0
    for row in variants:
        edge += row["share"]
        if point < edge:
            return row
    return variants[-1]
