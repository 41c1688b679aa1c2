"""The Great Expectations suites, validation definitions and checkpoints, as code.

`encore-recs expectations` writes them into the file-based GX project under
`expectations/` (committed); the pipeline loads them from there. Values that
vary per run (taxonomy, top-N, the reject-rate threshold, now) are suite
parameters, filled in when a checkpoint runs.

Every suite has two checkpoints, one per engine, over the same suite: `<suite>`
validates a Spark frame (data beyond the driver), `<suite>__local` a pandas
frame in this process (data that fits; `models.engine.for_frames` chooses).
"""

from __future__ import annotations

from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe

from python_jobs.config import MODELS
from python_jobs.ingest.raw_schema import RAW_TABLES

# engine -> (datasource, checkpoint name suffix)
DATASOURCES = {"spark": ("encore_spark", ""), "local": ("encore_local", "__local")}


def checkpoint_name(suite: str, engine: str) -> str:
    return suite + DATASOURCES[engine][1]


def _p(name: str) -> dict:
    return {"$PARAMETER": name}


def suite_definitions() -> dict[str, list]:
    """Suite name -> expectations. Names start with the gate they belong to."""
    return {
        "inputs__reconciliation": [
            gxe.ExpectTableRowCountToEqual(value=len(RAW_TABLES)),
            gxe.ExpectColumnValuesToBeInSet(column="balanced", value_set=[True]),
            gxe.ExpectColumnValuesToBeBetween(column="reject_rate", min_value=0, max_value=_p("max_reject_rate")),
        ],
        "inputs__stg_raw__bids": [
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            gxe.ExpectColumnValuesToBeUnique(column="bid_id"),
            gxe.ExpectColumnValuesToNotBeNull(column="bid_id"),
            gxe.ExpectColumnValuesToNotBeNull(column="uid"),
            gxe.ExpectColumnValuesToNotBeNull(column="listing_id"),
            gxe.ExpectColumnValuesToBeBetween(column="bid_amount", min_value=0, strict_min=True),
            gxe.ExpectColumnValuesToBeBetween(column="bid_at_epoch", max_value=_p("now_epoch")),
        ],
        "inputs__fct_user_item_interactions": [
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            gxe.ExpectColumnValuesToNotBeNull(column="uid"),
            gxe.ExpectColumnValuesToNotBeNull(column="listing_id"),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["uid", "listing_id"]),
            gxe.ExpectColumnValuesToBeBetween(column="bid_count", min_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="total_bid_amount", min_value=0, strict_min=True),
            # as of the run: a backfill's marts hold only the bids made by its day
            gxe.ExpectColumnValuesToBeBetween(column="last_bid_at_epoch", max_value=_p("as_of_epoch")),
            gxe.ExpectColumnValuesToBeInSet(column="category", value_set=_p("categories")),
        ],
        "inputs__dim_listings": [
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            gxe.ExpectColumnValuesToBeUnique(column="listing_id"),
            gxe.ExpectColumnValuesToNotBeNull(column="listing_id"),
            gxe.ExpectColumnValuesToBeInSet(column="category", value_set=_p("categories")),
            gxe.ExpectColumnValuesToBeBetween(column="listing_amount", min_value=0, strict_min=True),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="ends_at", column_B="listed_at"),
            gxe.ExpectColumnSumToBeBetween(column="is_open_int", min_value=1),
        ],
        "inputs__dim_users": [
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            gxe.ExpectColumnValuesToBeUnique(column="uid"),
            gxe.ExpectColumnValuesToNotBeNull(column="uid"),
            gxe.ExpectColumnValuesToNotBeNull(column="user_name"),
            gxe.ExpectColumnValuesToBeInSet(column="segment", value_set=["bidder", "cold_start", "unknown"]),
        ],
        "outputs__recommendations": [
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            gxe.ExpectColumnValuesToNotBeNull(column="uid"),
            gxe.ExpectColumnValuesToNotBeNull(column="listing_id"),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["uid", "listing_id"]),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["uid", "rank"]),
            gxe.ExpectColumnValuesToBeBetween(column="rank", min_value=1, max_value=_p("top_n")),
            gxe.ExpectColumnValuesToBeInSet(column="score_is_finite", value_set=[True]),
            gxe.ExpectColumnValuesToBeInSet(column="source", value_set=[*MODELS, "explore", "promoted"]),
            # promoted slots: only listings a running promotion promotes, at most the set number per list
            gxe.ExpectColumnValuesToBeInSet(column="promoted_without_promotion", value_set=[False]),
            gxe.ExpectColumnValuesToBeBetween(column="promoted_in_list", max_value=_p("promoted_slots")),
            gxe.ExpectColumnValuesToBeInSet(column="list_source", value_set=[*MODELS, "hybrid"]),
            gxe.ExpectColumnValuesToBeInSet(column="already_bid", value_set=[False]),
            gxe.ExpectColumnValuesToBeInSet(column="is_open", value_set=[True]),
            # the marketplace's rules (seeds/list_rules.csv, python_jobs/models/rules.py)
            gxe.ExpectColumnValuesToBeInSet(column="own_listing", value_set=[False]),
            gxe.ExpectColumnValuesToNotBeInSet(column="seller_uid", value_set=_p("suspended_sellers")),
            gxe.ExpectColumnValuesToBeBetween(column="of_seller", max_value=_p("max_per_seller")),
            gxe.ExpectColumnValuesToBeBetween(column="listing_amount", min_value=_p("min_listing_amount"),
                                              max_value=_p("max_listing_amount")),
        ],
        "outputs__user_coverage": [
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="list_size", min_value=_p("top_n"), max_value=_p("top_n")),
        ],
        "outputs__manifest": [
            gxe.ExpectTableRowCountToBeBetween(min_value=3),
            gxe.ExpectColumnValuesToBeInSet(column="kind", value_set=["recommendations", "user_index", "similar_listings", "model_lists", "listings"]),
            gxe.ExpectColumnValuesToBeUnique(column="key"),
            gxe.ExpectColumnValuesToMatchRegex(column="key", regex=_p("run_prefix_regex")),
            gxe.ExpectColumnValuesToBeBetween(column="size", min_value=0, strict_min=True),
            gxe.ExpectColumnValuesToBeBetween(column="rows", min_value=1),
            gxe.ExpectColumnValuesToMatchRegex(column="sha256", regex="^[0-9a-f]{64}$"),
            gxe.ExpectColumnValuesToMatchRegex(column="url", regex="X-Amz-Signature=[0-9a-f]{64}"),
            gxe.ExpectColumnValuesToNotBeNull(column="expires_at"),
        ],
        "outputs__similar_listings": [
            gxe.ExpectColumnValuesToNotBeNull(column="listing_id"),
            gxe.ExpectColumnValuesToNotBeNull(column="similar_listing_id"),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["listing_id", "similar_listing_id"]),
            gxe.ExpectColumnValuesToBeInSet(column="is_self", value_set=[False]),
            gxe.ExpectColumnValuesToBeBetween(column="score", min_value=-1.0001, max_value=1.0001),
            gxe.ExpectColumnValuesToBeInSet(column="similar_is_open", value_set=[True]),
        ],
    }


