"""The data team's morning (issue 20): every run's history as dbt marts, the champion-challenger gate before
publish, and the morning report across runs, looked at in Chromium."""

from __future__ import annotations

import dataclasses
import json

import pytest
from helpers.webhook import webhook

from python_jobs.errors import GateFailed, UserError
from python_jobs.infra.s3 import delete_prefix, s3_client
from python_jobs.ingest.generate import generate, write_raw
from python_jobs.stack import postgres

USERS = 200


@pytest.fixture(scope="module")
def gated(stack):
    """The gate on, at its default 5%."""
    return dataclasses.replace(stack, max_quality_drop=0.05)


@pytest.fixture(scope="module")
def three_runs(gated, spark):
    from orchestration.local_runner import run_pipeline

    # the history of these runs only: the session's earlier modules publish with the gate off
    delete_prefix(s3_client(gated), gated.lake_bucket, "history/")
    write_raw(postgres.pg_dsn(gated), generate(USERS, seed=31))
    return [run_pipeline(gated, log=lambda _: None) for _ in range(3)]


def test_three_runs_give_three_rows_per_stage_and_dbt_test_passes(three_runs, gated, spark):
    from python_jobs.history.history_job import build_marts

    ids = [s["run_id"] for s in three_runs]
    listed = ", ".join(f"'{i}'" for i in ids)
    per_stage = {r.stage: r.n for r in spark.sql(
        f"select stage, count(*) as n from run_history.run_history_stages where run_id in ({listed}) group by stage"
    ).collect()}
    assert per_stage == {stage: 3 for stage in ("stage", "extract", "events", "marts", "validate-inputs", "train",
                                                "validate-outputs", "publish")}
    runs = {r.run_id: r for r in spark.sql(f"select * from run_history.run_history_runs where run_id in ({listed})")
            .collect()}
    assert {r.status for r in runs.values()} == {"published"}
    # the second and third runs were judged against the one before, the same configuration: no drop at all
    assert runs[ids[2]].champion_run == ids[1] and runs[ids[2]].quality_drop == 0 and runs[ids[2]].gate_outcome == "pass"
    assert runs[ids[0]].hybrid_ndcg == pytest.approx(three_runs[0]["evaluation"]["metrics"]["hybrid"]["ndcg"])
    metrics = spark.sql(f"select count(*) as n from run_history.run_history_metrics where run_id = '{ids[0]}' "
                        "and model = 'hybrid' and segment = 'all' and metric = 'ndcg'").first().n
    assert metrics == 1
    # what each run read: its marts' snapshots, tagged run-<id> as the runs published
    snapshots = spark.sql(f"select run_id, table_name, snapshot_id, tag from run_history.run_history_snapshots "
                          f"where run_id in ({listed})").collect()
    assert {r.run_id for r in snapshots} == set(ids) and all(r.tag == f"run-{r.run_id}" for r in snapshots)
    assert {r.table_name for r in snapshots} >= {"marts.fct_user_item_interactions", "marts.dim_listings"}
    build_marts(gated, "spark")  # the marts' tests and the gate's test pass on these runs (raises otherwise)


def test_dbt_test_fails_when_a_regression_beyond_the_threshold_is_planted(three_runs, gated, s3):
    from python_jobs.history.history_job import build_marts

    planted = "20000102T000000Z-planted"
    row = {"run_id": planted, "status": "published", "champion_run": three_runs[0]["run_id"], "champion_ndcg": 0.40,
           "challenger_ndcg": 0.30, "quality_drop": 0.25, "max_quality_drop": 0.05, "accepted_by": None}
    key = f"history/runs/{planted}.json"
    s3.put_object(Bucket=gated.lake_bucket, Key=key, Body=(json.dumps(row) + "\n").encode())
    try:
        with pytest.raises(UserError, match="assert_no_unaccepted_quality_regression: fail"):
            build_marts(gated, "spark")
        s3.put_object(Bucket=gated.lake_bucket, Key=key,
                      Body=(json.dumps({**row, "accepted_by": "maria"}) + "\n").encode())
        build_marts(gated, "spark")  # accepted by someone: the test holds
    finally:
        s3.delete_object(Bucket=gated.lake_bucket, Key=key)
        build_marts(gated, "spark")


def test_dbt_test_fails_when_the_served_lists_break_a_rule_made_since(three_runs, gated, spark):
    """The latest published run's lists pass the rules check; a seller of one of them suspended since (a row in
    the Spark copy of the rules seed) fails it, and lifting the suspension passes it again."""
    from python_jobs.history.history_job import build_marts

    latest = three_runs[-1]["run_id"]
    seller = spark.sql(f"select d.seller_uid from recs.recommendations r join recs.listing_details d "
                       f"on d.run_id = r.run_id and d.listing_id = r.listing_id where r.run_id = '{latest}' "
                       "and d.seller_uid is not null limit 1").first().seller_uid
    spark.sql(f"insert into staging.list_rules values ('suspended_seller', {seller}, 'planted by a test')")
    try:
        with pytest.raises(UserError, match="assert_published_lists_obey_the_rules: fail"):
            build_marts(gated, "spark")
    finally:
        spark.sql("delete from staging.list_rules where why = 'planted by a test'")
    build_marts(gated, "spark")


