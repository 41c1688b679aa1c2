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


def test_env_for_one_dbt_call_is_gone_after_it_even_when_it_fails(monkeypatch):
    """The marts' as-of and the history gate's setting reach dbt as env vars for their call only: left set, the
    gate's 5% leaked into every later run of the process (and its subprocesses), and a backfill's as-of into a
    later build of the marts."""
    import os

    from python_jobs.config import Settings
    from python_jobs.infra import dbt_runner

    seen = []

    def invoke(settings, args, quiet):
        seen.append((os.environ.get("ENCORE_DBT_AS_OF"), os.environ.get("ENCORE_MAX_QUALITY_DROP")))
        if args == ["fail"]:
            raise RuntimeError("dbt failed")
        return []

    monkeypatch.setattr(dbt_runner, "_invoke", invoke)
    monkeypatch.delenv("ENCORE_DBT_AS_OF", raising=False)
    monkeypatch.setenv("ENCORE_MAX_QUALITY_DROP", "1")
    settings = Settings.from_env()
    dbt_runner.run_dbt(settings, ["ok"], env={"ENCORE_DBT_AS_OF": "2026-12-01 00:00:00",
                                               "ENCORE_MAX_QUALITY_DROP": "0.05"})
    with pytest.raises(RuntimeError):
        dbt_runner.run_dbt(settings, ["fail"], env={"ENCORE_DBT_AS_OF": "2026-12-02 00:00:00"})
    assert seen == [("2026-12-01 00:00:00", "0.05"), ("2026-12-02 00:00:00", "1")]
    assert "ENCORE_DBT_AS_OF" not in os.environ and os.environ["ENCORE_MAX_QUALITY_DROP"] == "1"
