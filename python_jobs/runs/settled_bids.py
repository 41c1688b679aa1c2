"""Whether the bids the interactions mart counted are still the ones it counted.

`fct_user_item_interactions` merges, each day, only the (user, listing) pairs with a bid it has not counted yet:
a bid whose id is above the highest id staged at its last build, or one after that build's as-of (a late bid of
an earlier day arrives with a new id, so it is caught without re-reading a window of days). Every other staged
bid it trusts to be the one it counted. A replaced source (a regenerated marketplace, `load --replace`), a bid
corrected or deleted after it was counted, or one inserted with an old id breaks that trust silently. So each
build of the mart records on it, as Iceberg table properties (its post-hook, `record_counted_bids` in
macros/interactions_counted.sql, with the same hash as here), the highest bid id and the as-of it counted
through and a fingerprint of the bids up to that id (count and XOR of a hash of each); before the next build the
marts stage computes the same fingerprint over the same bids, and rebuilds the mart in full, saying why, when it
differs. One aggregate scan of the staged bids.
"""

from __future__ import annotations

from python_jobs.runs.snapshots import table_properties

MART = "marts.fct_user_item_interactions"
BIDS = "staging.stg_raw__bids"
KEYS = ("encore.counted_through_bid_id", "encore.counted_as_of", "encore.counted_bids_count",
        "encore.counted_bids_xor")


def _fingerprint(spark, through_id: int) -> tuple[int, int]:
    """(count, XOR of a hash) of the staged bids with an id up to `through_id` (the hash as the model's post-hook
    takes it)."""
    row = spark.sql(
        f"select count(*) as n, coalesce(bit_xor(xxhash64(bid_id, uid, listing_id, bid_amount, bid_at)), 0) as h "
        f"from {BIDS} where bid_id <= {int(through_id)}").first()
    return int(row.n), int(row.h)


def settled_bids_changed(spark) -> str | None:
    """Why the mart must be rebuilt in full (the bids it counted changed, or it never recorded them), or None."""
    if not spark.catalog.tableExists(MART):
        return None  # the first build is a full one anyway
    recorded = {key: value for key, value in table_properties(spark, MART).items() if key in KEYS}
    if set(recorded) != set(KEYS):
        return f"{MART} has no record of the bids it counted (built before this check)"
    through = int(recorded[KEYS[0]])
    count, xor = _fingerprint(spark, through)
    if (count, xor) != (int(recorded[KEYS[2]]), int(recorded[KEYS[3]])):
        return (f"the bids up to id {through} changed since the last build ({recorded[KEYS[2]]} then, {count} "
                "now, or the same count of other bids): a replaced source, or bids corrected, deleted or inserted "
                "with an old id after they were counted")
    return None
