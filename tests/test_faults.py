"""Faults a daily run meets: the S3 server gone mid-stage fails the stage in bounded time, with its state on record
(issue 21 D1, D3), and the next run, the store back, succeeds without cleanup."""

import time

import pytest

from python_jobs.stack import postgres, s3_server
from python_jobs.errors import UserError
from python_jobs.runs.run_state import RunState


@pytest.fixture()
def s3_down(stack):
    s3_server.stop_s3(stack)
    yield
    s3_server.start_s3(stack)


def test_a_spark_read_fails_within_a_bound_when_the_store_is_gone(spark, stack, s3_down):
    began = time.time()
    with pytest.raises(Exception):  # noqa: B017 - Spark's wrapper of the connection error; the bound is the point
        spark.read.parquet(f"s3a://{stack.lake_bucket}/warehouse/never-there-{time.time_ns()}").count()
    assert time.time() - began < 120  # S3A's defaults retried a refused connection for ~11 minutes


def test_the_runs_state_is_on_record_when_the_store_is_gone(stack, s3_down):
    state = RunState(stack, "20261203T120000Z-outage", {"run_id": "20261203T120000Z-outage", "steps": [
        {"stage": "marts", "status": "failed"}]})
    began = time.time()
    with pytest.raises(UserError, match=r"saved at .*summary.json but not in the lake .*--from marts"):
        state.save()
    assert time.time() - began < 60
    assert '"status": "failed"' in (state.dir / "summary.json").read_text()


def test_the_next_run_succeeds_once_the_store_is_back(stack, spark):
    from orchestration.local_runner import run_pipeline
    from python_jobs.ingest.generate import generate, write_raw

    write_raw(postgres.pg_dsn(stack), generate(150, seed=5))
    assert run_pipeline(stack, log=lambda _: None)["status"] == "ok"
