"""Whether the bids the interactions mart counted are still the ones it counted.

`fct_user_item_interactions` merges, each day, only the (user, listing) pairs with a bid it has not counted yet:
a bid whose id is above the highest id staged at its last build, or one after that build's as-of (a late bid of
an earlier day arrives with a new id, so it is caught without re-reading a window of days). Every other staged
bid it trusts to be the one it counted. The staged bids are the lake's Iceberg copy, which changes only by
appending the day's new bids (python_jobs/ingest/merge_landed.py), or by being replaced when the extract found
a bid corrected, deleted or inserted with an old id, or the source replaced. So each build of the mart records
on it (its post-hook, `record_counted_bids` in macros/interactions_counted.sql) the copy's snapshot it read, and
before the next build the marts stage checks, from the copy's history alone, that every commit since was an
append (or maintenance's compaction, which moves rows between files); when one was not, or the snapshot is
gone, it rebuilds the mart in full, saying why.
"""

from __future__ import annotations

from python_jobs.runs.snapshots import provider, table_properties

MART = "marts.fct_user_item_interactions"
BIDS = "staging.stg_raw__bids"
KEYS = ("encore.counted_through_bid_id", "encore.counted_as_of", "encore.counted_bids_snapshot")


def settled_bids_changed(spark) -> str | None:
    """Why the mart must be rebuilt in full (the bids it counted changed, or it never recorded them), or None."""
    if not spark.catalog.tableExists(MART):
        return None  # the first build is a full one anyway
    recorded = table_properties(spark, MART)
    if any(key not in recorded for key in KEYS):
        return f"{MART} has no record of the staged bids it counted (built before this check)"
    if not spark.catalog.tableExists(BIDS) or provider(spark, BIDS) != "iceberg":
        return f"{BIDS} is not the lake's Iceberg copy of the staged bids"
    snapshot = int(recorded["encore.counted_bids_snapshot"])
    # the copy's line of commits, oldest first (a few a day): the counted snapshot's place in it, and what came after
    line = spark.sql(
        f"select h.snapshot_id, s.operation from {BIDS}.history as h join {BIDS}.snapshots as s "
        f"on h.snapshot_id = s.snapshot_id where h.is_current_ancestor order by h.made_current_at").collect()
    at = max((i for i, row in enumerate(line) if row.snapshot_id == snapshot), default=None)
    if at is None:
        return (f"the staged bids the last build counted (snapshot {snapshot} of {BIDS}) are no longer in its "
                "history: the copy was replaced (bids corrected, deleted or inserted with an old id, or a replaced "
                "source) or its snapshots expired")
    since = line[at + 1:]
    # a `replace` (maintenance compacting the copy's files) rewrites files, never rows
    changed = sorted({row.operation for row in since} - {"append", "replace"})
    if changed:
        return (f"the staged bids changed since the last build other than by new bids ({', '.join(changed)} on "
                f"{BIDS}): bids corrected, deleted or inserted with an old id, or a replaced source")
    return None