def test_a_run_made_worse_is_refused_and_published_only_when_accepted(three_runs, gated, spark, monkeypatch):
    from orchestration.local_runner import run_pipeline
    from python_jobs.publish.publish import read_latest
    from python_jobs.runs.run_state import RunState

    champion = three_runs[-1]["run_id"]
    worse = dataclasses.replace(gated, models=("popularity",))  # a setting that leaves only popularity to blend
    with webhook() as (url, alerts):
        monkeypatch.setenv("ENCORE_ALERT_WEBHOOK", url)
        with pytest.raises(GateFailed) as refused:
            run_pipeline(worse, log=lambda _: None)
        monkeypatch.delenv("ENCORE_ALERT_WEBHOOK")
    line = str(refused.value)
    assert [(a["stage"], a["reason"].split(":")[0]) for a in alerts] == [("publish", "publish")]  # one message
    assert line.startswith("publish refused: today's hybrid ndcg@10 ") and f"(run {champion})" in line
    state = RunState.load(gated, line.split("--run-id ")[1].split()[0], create=False).data
    gate = state["quality_gate"]
    assert f"{gate['challenger_ndcg']:.4f}" in line and f"{gate['champion_ndcg']:.4f}" in line
    assert gate["drop"] > 0.05 and state["published"] is False
    assert read_latest(gated)["run_id"] == champion  # latest stays on the champion

    monkeypatch.setenv("ENCORE_OPERATOR", "maria")
    accepted = run_pipeline(dataclasses.replace(worse, accept_regression=True), log=lambda _: None,
                            run_id=state["run_id"], start="publish")
    assert read_latest(gated)["run_id"] == state["run_id"]
    assert accepted["quality_gate"]["outcome"] == "regression accepted"
    assert accepted["quality_gate"]["accepted_by"] == "maria" and "refused" not in accepted
    row = spark.sql(f"select status, accepted_by from run_history.run_history_runs where run_id = '{state['run_id']}'"
                    ).first()
    assert (row.status, row.accepted_by) == ("published", "maria")


def test_the_morning_report_shows_the_run_history(three_runs, gated, chromium, tmp_path):
    from python_jobs.history import morning_report, run_history

    index = morning_report.write(gated)
    history = run_history.read_last(gated, morning_report.LAST)
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(index.as_uri())
    shot = tmp_path / "morning-report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000  # a page with a table and charts, not a blank one

    shown = page.eval_on_selector_all("#runs tr[data-run]", "rows => rows.map(r => r.dataset.run)")
    assert shown == sorted((r["run_id"] for r in history["runs"]), reverse=True)  # newest first, every run
    statuses = dict(zip(shown, page.eval_on_selector_all("#runs tr[data-run] td.status",
                                                         "cells => cells.map(c => c.textContent)")))
    for run in history["runs"]:
        assert statuses[run["run_id"]].startswith(run["status"])
    bars = page.eval_on_selector_all("#durations g[data-run]", "segments => segments.length")
    assert bars == sum(1 for s in history["run_stages"] if s["run_id"] in shown)
    assert page.locator("#headline").inner_text().startswith(f"Latest run {shown[0]}")
    first_report = page.locator(f"#runs tr[data-run='{three_runs[0]['run_id']}'] a").first
    assert first_report.get_attribute("href") == f"../runs/{three_runs[0]['run_id']}/report.html"
    page.close()


def test_the_history_step_says_its_time_on_its_own_line_and_keeps_it_in_the_run(stack):
    """Issue 26, defect 6: the history step's seconds were in the run's wall time and in no line or record."""
    from python_jobs.history import history_job
    from python_jobs.runs.run_ids import new_run_id
    from python_jobs.runs.run_state import RunState

    run_id = new_run_id()
    RunState(stack, run_id, {"run_id": run_id, "as_of": "2026-12-06T08:00:00+00:00", "steps": [],
                             "status": "ok"}).save()
    lines = []
    done = history_job.after_run(stack, run_id, lines.append, build=False)
    assert done["warnings"] == 0, lines
    assert lines[0].startswith(f"[{run_id}] history: ") and lines[-1].startswith(f"[{run_id}] history done in ")
    kept = RunState.load(stack, run_id, create=False).data["history"]
    assert kept["warnings"] == 0 and kept["seconds"] >= 0 and f"done in {kept['seconds']:.1f}s" in lines[-1]


def test_the_history_marts_build_parses_the_dbt_project_at_most_once(stack, spark):
    """Issue 26, defect 6: its two dbt calls passed different vars, so dbt parsed the whole project twice (about
    3 s each, and `encore-recs history` alone took 44 s)."""
    from python_jobs.history import history_job, run_history
    from python_jobs.runs.run_ids import new_run_id

    run_id = new_run_id()
    run_history.record(stack, {"run_id": run_id, "as_of": "2026-12-06T08:00:00+00:00", "steps": [], "status": "ok"})
    log = stack.state_dir / "dbt-logs" / "dbt.log"
    before = log.stat().st_size if log.exists() else 0
    assert history_job.build_marts(stack, "spark") > 0
    with log.open(errors="replace") as lines:
        lines.seek(before)
        full_parses = [line for line in lines if "Unable to do partial parsing" in line]
    assert len(full_parses) <= 1, full_parses
