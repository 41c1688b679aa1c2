"""The Airflow DAG `encore_recs`: parses with both backends without I/O, runs on EMR (moto) and on the local stack.

AWS cannot be reached here, so EMR's control plane is moto. moto never runs a step: the
`emr_steps_end` fixture stands in for the cluster and ends each step as it is added.
Airflow itself is real: a migrated SQLite metadata database in a temporary AIRFLOW_HOME,
and `dag.test()` running every task in this process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from orchestration.stages import NAMES, STAGES
from python_jobs.stack import postgres
from python_jobs.ingest.generate import generate, write_raw

DAGS = Path(__file__).resolve().parents[1] / "orchestration" / "dags"
STAGE_TASKS = [name.replace("-", "_") for name in NAMES]


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """A real Airflow metadata database; set before the first `import airflow` of this process."""
    home = tmp_path_factory.mktemp("airflow")
    env = {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
           "ENCORE_DAG_POLL_SECONDS": "1", "ENCORE_DAG_RETRIES": "1", "ENCORE_DAG_RETRY_SECONDS": "1"}
    os.environ.update(env)
    migrated = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True,
                              timeout=300, stdin=subprocess.DEVNULL)
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    return home


def _dag(backend: str, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("ENCORE_DAG_BACKEND", backend)
    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["encore_recs"]


def _edges(dag) -> set[tuple[str, str]]:
    return {(task.task_id, down) for task in dag.tasks for down in task.downstream_task_ids}


def test_the_dag_parses_with_both_backends_without_io(airflow, monkeypatch):
    from airflow.sdk import Connection, Variable

    def refuse(*args, **kwargs):
        raise AssertionError("I/O at DAG parse time")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(Variable, "get", refuse)
    monkeypatch.setattr(Connection, "get", refuse)
    emr, local = _dag("emr", monkeypatch), _dag("local", monkeypatch)
    monkeypatch.undo()

    chain = list(zip(STAGE_TASKS, STAGE_TASKS[1:]))
    assert set(emr.task_ids) == {"run_id", "plan", "create_cluster", "start_thrift_server", *STAGE_TASKS,
                                 "history", "terminate_cluster"}
    assert set(chain) | {("create_cluster", "stage"), ("publish", "history"), ("history", "terminate_cluster"),
                         ("create_cluster", "terminate_cluster")} <= _edges(emr)
    assert emr.get_task("terminate_cluster").is_teardown and emr.get_task("history").is_teardown
    assert set(local.task_ids) == {"run_id", "begin", *STAGE_TASKS, "history", "maintain"}
    assert set(chain) | {("begin", "stage"), ("publish", "history"), ("history", "maintain")} <= _edges(local)
    assert local.get_task("maintain").trigger_rule == "all_done"
    assert local.get_task("history").trigger_rule == "all_done"  # the day is recorded whatever the stages did
    for dag in (emr, local):
        assert dag.schedule == "@daily" if isinstance(dag.schedule, str) else dag.timetable.summary == "@daily"
        assert len(dag.topological_sort()) == len(dag.tasks)  # raises on a cycle
        retries = {t: dag.get_task(t.replace("-", "_")).retries for t in NAMES}
        assert retries == {s.name: (1 if s.retry_safe else 0) for s in STAGES}


@pytest.fixture
def emr_steps_end(monkeypatch):
    """moto's cluster ends every step it is given: FAILED for the stage named in `fail`, COMPLETED otherwise."""
    import moto.emr.models as models

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("ENCORE_EMR_ARTIFACT_BUCKET", "acme-artifacts")
    monkeypatch.setenv("ENCORE_EMR_LOG_BUCKET", "acme-logs")
    monkeypatch.setenv("ENCORE_SPARK_THRIFT_SECRET_ID", "encore/spark-thrift")
    fail: list[str] = []
    add_steps = models.Cluster.add_steps

    def ending(cluster, steps):
        added = add_steps(cluster, steps)
        for step in added:
            step.state = "FAILED" if step.name.split()[0] in fail else "COMPLETED"
        return added

    monkeypatch.setattr(models.Cluster, "add_steps", ending)
    return fail


def _emr_run(dag, logical_date: datetime, calls: list[str] | None = None):
    import boto3
    import botocore.client
    from moto import mock_aws

    make_api_call = botocore.client.BaseClient._make_api_call

    def recording(client, operation, params):
        if calls is not None:
            calls.append(f"{client.meta.service_model.signing_name}:{operation}")
        return make_api_call(client, operation, params)

    with mock_aws():
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
            dag_run = dag.test(logical_date=logical_date)
        emr = boto3.client("emr", region_name="us-east-1")
        (cluster,) = emr.list_clusters()["Clusters"]
        described = emr.describe_cluster(ClusterId=cluster["Id"])["Cluster"]
        steps = emr.list_steps(ClusterId=cluster["Id"])["Steps"][::-1]  # oldest first
        states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    return dag_run, described, steps, states


