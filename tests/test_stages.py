"""Stages as jobs: a failed run resumes from its failed stage; one stage runs as its own process; the catalog is checked."""

import dataclasses
import os
import subprocess
import sys

import psycopg2
import pytest
from helpers.webhook import webhook

from orchestration.stages import NAMES
from python_jobs.stack import postgres
from python_jobs.errors import UserError
from python_jobs.ingest.generate import generate, write_raw
from python_jobs.publish.publish import read_latest
from python_jobs.runs.run_state import RunState, check_run_id

USERS = 200


def _cli(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "python_jobs.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def failed_in_train(stack, spark):
    """A run whose train stage fails (ALS rank 0), and its recorded state; the alert webhook is a local server."""
    from orchestration.local_runner import run_pipeline

    write_raw(postgres.pg_dsn(stack), generate(USERS, seed=21))
    broken = dataclasses.replace(stack, tuning_grid={"rank": [0]})
    run_id = "20261124T090000Z-resume"
    with webhook() as (url, received):
        os.environ["ENCORE_ALERT_WEBHOOK"] = url
        try:
            with pytest.raises(Exception, match="rank"):
                run_pipeline(broken, log=lambda line: None, run_id=run_id)
        finally:
            del os.environ["ENCORE_ALERT_WEBHOOK"]
    return run_id, RunState.load(stack, run_id, create=False).data, received


def test_a_failed_run_sends_one_alert_naming_stage_run_and_reason(failed_in_train):
    run_id, state, received = failed_in_train
    assert len(received) == 1
    alert = received[0]
    assert (alert["run_id"], alert["stage"]) == (run_id, "train") and alert["reason"] == state["error"]
    assert alert["text"].startswith(f"encore-recs run {run_id} failed in train: ") and "summary.json" in alert["report"]


def test_an_unreachable_webhook_is_a_warning_not_a_failure(capsys):
    import socket
    import time

    from python_jobs.history import alerts

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once the socket closes
    began = time.time()
    assert alerts.send(f"http://127.0.0.1:{port}/hook", "20261203T000000Z-alert0", "marts", "boom") is False
    assert time.time() - began < 10
    assert "warning: the alert for run 20261203T000000Z-alert0 was not delivered" in capsys.readouterr().err


def test_a_failed_stage_is_recorded_with_the_stages_before_it(failed_in_train):
    _, state, _ = failed_in_train
    assert state["status"] == "failed" and state["error"].startswith("train:")
    assert [(s["stage"], s["status"]) for s in state["steps"]] == [
        ("stage", "ok"), ("extract", "ok"), ("events", "ok"), ("marts", "ok"), ("validate-inputs", "ok"), ("train", "failed")]


def test_resume_from_train_publishes_without_rerunning_earlier_stages(failed_in_train, stack):
    from orchestration.local_runner import run_pipeline

    run_id, before, _ = failed_in_train
    lines = []
    summary = run_pipeline(stack, log=lines.append, run_id=run_id, start="train")
    assert summary["status"] == "ok"
    assert read_latest(stack)["run_id"] == run_id
    earlier = {s["stage"]: s["finished_at"] for s in before["steps"] if s["status"] == "ok"}
    after = {s["stage"]: s["finished_at"] for s in summary["steps"]}
    assert {name: after[name] for name in earlier} == earlier
    assert list(after) == list(NAMES)
    assert not any("dbt staging" in line or "dbt marts" in line for line in lines)


def test_one_stage_runs_as_its_own_process_and_is_idempotent(failed_in_train, stack):
    run_id, _, _ = failed_in_train
    for _ in range(2):
        result = _cli("step", "validate-outputs", "--run-id", run_id)
        assert result.returncode == 0, result.stderr[-2000:]
    state = RunState.load(stack, run_id, create=False).data
    step = next(s for s in state["steps"] if s["stage"] == "validate-outputs")
    assert step["status"] == "ok" and step["pid"] != os.getpid()
    assert [c["checkpoint"] for c in state["checkpoints"]].count("outputs__recommendations") == 1


def test_resume_refuses_when_an_earlier_stage_did_not_finish(stack):
    result = _cli("run", "--run-id", "20261124T090000Z-nostate", "--from", "train")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "encore-recs: error: run 20261124T090000Z-nostate has no recorded state in "
        f"s3://{stack.lake_bucket}/runs/; start it from the first stage"]


@pytest.mark.parametrize("bad", ["../../etc", "latest", "20261124T090000Z-UPPER", "20261399T000000Z-x", ""])
def test_run_ids_outside_the_format_are_refused(bad):
    with pytest.raises(UserError, match="is not valid|real UTC time"):
        check_run_id(bad)


