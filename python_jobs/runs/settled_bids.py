"""Whether the bids a merge of the interactions mart will not look at again are still the ones it built from.

`fct_user_item_interactions` merges only the pairs with a bid inside the lookback window (where late bids of
earlier days land), new pairs and pairs whose listing moved: it trusts that the bids before the window are the
ones it already counted. A replaced source (a regenerated marketplace, `load --replace`) or a bid corrected or
added long after its time breaks that trust silently. So after each build the mart carries, as Iceberg table
properties, a fingerprint of the settled bids (count and XOR of a hash of every staged bid up to the window's
start); before the next build the same fingerprint over the same bids must match, or the marts stage rebuilds
the mart in full and says why. One aggregate scan of the staged bids, the scan the merge makes anyway.
"""

from __future__ import annotations

from pathlib import Path

MART = "marts.fct_user_item_interactions"
BIDS = "staging.stg_raw__bids"
KEYS = ("encore.settled_bids_through", "encore.settled_bids_count", "encore.settled_bids_xor")


def lookback_days(project_dir: Path | None = None) -> int:
    """The dbt var `interactions_lookback_days` as dbt_project.yml sets it (the mart's window)."""
    import yaml

    from python_jobs.config import PROJECT_DIR

    project = yaml.safe_load(((project_dir or PROJECT_DIR) / "dbt_project.yml").read_text())
    return int(project["vars"]["interactions_lookback_days"])


def _fingerprint(spark, through: str) -> tuple[int, int]:
    """(count, XOR of a hash) of the staged bids at or before `through` ('yyyy-MM-dd HH:mm:ss', the session's UTC)."""
    row = spark.sql(
        f"select count(*) as n, coalesce(bit_xor(xxhash64(bid_id, uid, listing_id, bid_amount, bid_at)), 0) as h "
        f"from {BIDS} where bid_at <= timestamp '{through}'").first()
    return int(row.n), int(row.h)


def _properties(spark) -> dict[str, str]:
    return {r.key: r.value for r in spark.sql(f"show tblproperties {MART}").collect() if r.key in KEYS}


def settled_bids_changed(spark) -> str | None:
    """Why the mart must be rebuilt in full (its settled bids changed, or it never recorded them), or None."""
    if not spark.catalog.tableExists(MART):
        return None  # the first build is a full one anyway
    recorded = _properties(spark)
    if set(recorded) != set(KEYS):
        return f"{MART} has no fingerprint of the bids it was built from (built before this check)"
    through = recorded[KEYS[0]]
    count, xor = _fingerprint(spark, through)
    if (count, xor) != (int(recorded[KEYS[1]]), int(recorded[KEYS[2]])):
        return (f"the bids up to {through} UTC changed since the last build ({recorded[KEYS[1]]} "
                f"then, {count} now, or the same count of other bids): a replaced source or bids corrected later "
                "than the lookback window")
    return None


def record_settled_bids(spark) -> None:
    """After a build: the fingerprint of the staged bids up to the window's start (the newest bid built, less the
    lookback, as the model's next merge will see it), on the mart."""
    if not spark.catalog.tableExists(MART):
        return
    through = spark.sql(f"select date_format(max(last_bid_at) - interval {lookback_days()} days, "
                        f"'yyyy-MM-dd HH:mm:ss') as at from {MART}").first().at
    if through is None:
        return
    count, xor = _fingerprint(spark, through)
    spark.sql(f"alter table {MART} set tblproperties ('{KEYS[0]}' = '{through}', '{KEYS[1]}' = '{count}', "
              f"'{KEYS[2]}' = '{xor}')")
