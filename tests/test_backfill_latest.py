"""A backfill publishes its own run but does not take over what the app is served (issue 26, defect 2): `latest`
moves only to a run as of a newer time than the served run's, or when the publish is told to take it."""

import json
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from python_jobs.history.morning_report import render
from python_jobs.publish.publish import publish, read_latest, run_prefix
from python_jobs.quality.quality_gate import champion_config
from python_jobs.runs.run_ids import new_run_id
from python_jobs.runs.run_state import RunState


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_backfill_is_published_beside_the_served_run_and_latest_stays(stack, spark, s3):
    from helpers.publish_run import synthetic_lists

    recs, similar, model_recs, listings = synthetic_lists(spark, 20, 2)
    keep_one = replace(stack, keep_runs=1)  # prune as hard as it can: the served run and the newest published stay

    def published(run_id: str, as_of: datetime, **flags):
        return publish(keep_one, run_id, recs, similar, {"metrics": {}, "checkpoints": []}, model_recs=model_recs,
                       listings=listings, engine="local", as_of=as_of, **flags)

    now = datetime.now(timezone.utc).replace(microsecond=0)
    served_id = new_run_id()
    assert published(served_id, now)[2] == {"moved": True, "run_id": served_id, "as_of": _iso(now)}
    # the served run is the champion the quality gate compares with
    RunState(stack, served_id, {"run_id": served_id, "as_of": now.isoformat(), "steps": [], "evaluation": {
        "params": {"rank": 8}, "models": ["als"], "blend": {"weights": {"all": {"als": 1.0}}}}}).save()

    day = now - timedelta(days=8)
    backfill_id = f"{day:%Y%m%dT%H%M%SZ}-backfill"
    manifest, _, served = published(backfill_id, day)
    assert served == {"moved": False, "run_id": served_id, "as_of": _iso(now)}
    assert read_latest(stack)["run_id"] == served_id
    assert champion_config(stack)["run_id"] == served_id
    # the backfill's run is published all the same, and pruning (by publish time, not by its old id) keeps it
    kept = json.loads(s3.get_object(Bucket=stack.publish_bucket, Key=run_prefix(backfill_id) + "manifest.json")
                      ["Body"].read())
    assert kept["run_id"] == backfill_id and kept["as_of"] == _iso(day) == manifest["as_of"]

    # told to, it takes `latest`; then a run as of a newer day than that backfill's takes it back
    assert published(backfill_id, day, take_latest=True)[2]["moved"]
    assert read_latest(stack)["run_id"] == backfill_id and read_latest(stack)["as_of"] == _iso(day)
    newer_id = new_run_id()
    assert published(newer_id, day + timedelta(days=1))[2] == {
        "moved": True, "run_id": newer_id, "as_of": _iso(day + timedelta(days=1))}
    assert read_latest(stack)["run_id"] == newer_id


def test_the_morning_report_names_the_served_run():
    runs = [{"run_id": "20261206T080000Z-today", "status": "published", "as_of": "2026-12-06T08:00:00+00:00"},
            {"run_id": "20261206T090000Z-back", "status": "published", "as_of": "2026-11-28T00:00:00+00:00",
             "backfill": True}]
    page = render({"runs": runs}, lambda run_id, kind: None,
                  {"run_id": "20261206T080000Z-today", "as_of": "2026-12-06T08:00:00Z"})
    assert "The app is served run <b>20261206T080000Z-today</b>, as of 2026-12-06T08:00:00Z." in page
    assert "20261206T080000Z-today <b>(served)</b>" in page and "back <b>(served)</b>" not in page


def test_take_latest_is_refused_on_a_stage_that_does_not_publish():
    result = subprocess.run([sys.executable, "-m", "python_jobs.cli", "step", "train", "--run-id",
                             "20261206T080000Z-abc", "--take-latest"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "encore-recs: error: --take-latest moves `latest` when a run is published: use it with `step publish`, "
        "not `step train`"]
