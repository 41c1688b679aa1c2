"""The published JSON lines, built in this process from pandas frames (the publish stage's local engine).

The same lines Spark's writer makes in `publish.shape_*` (fields in the same
order, nulls left out): one user per line with the list in rank order, one
listing per line with its similar listings. No Python runs per item: strings
are encoded once per listing, user or source by orjson (compiled), numbers
become text and items, lists and lines are assembled by Arrow's string
kernels over whole columns, and each listing's details are encoded once and
taken into every list that holds it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from python_jobs.runs.run_tables import DETAILS

TEXT = pa.large_string()  # a run's served items pass 2 GiB of text at a million users


def _concat(*parts) -> pa.Array:
    """Element-wise concatenation of text columns and literal strings."""
    return pc.binary_join_element_wise(*[pa.scalar(p, TEXT) if isinstance(p, str) else p for p in parts],
                                       pa.scalar("", TEXT))


def _json(values: Iterable) -> pa.Array:
    """Each value (str, float, int) as JSON text, encoded by orjson."""
    return pa.array([orjson.dumps(v) for v in values], pa.large_binary()).cast(TEXT)


def _ints(values) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), TEXT)


def _fixed6(values) -> pa.Array:
    """Each number with 6 decimals, as '%.6f' writes it."""
    values = np.asarray(values, dtype=float)
    whole, fraction = np.divmod(np.abs(np.rint(values * 1e6)).astype(np.int64), 1_000_000)
    sign = pa.array(np.where(np.signbit(values), "-", ""), TEXT)
    return _concat(sign, _ints(whole), ".", pc.utf8_lpad(_ints(fraction), 6, "0"))


def _column_text(column: pd.Series) -> pa.Array:
    """A details column as JSON text (times as ISO 8601 UTC to the second), null where the value is missing."""
    missing = column.isna().to_numpy()
    if pd.api.types.infer_dtype(column, skipna=True) in ("datetime", "datetime64"):
        column = pd.to_datetime(column)
    if pd.api.types.is_datetime64_any_dtype(column):
        seconds = pa.array(column.dt.tz_localize(None) if column.dt.tz else column).cast(pa.timestamp("s"), safe=False)
        text = _concat('"', pc.strftime(seconds, "%Y-%m-%dT%H:%M:%SZ").cast(TEXT), '"')
    elif pd.api.types.is_integer_dtype(column):
        text = _ints(column.fillna(0).to_numpy(np.int64))
    else:
        text = _json(None if gone else value for value, gone in zip(column.tolist(), missing))
    return pc.if_else(pa.array(missing), pa.scalar(None, TEXT), text)


def _with_comma(fragments: pd.Series) -> pd.Series:
    """',' + each fragment, nothing for an empty one (a listing without details)."""
    return ("," + fragments).where(fragments != "", "")


def _lookup(texts: pd.Series, keys, default: str) -> pa.Array:
    """texts[key] for each key (`default` for a key not in `texts`): the texts made an Arrow column once, then taken."""
    at = texts.index.get_indexer(np.asarray(keys))
    taken = pa.array(texts.to_numpy(object), TEXT).take(pa.array(at, mask=at < 0))
    return pc.fill_null(taken, pa.scalar(default, TEXT))


def _encoded_categories(values: pd.Series) -> pa.Array:
    """Each value of a column of few distinct strings as JSON text, each distinct value encoded once."""
    codes = values.astype("category")
    return _json(codes.cat.categories.tolist()).take(pa.array(codes.cat.codes.to_numpy()))


def _lines(heads: pa.Array, starts: np.ndarray, count: int, *item_parts) -> list[str]:
    """One line per group of items [starts[k], starts[k+1]): its head, its items (each the concatenation of
    `item_parts`) joined by commas, then ']}'. The head and tail ride on the group's first and last item, so the
    line's text is copied once."""
    if count == 0:
        return []
    group = np.full(count, -1)
    group[starts] = np.arange(len(starts))
    lead = pc.fill_null(heads.take(pa.array(group, mask=group < 0)), pa.scalar("", TEXT))
    last = np.zeros(count, bool)
    last[np.r_[starts[1:], count] - 1] = True
    tail = pc.if_else(pa.array(last), pa.scalar("]}", TEXT), pa.scalar("", TEXT))
    items = _concat(lead, *item_parts, tail)
    offsets = pa.array(np.r_[starts, count].astype(np.int32))
    return pc.binary_join(pa.ListArray.from_arrays(offsets, items), pa.scalar(",", TEXT)).to_pylist()