def _metastore_db(stack, name: str, version: str | None) -> None:
    conn = psycopg2.connect(host="127.0.0.1", port=stack.pg_port, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"drop database if exists {name}")
        cur.execute(f"create database {name}")
    conn.close()
    if version is not None:
        with psycopg2.connect(host="127.0.0.1", port=stack.pg_port, user="postgres", dbname=name) as conn:
            with conn.cursor() as cur:
                cur.execute('create table "VERSION" ("VER_ID" bigint, "SCHEMA_VERSION" varchar(127), "VERSION_COMMENT" varchar(255))')
                cur.execute('insert into "VERSION" values (1, %s, %s)', (version, "an older Hive"))


def test_a_metastore_of_the_wrong_version_stops_a_stage_with_one_line(stack):
    _metastore_db(stack, "metastore_old", "1.2.0")
    result = _cli("step", "validate-inputs", "--run-id", "20261124T090000Z-resume",
                  env={"ENCORE_METASTORE_DB": "metastore_old"}, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["encore-recs: error: the Hive metastore in database metastore_old has schema 1.2.0, Spark needs "
                     "2.3.0; point ENCORE_METASTORE_DB at a database of that version or an empty one"], lines


def test_a_missing_metastore_schema_refuses_to_start_spark(stack):
    from python_jobs.stack.metastore import check_schema

    _metastore_db(stack, "metastore_empty", None)
    with pytest.raises(UserError, match="^the Hive metastore schema is missing in database metastore_empty"):
        check_schema(dataclasses.replace(stack, metastore_db="metastore_empty"))
    with pytest.raises(UserError, match="metastore_absent .* is unreachable .*does not exist"):
        check_schema(dataclasses.replace(stack, metastore_db="metastore_absent"))


def test_tables_are_recorded_in_the_postgres_metastore(stack, spark):
    spark.sql("create database if not exists scratch location 's3a://%s/warehouse/scratch.db'" % stack.lake_bucket)
    spark.createDataFrame([(1, "a")], "id int, v string").write.mode("overwrite").saveAsTable("scratch.kept")
    conn = psycopg2.connect(host="127.0.0.1", port=stack.pg_port, user="postgres", dbname=stack.metastore_db)
    with conn, conn.cursor() as cur:
        cur.execute('select t."TBL_NAME" from "TBLS" t join "DBS" d on d."DB_ID" = t."DB_ID" where d."NAME" = %s',
                    ("scratch",))
        assert ("kept",) in cur.fetchall()
    conn.close()


def test_a_second_run_on_the_same_state_refuses_at_once_naming_the_first(stack):
    """D4: two runs at once raced on the catalog; now the second says which run holds the state folder."""
    from orchestration.local_runner import run_pipeline
    from python_jobs.errors import UserError
    from python_jobs.runs.run_lock import one_run

    with one_run(stack.state_dir, "20261203T000000Z-first1"):
        with pytest.raises(UserError, match=r"run 20261203T000000Z-first1 \(pid \d+\) is in progress"):
            run_pipeline(stack, log=lambda _: None, run_id="20261203T000001Z-second")
    assert not (stack.runs_dir / "20261203T000001Z-second").exists()  # refused before writing anything
    with one_run(stack.state_dir, "20261203T000002Z-third1"):  # a lock whose run ended is free again
        pass


def test_a_table_folder_left_without_its_table_does_not_stop_the_next_run(failed_in_train, stack, spark, s3):
    """D2: a crash between dropping a table and deleting its folder left LOCATION_ALREADY_EXISTS for every later
    run; the stages now clear such folders before creating tables."""
    from orchestration.local_runner import run_pipeline

    run_id, _, _ = failed_in_train
    orphans = {"marts": "fct_user_item_interactions", "recs": "similar_listings", "events": "bronze_app_events"}
    for database, table in orphans.items():
        spark.sql(f"drop table if exists {database}.{table}")  # the catalog entry and the folder go ...
        s3.put_object(Bucket=stack.lake_bucket, Key=f"warehouse/{database}.db/{table}/part-00000.parquet",
                      Body=b"left by a crash")  # ... and the crash leaves a folder behind
    summary = run_pipeline(stack, log=lambda _: None, run_id=run_id, start="events")
    assert summary["status"] == "ok"
    assert all(spark.catalog.tableExists(f"{d}.{t}") for d, t in orphans.items())
    assert spark.table("marts.fct_user_item_interactions").count() > 0
