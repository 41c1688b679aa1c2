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

from python_jobs.runs.run_tables import DETAILS



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


def listing_lines(listings: pd.DataFrame, details: pd.Series) -> list[str]:
    """One JSON line per listing of `listings` (listing_id) with its details."""
    ids = listings["listing_id"].drop_duplicates().sort_values().to_numpy()
    texts = details.reindex(ids).fillna("").to_numpy(object)
    return [f'{{"listing_id":{i}{"," if t else ""}{t}}}' for i, t in zip(ids.tolist(), texts)]


def listing_fragments(listings: pd.DataFrame) -> pd.Series:
    """listing_id -> the '"product":...,"ends_at":...' part of an item, for every listing."""
    columns = [listings[c].tolist() for c in DETAILS]
    texts = [_fields(zip(DETAILS, map(_value, row))) for row in zip(*columns)]
    return pd.Series(texts, index=listings["listing_id"].to_numpy())


def name_texts(users: pd.DataFrame) -> pd.Series:
    """uid -> the user's name as JSON text, encoded once for every list of theirs."""
    users = users.drop_duplicates("uid")
    return pd.Series([json.dumps(n, ensure_ascii=False) for n in users["user_name"]], index=users["uid"].to_numpy())


def user_lines(rows: pd.DataFrame, details: pd.Series, names: pd.Series, served: bool) -> tuple[np.ndarray, list[str]]:
    """(uids, one JSON line per user) from list rows (uid, rank, listing_id, score, source), each line's items in
    rank order, scores to 6 places. `served` lists carry each listing's `details` and say the list's source
    (column list_source); a model's own lists hold ids and scores (the listings file has the details, the
    file's path the model)."""
    rows = rows.sort_values(["uid", "rank"], kind="stable")
    fragment = (details.reindex(rows["listing_id"].to_numpy()).fillna("").to_numpy(object) if served
                else np.full(len(rows), "", object))
    source = rows["source"].astype("category")
    source_text = np.array([json.dumps(c) for c in source.cat.categories], dtype=object)[source.cat.codes.to_numpy()]
    items = [f'{{"rank":{r},"listing_id":{i}{"," if f else ""}{f},"score":{v:.6f},"source":{t}}}'
             for r, i, f, v, t in zip(rows["rank"].tolist(), rows["listing_id"].tolist(), fragment,
                                      rows["score"].tolist(), source_text)]
    uids = rows["uid"].to_numpy()
    starts = np.flatnonzero(np.r_[True, uids[1:] != uids[:-1]])
    ends = np.r_[starts[1:], len(uids)]
    first = uids[starts]
    named = names.reindex(first).to_numpy(object)
    kinds = [f'"source":{json.dumps(k)},' for k in rows["list_source"].to_numpy(object)[starts]] if served else (
        [""] * len(starts))
    lines = [f'{{"uid":{u},"user_name":{n},{k}"recommendations":[{",".join(items[a:b])}]}}'
             for u, n, k, a, b in zip(first.tolist(), named, kinds, starts.tolist(), ends.tolist())]
    return first, lines


def similar_lines(similar: pd.DataFrame) -> list[str]:
    """One JSON line per listing with its similar listings in rank order."""
    rows = similar.sort_values(["listing_id", "rank"], kind="stable")
    items = [f'{{"rank":{r},"similar_listing_id":{i},"score":{v:.6f}}}'
             for r, i, v in zip(rows["rank"].tolist(), rows["similar_listing_id"].tolist(), rows["score"].tolist())]
    ids = rows["listing_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, int)
    ends = np.r_[starts[1:], len(ids)]
    return [f'{{"listing_id":{int(ids[a])},"similar":[{",".join(items[a:b])}]}}' for a, b in zip(starts, ends)]