def _order(keys: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Positions of the rows by key, then rank (stable); no sort when they already are (as train writes them)."""
    if len(keys) < 2 or ((keys[1:] > keys[:-1]) | ((keys[1:] == keys[:-1]) & (ranks[1:] >= ranks[:-1]))).all():
        return np.arange(len(keys))
    return np.lexsort((ranks, keys))


def _group_starts(keys: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, np.int64)


def listing_lines(listings: pd.DataFrame, details: pd.Series) -> list[str]:
    """One JSON line per listing of `listings` (listing_id) with its details."""
    ids = listings["listing_id"].drop_duplicates().sort_values().to_numpy()
    return _concat('{"listing_id":', _ints(ids), _lookup(_with_comma(details), ids, ""), "}").to_pylist()


def listing_fragments(listings: pd.DataFrame, names: tuple[str, ...] = DETAILS) -> pd.Series:
    """listing_id -> the '"product":...,"ends_at":...' part of an item (the `names` fields), for every listing."""
    fields = [pc.fill_null(_concat(f',"{name}":', _column_text(listings[name])), pa.scalar("", TEXT))
              for name in names]
    texts = pc.utf8_slice_codeunits(_concat(*fields), 1)  # without the first field's comma
    return pd.Series(texts.to_pylist(), index=listings["listing_id"].to_numpy(), dtype=object)


def name_texts(users: pd.DataFrame) -> pd.Series:
    """uid -> the user's name as JSON text, encoded once for every list of theirs."""
    users = users.drop_duplicates("uid")
    return pd.Series(_json(users["user_name"].tolist()).to_pylist(), index=users["uid"].to_numpy(), dtype=object)


def index_lines(uids: np.ndarray, names: pd.Series, buckets: int) -> list[str]:
    """One user_index line per uid: its name (from `name_texts`), uid and bucket."""
    uids = np.asarray(uids, dtype=np.int64)
    return _concat('{"user_name":', _lookup(names, uids, "null"), ',"uid":', _ints(uids),
                   ',"bucket":', _ints(uids % buckets), "}").to_pylist()


def user_lines(rows: pd.DataFrame, details: pd.Series, names: pd.Series, served: bool) -> tuple[np.ndarray, list[str]]:
    """(uids, one JSON line per user) from list rows (uid, rank, listing_id, score, source), each line's items in
    rank order, scores to 6 places. `served` lists carry each listing's `details` and say the list's source
    (column list_source); a model's own lists hold ids and scores (the listings file has the details, the
    file's path the model)."""
    order = _order(rows["uid"].to_numpy(), rows["rank"].to_numpy())
    column = lambda name: rows[name].to_numpy()[order]  # noqa: E731
    listing_ids = column("listing_id")
    parts = ['{"rank":', _ints(column("rank")), ',"listing_id":', _ints(listing_ids)]
    if served:
        parts.append(_lookup(_with_comma(details), listing_ids, ""))
    items = [*parts, ',"score":', _fixed6(column("score")), ',"source":',
             _encoded_categories(pd.Series(column("source"))), "}"]
    uids = column("uid")
    starts = _group_starts(uids)
    first = uids[starts]
    head = ['{"uid":', _ints(first), ',"user_name":', _lookup(names, first, "null"), ","]
    if served:
        head += ['"source":', _encoded_categories(pd.Series(rows["list_source"].to_numpy()[order[starts]])), ","]
    return first, _lines(_concat(*head, '"recommendations":['), starts, len(uids), *items)


def similar_lines(similar: pd.DataFrame) -> list[str]:
    """One JSON line per listing with its similar listings in rank order."""
    order = _order(similar["listing_id"].to_numpy(), similar["rank"].to_numpy())
    column = lambda name: similar[name].to_numpy()[order]  # noqa: E731
    items = ['{"rank":', _ints(column("rank")), ',"similar_listing_id":', _ints(column("similar_listing_id")),
             ',"score":', _fixed6(column("score")), "}"]
    ids = column("listing_id")
    starts = _group_starts(ids)
    return _lines(_concat('{"listing_id":', _ints(ids[starts]), ',"similar":['), starts, len(ids), *items)