def suite_columns(name: str) -> list[str]:
    """The columns the suite's expectations read, in first-use order: a gate validates only these."""
    columns = []
    for expectation in suite_definitions()[name]:
        kwargs = expectation.configuration.kwargs
        for key in ("column", "column_A", "column_B"):
            if kwargs.get(key):
                columns.append(kwargs[key])
        columns += list(kwargs.get("column_list") or [])
    return list(dict.fromkeys(columns))


def write_project(root: Path) -> list[str]:
    """(Re)write every suite, validation definition and checkpoint into the GX project at `root`."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", context_root_dir=str(root))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.variables.analytics_enabled = False
    context.variables.save()
    sources = {}
    for engine, (source_name, _) in DATASOURCES.items():
        try:
            sources[engine] = context.data_sources.get(source_name)
        except Exception:
            add = context.data_sources.add_spark if engine == "spark" else context.data_sources.add_pandas
            sources[engine] = add(name=source_name)
    names = []
    for name, expectations in suite_definitions().items():
        suite = gx.ExpectationSuite(name=name, expectations=expectations)
        suite = context.suites.add_or_update(suite)
        for engine, source in sources.items():
            names.append(_checkpoint(context, source, suite, checkpoint_name(name, engine)))
    return names


def _checkpoint(context, source, suite, name: str) -> str:
    """The asset, whole-frame batch, validation definition and checkpoint `name` of `suite` on `source`."""
    try:
        asset = source.get_asset(name)
    except LookupError:
        asset = source.add_dataframe_asset(name=name)
    try:
        batch = asset.get_batch_definition("whole")
    except KeyError:
        batch = asset.add_batch_definition_whole_dataframe("whole")
    definition = context.validation_definitions.add_or_update(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=name,
            validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")],
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5},
        )
    )
    return name