def test_a_daily_run_on_emr_creates_runs_every_stage_and_terminates(airflow, monkeypatch, emr_steps_end):
    dag = _dag("emr", monkeypatch)
    calls: list[str] = []
    dag_run, cluster, steps, states = _emr_run(dag, datetime(2026, 11, 22, tzinfo=timezone.utc), calls)
    run_id = "20261122T000000Z-daily"

    assert dag_run.state == "success", states
    assert cluster["Name"] == f"encore-recs-{run_id}" and cluster["Status"]["State"] == "TERMINATED"
    assert {"Key": "run_id", "Value": run_id} in cluster["Tags"]
    names = [s["Name"] for s in steps]
    assert "spark thrift server" in names  # beside the stages, in any order
    # the run recorded in the history after the stages, then the lake's upkeep, before teardown
    assert names[-2:] == [f"history {run_id}", f"maintain {run_id}"]
    stage_steps = [s for s in steps if s["Name"] not in ("spark thrift server", f"history {run_id}",
                                                         f"maintain {run_id}")]
    assert [s["Name"] for s in stage_steps] == [f"{name} {run_id}" for name in NAMES]
    for step in stage_steps:
        assert step["Config"]["Args"][-2:] == ["--run-id", run_id]
        # as of the logical date: the first step creates the run's state with it
        assert "ENCORE_AS_OF=2026-11-22T00:00:00+00:00" in " ".join(step["Config"]["Args"])
        assert step["Status"]["State"] == "COMPLETED"
    # the MWAA execution role allows every AWS call the DAG made, and nothing but EMR and passing its roles
    policy = json.loads((DAGS.parents[0] / "aws" / "iam" / "mwaa-execution.json").read_text())
    allowed = {a for st in policy["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
    made = set(calls)
    assert "elasticmapreduce:RunJobFlow" in made and made <= allowed, made - allowed


def test_a_failed_step_stops_the_day_and_still_terminates_the_cluster(airflow, monkeypatch, emr_steps_end):
    from helpers.webhook import webhook

    emr_steps_end.append("train")
    dag = _dag("emr", monkeypatch)
    with webhook() as (url, received):
        monkeypatch.setenv("ENCORE_ALERT_WEBHOOK", url)
        dag_run, cluster, steps, states = _emr_run(dag, datetime(2026, 11, 21, tzinfo=timezone.utc))
    # on_failure_callback: one alert, for the stage that failed for good (not its retry, not the skipped rest)
    assert [(a["stage"], a["run_id"]) for a in received] == [("train", "20261121T000000Z-daily")], received

    assert dag_run.state == "failed"
    assert cluster["Status"]["State"] == "TERMINATED" and states["terminate_cluster"] == "success"
    submitted = [s["Name"].split()[0] for s in steps]
    assert submitted.count("train") == 2  # retried once (ENCORE_DAG_RETRIES=1), then the day fails
    assert "validate-outputs" not in submitted and "publish" not in submitted
    assert submitted[-2:] == ["history", "maintain"] and states["history"] == "success"  # the failed day too
    assert states["train"] == "failed"
    assert states["validate_outputs"] == states["publish"] == "upstream_failed"


def test_a_backfill_on_the_local_backend_publishes_as_of_its_day(airflow, monkeypatch, stack, s3, spark):
    """A backfill of a day ten days ago: every stage its own process, and the run is as of its logical date, so
    the lists hold only listings that were open that day and the marts know only the bids made by then. It is
    published beside the served run, which stays served: that one is as of a newer time."""
    import pandas as pd

    from helpers.publish_run import synthetic_lists
    from python_jobs.publish.publish import publish, read_latest
    from python_jobs.runs.run_ids import new_run_id
    from python_jobs.runs.run_state import RunState

    served = new_run_id()
    publish(stack, served, *synthetic_lists(spark, 10, 2)[:2], {"metrics": {}, "checkpoints": []}, engine="local")
    market = generate(150, seed=5)
    write_raw(postgres.pg_dsn(stack), market)
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    day = today - pd.Timedelta(days=10).to_pytimedelta()
    dag = _dag("local", monkeypatch)
    dag_run = dag.test(logical_date=day)
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}

    assert dag_run.state == "success", states
    run_id = day.strftime("%Y%m%dT%H%M%SZ") + "-daily"
    state = RunState.load(stack, run_id, create=False).data
    assert [s["stage"] for s in state["steps"]] == list(NAMES)
    assert all(s["status"] == "ok" for s in state["steps"])
    assert len({s["pid"] for s in state["steps"]}) == len(NAMES)  # every stage its own process
    assert read_latest(stack)["run_id"] == served and state["latest"] == {
        "moved": False, "run_id": served, "as_of": read_latest(stack)["as_of"]}
    assert datetime.fromisoformat(state["as_of"]) == day and state["backfill"]

    listings = market.listings.set_index("listing_id")
    open_then = set(listings.index[(listings["listed_at"] <= day) & (listings["ends_at"] > day)])
    open_now = set(listings.index[listings["ends_at"] > datetime.now(timezone.utc)])
    listed = set()
    for key in (o["Key"] for o in s3.list_objects_v2(Bucket=stack.publish_bucket,
                                                   Prefix=f"runs/{run_id}/recommendations/")["Contents"]):
        for line in s3.get_object(Bucket=stack.publish_bucket, Key=key)["Body"].read().decode().splitlines():
            listed |= {item["listing_id"] for item in json.loads(line)["recommendations"]}
    assert listed and listed <= open_then  # today's open listings were not yet listed, or were not open then
    assert open_now - open_then  # ... and there are such listings, so the check could fail
    spark.catalog.refreshTable("marts.fct_user_item_interactions")
    last_bid = spark.table("marts.fct_user_item_interactions").agg({"last_bid_at": "max"}).first()[0]
    assert last_bid.replace(tzinfo=timezone.utc) <= day < market.bids["bid_at"].max()
