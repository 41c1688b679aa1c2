"""The local publish engine's lines, built by column kernels: every line parses to the fields Spark's writer makes."""

import json

import numpy as np
import pandas as pd

from python_jobs.publish.json_lines import index_lines, listing_fragments, listing_lines, name_texts, similar_lines, \
    user_lines


def test_lines_keep_text_numbers_times_and_missing_details_as_json():
    listings = pd.DataFrame({"listing_id": [7, 3], "product": ['Zoë "live" \\ 1\n', None],
                             "category": ["music", "books"], "sub_category": ["vinyl", None],
                             "listing_amount": [10.0, np.nan],
                             "ends_at": pd.to_datetime(["2026-12-05 10:00:00.750", None], utc=True)})
    details = listing_fragments(listings)
    rows = pd.DataFrame({"uid": [2, 1, 2], "user_name": ["b", "Ådam\t", "b"], "rank": [2, 1, 1], "listing_id": [3, 7, 7],
                         "score": [-0.0000004, 1.0, 0.1234565001], "source": ["als", "taste", "als"],
                         "list_source": ["hybrid", "popularity", "hybrid"]})
    names = name_texts(rows)
    uids, lines = user_lines(rows, details, names, served=True)
    assert uids.tolist() == [1, 2]
    first, second = map(json.loads, lines)
    assert first == {"uid": 1, "user_name": "Ådam\t", "source": "popularity", "recommendations": [
        {"rank": 1, "listing_id": 7, "product": 'Zoë "live" \\ 1\n', "category": "music", "sub_category": "vinyl",
         "listing_amount": 10.0, "ends_at": "2026-12-05T10:00:00Z", "score": 1.0, "source": "taste"}]}
    assert [item for item in second["recommendations"]] == [
        {"rank": 1, "listing_id": 7, **{k: first["recommendations"][0][k] for k in listings.columns[1:]},
         "score": 0.123457, "source": "als"},
        {"rank": 2, "listing_id": 3, "category": "books", "score": -0.0, "source": "als"}]  # missing details left out
    assert '"score":-0.000000,' in lines[1] and '"score":1.000000,' in lines[0]  # six places, as '%.6f' writes
    assert [json.loads(line) for line in user_lines(rows, details, names, served=False)[1]][1] == {
        "uid": 2, "user_name": "b", "recommendations": [{"rank": 1, "listing_id": 7, "score": 0.123457, "source": "als"},
                                                        {"rank": 2, "listing_id": 3, "score": -0.0, "source": "als"}]}
    assert [json.loads(line) for line in listing_lines(listings, details)] == [
        {"listing_id": 3, "category": "books"}, {"listing_id": 7, **{k: first["recommendations"][0][k]
                                                                      for k in listings.columns[1:]}}]
    assert [json.loads(line) for line in index_lines(uids, names, 2)] == [
        {"user_name": "Ådam\t", "uid": 1, "bucket": 1}, {"user_name": "b", "uid": 2, "bucket": 0}]
    similar = pd.DataFrame({"listing_id": [7, 3, 7], "rank": [2, 1, 1], "similar_listing_id": [9, 7, 3],
                            "score": [0.5, 0.25, 2 / 3]})
    assert [json.loads(line) for line in similar_lines(similar)] == [
        {"listing_id": 3, "similar": [{"rank": 1, "similar_listing_id": 7, "score": 0.25}]},
        {"listing_id": 7, "similar": [{"rank": 1, "similar_listing_id": 3, "score": 0.666667},
                                      {"rank": 2, "similar_listing_id": 9, "score": 0.5}]}]


def test_no_rows_make_no_lines():
    """A model with no lists (or a run with no similar listings) publishes an empty file, not an IndexError."""
    rows = pd.DataFrame({"uid": pd.Series([], dtype=int), "user_name": pd.Series([], dtype=str), "rank": pd.Series([], dtype=int),
                         "listing_id": pd.Series([], dtype=int), "score": pd.Series([], dtype=float),
                         "source": pd.Series([], dtype=str), "list_source": pd.Series([], dtype=str)})
    listings = pd.DataFrame({"listing_id": [7], "product": ["lamp"], "category": ["home"], "sub_category": ["lamps"],
                             "listing_amount": [5.0], "ends_at": pd.to_datetime(["2026-12-05"], utc=True)})
    names = name_texts(pd.DataFrame({"uid": [1], "user_name": ["a"]}))
    uids, lines = user_lines(rows, listing_fragments(listings), names, served=False)
    assert len(uids) == 0 and lines == []
    empty = pd.DataFrame({"listing_id": pd.Series([], dtype=int), "rank": pd.Series([], dtype=int),
                          "similar_listing_id": pd.Series([], dtype=int), "score": pd.Series([], dtype=float)})
    assert similar_lines(empty) == []
