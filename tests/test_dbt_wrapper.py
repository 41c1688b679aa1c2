"""`encore-recs dbt` passes any subcommand the data team uses; results of every shape are read without a crash."""

import json

import pytest

from python_jobs.infra.dbt_runner import run_dbt


@pytest.mark.parametrize("args", [
    ["debug", "--target", "pg"],
    ["ls", "--target", "pg", "--select", "path:models/staging"],
    ["compile", "--target", "pg", "--select", "stg_raw__bids"],
    ["seed", "--target", "pg"],
    ["source", "freshness", "--target", "pg", "--select", "source:raw.users"],
])
def test_subcommands_on_postgres(stack, args):
    from python_jobs.ingest.generate import generate, write_raw
    from python_jobs.stack.postgres import pg_dsn

    if args[0] == "source":
        write_raw(pg_dsn(stack), generate(50, seed=3))
    run_dbt(stack, args)


def test_docs_generate_on_the_spark_session_writes_the_catalog(stack, spark):
    target = stack.state_dir / "dbt-target" / "spark"
    assert run_dbt(stack, ["docs", "generate", "--target", "spark"]) == []
    catalog = json.loads((target / "catalog.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    assert "exposure.encore.published_recommendations" in manifest["exposures"]
    assert "nodes" in catalog
    upstream, todo = set(), ["exposure.encore.published_recommendations"]
    while todo:  # the docs' lineage: from the published JSON back to every source
        for parent in manifest["parent_map"].get(todo.pop(), []):
            if parent not in upstream:
                upstream.add(parent)
                todo.append(parent)
    assert {"source.encore.events.bronze_app_events", "model.encore.stg_events__app_events",
            "model.encore.fct_user_item_events", "source.encore.raw.bids"} <= upstream


def test_a_failing_dbt_command_is_one_user_error(stack):
    from python_jobs.errors import UserError

    with pytest.raises(UserError, match="^dbt compile --target pg --select nothing_here failed|^dbt compile"):
        run_dbt(stack, ["compile", "--target", "pg", "--select", "nothing_here", "--fail-fast", "--no-partial-parse",
                        "--vars", "{not yaml"])
