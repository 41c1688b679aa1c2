"""The published JSON lines, built in this process from pandas frames (the publish stage's local engine).

The same lines Spark's writer makes in `publish.shape_*` (fields in the same
order, nulls left out): one user per line with the list in rank order, one
listing per line with its similar listings. Each listing's details are
serialised once and reused in every list that holds it, so the cost is a
string join per row, not a JSON encoder call.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

DETAILS = ("product", "category", "sub_category", "listing_amount", "ends_at")


def _value(value) -> str | None:
    if value is None or pd.isna(value):
        return None
    if isinstance(value, pd.Timestamp):
        return json.dumps(value.strftime("%Y-%m-%dT%H:%M:%SZ"))
    if isinstance(value, (np.integer, int)):
        return str(int(value))
    if isinstance(value, (np.floating, float)):
        return json.dumps(float(value))
    return json.dumps(value, ensure_ascii=False)


def _fields(pairs) -> str:
    return ",".join(f'"{name}":{text}' for name, text in pairs if text is not None)


def listing_fragments(listings: pd.DataFrame) -> pd.Series:
    """listing_id -> the '"product":...,"ends_at":...' part of an item, for every listing."""
    columns = [listings[c].tolist() for c in DETAILS]
    texts = [_fields(zip(DETAILS, map(_value, row))) for row in zip(*columns)]
    return pd.Series(texts, index=listings["listing_id"].to_numpy())


def _scores(values: np.ndarray) -> np.ndarray:
    """Scores rounded to 6 places as JSON numbers (the gates have checked that they are finite)."""
    return np.round(values.astype(np.float64), 6).astype(str).astype(object)


def user_lines(rows: pd.DataFrame, details: pd.Series, served: bool) -> tuple[np.ndarray, list[str]]:
    """(uids, one JSON line per user) from list rows (uid, user_name, rank, listing_id, score, source), each
    line's items in rank order. `served` lists also say the list's source (column list_source); a model's own
    lists do not (the model is in the file's path)."""
    rows = rows.sort_values(["uid", "rank"], kind="stable")
    fragment = details.reindex(rows["listing_id"].to_numpy()).fillna("").to_numpy(object)
    source = rows["source"].astype("category")
    source_text = np.array([json.dumps(c) for c in source.cat.categories], dtype=object)[source.cat.codes.to_numpy()]
    items = [f'{{"rank":{r},"listing_id":{i}{"," if f else ""}{f},"score":{v},"source":{t}}}'
             for r, i, f, v, t in zip(rows["rank"].tolist(), rows["listing_id"].tolist(), fragment,
                                      _scores(rows["score"].to_numpy()), source_text)]
    uids = rows["uid"].to_numpy()
    starts = np.flatnonzero(np.r_[True, uids[1:] != uids[:-1]])
    ends = np.r_[starts[1:], len(uids)]
    names = rows["user_name"].to_numpy(object)[starts]
    kinds = [f'"source":{json.dumps(k)},' for k in rows["list_source"].to_numpy(object)[starts]] if served else (
        [""] * len(starts))
    lines = [f'{{"uid":{int(u)},"user_name":{json.dumps(n, ensure_ascii=False)},{k}'
             f'"recommendations":[{",".join(items[a:b])}]}}'
             for u, n, k, a, b in zip(uids[starts], names, kinds, starts, ends)]
    return uids[starts], lines


def similar_lines(similar: pd.DataFrame) -> list[str]:
    """One JSON line per listing with its similar listings in rank order."""
    rows = similar.sort_values(["listing_id", "rank"], kind="stable")
    items = ('{"rank":' + rows["rank"].astype(str) + ',"similar_listing_id":' + rows["similar_listing_id"].astype(str)
             + ',"score":' + _scores(rows["score"].to_numpy()) + "}").to_numpy(object)
    ids = rows["listing_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, int)
    ends = np.r_[starts[1:], len(ids)]
    return [f'{{"listing_id":{int(ids[a])},"similar":[{",".join(items[a:b])}]}}' for a, b in zip(starts, ends)]
