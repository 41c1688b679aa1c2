"""The marketplace's rules for a list, as data the data team edits (the dbt seed `seeds/list_rules.csv`).

One row a rule: `max_per_seller` (at most that many listings of one seller in
a list), `min_listing_amount` / `max_listing_amount` (the price band shown),
and one `suspended_seller` row per suspended seller uid. Never a listing of
the user's own, and never one that is not open, whatever the file says. The
listings a rule excludes for everyone never become candidates
(`eligible`); the rules that depend on the user or the list (`own`, the cap
per seller) are applied to each ranked list, which ranking over-fetches for
(`fetch`). The output gate checks every published list against the same rules.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from python_jobs.config import PROJECT_DIR
from python_jobs.errors import UserError

RULES = PROJECT_DIR / "seeds" / "list_rules.csv"
KINDS = ("max_per_seller", "min_listing_amount", "max_listing_amount", "suspended_seller")


@dataclass(frozen=True)
class ListRules:
    max_per_seller: int = 0  # 0: no cap
    min_listing_amount: float = 0.0
    max_listing_amount: float = float("inf")
    suspended_sellers: frozenset[int] = field(default_factory=frozenset)

    def fetch(self, n: int) -> int:
        """How many to rank per list so that n usually remain after the per-list rules (a user's own listings and
        the cap per seller drop a few); a list the rules leave shorter is published shorter."""
        return 2 * n

    def allows(self, uid: int, seller: int | None, amount: float | None) -> bool:
        """Whether one listing (its seller's uid and price, None unknown) may be shown to user `uid`; the cap per
        seller is the list's (`within_cap`)."""
        if seller is not None and (seller == uid or seller in self.suspended_sellers):
            return False
        return amount is None or self.min_listing_amount <= amount <= self.max_listing_amount

    def within_cap(self, sellers: list) -> list[bool]:
        """Per position of a ranked list (its sellers, None unknown), whether the cap per seller keeps it."""
        seen: dict = {}
        keep = []
        for seller in sellers:
            seen[seller] = seen.get(seller, 0) + 1
            keep.append(seller is None or not self.max_per_seller or seen[seller] <= self.max_per_seller)
        return keep

    def to_dict(self) -> dict:
        """The rules as the manifest carries them (serve applies them at request time)."""
        return {"max_per_seller": self.max_per_seller, "min_listing_amount": self.min_listing_amount,
                "max_listing_amount": None if self.max_listing_amount == float("inf") else self.max_listing_amount,
                "suspended_sellers": sorted(self.suspended_sellers)}

    @classmethod
    def from_dict(cls, values: dict) -> "ListRules":
        top = values.get("max_listing_amount")
        return cls(int(values.get("max_per_seller") or 0), float(values.get("min_listing_amount") or 0.0),
                   float("inf") if top is None else float(top), frozenset(values.get("suspended_sellers") or ()))

    def gate_parameters(self) -> dict:
        return {"max_per_seller": self.max_per_seller or 10**9, "min_listing_amount": self.min_listing_amount,
                "max_listing_amount": min(self.max_listing_amount, 1e18),
                "suspended_sellers": sorted(self.suspended_sellers)}


def load_rules(path: Path = RULES) -> ListRules:
    """The rules in `path` (none when there is no file); a wrong row stops the run with its line and the fix."""
    if not path.is_file():
        return ListRules()
    values: dict = {"suspended_sellers": set()}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ())[:2] != ("rule", "value"):
            raise UserError(f"{path}: the header must begin rule,value")
        for number, row in enumerate(reader, start=2):
            rule, text = (row.get("rule") or "").strip(), (row.get("value") or "").strip()
            if rule not in KINDS:
                raise UserError(f"{path}:{number}: unknown rule {rule!r}; use one of {', '.join(KINDS)}")
            try:
                value = float(text)
            except ValueError:
                raise UserError(f"{path}:{number}: {rule} needs a number, not {text!r}") from None
            if value < 0:
                raise UserError(f"{path}:{number}: {rule} must be >= 0, not {text}")
            if rule in ("max_per_seller", "suspended_seller") and value != int(value):
                raise UserError(f"{path}:{number}: {rule} must be a whole number, not {text}")
            if rule == "suspended_seller":
                values["suspended_sellers"].add(int(value))
            else:
                values[rule] = int(value) if rule == "max_per_seller" else value
    rules = ListRules(**{**values, "suspended_sellers": frozenset(values["suspended_sellers"])})
    if rules.min_listing_amount > rules.max_listing_amount:
        raise UserError(f"{path}: min_listing_amount is above max_listing_amount")
    return rules


def eligible(items: pd.DataFrame, rules: ListRules) -> np.ndarray:
    """Per listing (row of `items`), whether the rules for everyone let it be shown: its price in the band, its
    seller not suspended. Columns a listings file lacks (public data) leave their rule out."""
    keep = np.ones(len(items), dtype=bool)
    if "listing_amount" in items:
        amount = items["listing_amount"].to_numpy(np.float64)
        keep &= (amount >= rules.min_listing_amount) & (amount <= rules.max_listing_amount)
    if "seller_uid" in items and rules.suspended_sellers:
        keep &= ~items["seller_uid"].isin(list(rules.suspended_sellers)).to_numpy()
    return keep


def apply_to_ranked(chosen: np.ndarray, scores: np.ndarray, sources, user_uids: np.ndarray,
                    seller_of_item: np.ndarray, rules: ListRules, n: int):
    """Ranked lists [U, fetched] (item positions, -1 = none; their scores; their sources, an array alike or one
    name) without each user's own listings and past the cap per seller, the n best left first: (chosen, scores,
    sources) [U, n], -1 / -inf padded. `seller_of_item`: per item position its seller's uid (-1 unknown)."""
    seller = np.where(chosen >= 0, seller_of_item[np.maximum(chosen, 0)], -1)
    keep = (chosen >= 0) & (seller != user_uids[:, None])
    if rules.max_per_seller:
        known = keep & (seller >= 0)
        same = (seller[:, :, None] == seller[:, None, :]) & known[:, None, :] & known[:, :, None]
        before = np.tril(np.ones((seller.shape[1],) * 2, dtype=bool), k=-1)
        keep &= ~known | ((same & before[None]).sum(axis=2) < rules.max_per_seller)
    order = np.argsort(~keep, axis=1, kind="stable")[:, :n]
    kept = np.take_along_axis(keep, order, axis=1)
    chosen = np.where(kept, np.take_along_axis(chosen, order, axis=1), -1)
    scores = np.where(kept, np.take_along_axis(scores, order, axis=1), -np.inf)
    if np.ndim(sources):
        sources = np.take_along_axis(np.asarray(sources), order, axis=1)
    return chosen, scores, sources


class WatchedRules:
    """The rules file serve applies at request time, read again whenever it changes: a seller suspended in the
    file is out of every list at the next request, without a run. A file that stops parsing is logged and the
    last good rules stay; with no file, the rules the served run was published with apply."""

    def __init__(self, path: Path = RULES) -> None:
        self.path, self._stamp, self._rules, self.error = path, None, None, None

    def current(self, published: ListRules) -> ListRules:
        try:
            stat = self.path.stat()
        except OSError:
            return self._rules or published
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._rules, self.error = load_rules(self.path), None
            except UserError as exc:
                import logging

                self.error = str(exc)
                logging.getLogger("encore.serve").error("rules not reloaded, the last good ones apply: %s", exc)
        return self._rules or published
