"""The Airflow DAG `encore_recs`, built from the one stage list for either backend.

- `emr` (production, MWAA): a transient EMR cluster per run. plan -> create the
  cluster -> one task per stage, each submitting the stage's EMR step and
  waiting for it (its sensor) -> terminate the cluster as a teardown, so the
  cluster ends even when a step fails and the DAG run still ends failed.
- `local`: the same stages as processes against the local stack (`encore-recs
  step`, or spark-submit to the local cluster when it is up).

The run id comes from the logical date, so a retry or a re-run of a day is the
same run. Nothing is read at parse time: no Variables, no Connections, no AWS
call; EMR settings are read from the environment inside the `plan` task.
A stage marked retry-safe is retried with exponential back-off; a retry
submits the stage again on the same cluster (a separate sensor could not).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, chain, task

from orchestration.stages import STAGES, Stage

DAG_ID = "encore_recs"
BACKENDS = ("emr", "local")


def task_id(stage: Stage) -> str:
    return stage.name.replace("-", "_")


def _retries(stage: Stage, retries: int, retry_seconds: int) -> dict:
    if not stage.retry_safe:
        return {"retries": 0}
    return {"retries": retries, "retry_delay": timedelta(seconds=retry_seconds), "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=30)}


@task(task_id="run_id")
def encore_run_id(logical_date=None, dag_run=None) -> str:
    """The pipeline's run id (not Airflow's): from the logical date, or the trigger time of a manual run."""
    from python_jobs.runs.run_ids import scheduled_run_id

    return scheduled_run_id(logical_date or dag_run.run_after)


def alert_on_failure(context) -> None:
    """A task that failed for good: one message to ENCORE_ALERT_WEBHOOK (stage, run id, reason, where to look)."""
    from python_jobs.history import alerts

    ti = context["ti"]
    run_id = ti.xcom_pull(task_ids="run_id") or context.get("run_id", "unknown")
    reason = (str(context.get("exception") or "failed").strip().splitlines() or ["failed"])[0]
    alerts.from_environment(run_id, ti.task_id, reason, getattr(ti, "log_url", None))


def build_dag(backend: str, poll_seconds: int = 60, retries: int = 2, retry_seconds: int = 120) -> DAG:
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    with DAG(
        dag_id=DAG_ID,
        description=f"Encore recommendations, every stage on {backend}",
        schedule="@daily",
        start_date=datetime(2026, 11, 1),
        catchup=False,
        max_active_runs=1,
        tags=["encore", backend],
        default_args={"owner": "data", "retries": 0, "on_failure_callback": alert_on_failure},
    ) as dag:
        run = encore_run_id()
        if backend == "emr":
            _emr_tasks(run, poll_seconds, _retry(retries, retry_seconds))
        else:
            _local_tasks(run, _retry(retries, retry_seconds))
    return dag


def _retry(retries: int, retry_seconds: int):
    return lambda stage: _retries(stage, retries, retry_seconds)


def _emr_tasks(run, poll_seconds: int, retry) -> None:
    from airflow.providers.amazon.aws.operators.emr import (
        EmrAddStepsOperator,
        EmrCreateJobFlowOperator,
        EmrTerminateJobFlowOperator,
    )

    @task(multiple_outputs=True)
    def plan(encore_run: str) -> dict:
        from orchestration.emr import EmrSettings, history_step, job_flow, maintain_step, stage_steps, thrift_step

        from python_jobs.runs.run_ids import run_time

        settings = EmrSettings.from_env(os.environ)
        # the first step creates the run's state as of the logical date (a backfill means its day)
        environment = {**settings.environment, "ENCORE_AS_OF": run_time(encore_run).isoformat()}
        steps = dict(zip([task_id(s) for s in STAGES], stage_steps(encore_run, environment)))
        return {"job_flow": job_flow(settings, encore_run), "thrift": [thrift_step(settings)],
                "history": [history_step(encore_run, environment), maintain_step(encore_run, environment)],
                **{f"step_{name}": [step] for name, step in steps.items()}}

    planned = plan(run)
    create = EmrCreateJobFlowOperator(task_id="create_cluster", job_flow_overrides=planned["job_flow"],
                                      emr_conn_id=None)
    thrift = EmrAddStepsOperator(task_id="start_thrift_server", job_flow_id=create.output, steps=planned["thrift"])
    stage_tasks = [
        EmrAddStepsOperator(task_id=task_id(stage), job_flow_id=create.output, steps=planned[f"step_{task_id(stage)}"],
                            wait_for_completion=True, waiter_delay=poll_seconds, waiter_max_attempts=24 * 3600 // poll_seconds,
                            doc_md=stage.title, **retry(stage))
        for stage in STAGES
    ]
    # the run's history, the run_history marts and the morning report, whatever the stages did, then the lake's
    # Iceberg upkeep: a teardown of the cluster (it runs once the stages are done, succeeded or not), before the
    # one that terminates it
    history = EmrAddStepsOperator(task_id="history", job_flow_id=create.output, steps=planned["history"],
                                  wait_for_completion=True, waiter_delay=poll_seconds,
                                  waiter_max_attempts=3600 // poll_seconds)
    terminate = EmrTerminateJobFlowOperator(task_id="terminate_cluster", job_flow_id=create.output)
    chain(create, stage_tasks[0])
    chain(*stage_tasks, history, terminate)
    chain(create, thrift, terminate)
    history.as_teardown(setups=create)
    terminate.as_teardown(setups=create)


def _local_tasks(run, retry) -> None:
    @task
    def begin(encore_run: str) -> str:
        """The local stack up and the run's state created (a re-run of the day starts it over)."""
        from orchestration.local_runner import prepare
        from python_jobs.stack import services
        from python_jobs.config import Settings

        from dataclasses import replace

        from python_jobs.runs.run_ids import run_time

        # as of the logical date: a backfill of 2026-11-20 scores popularity, recency and the replay as of that day
        settings = replace(Settings.from_env(), as_of=run_time(encore_run).isoformat())
        services.ready(settings)
        prepare(settings, encore_run, None)
        return encore_run

    def stage_task(stage: Stage):
        @task(task_id=task_id(stage), doc_md=stage.title, **retry(stage))
        def run_stage(encore_run: str) -> None:
            from orchestration.local_runner import run_stage_process
            from python_jobs.config import Settings

            run_stage_process(Settings.from_env(), stage.name, encore_run)

        return run_stage

    @task(trigger_rule="all_done")
    def history(encore_run: str) -> None:
        """The run's history recorded, the run_history marts rebuilt, the morning report rewritten: whatever the
        stages did (a failed stage was alerted on by its own callback)."""
        from python_jobs.history import history_job
        from python_jobs.config import Settings

        history_job.after_run(Settings.from_env(), encore_run)

    @task(trigger_rule="all_done")
    def maintain() -> None:
        """The lake's Iceberg upkeep after the day's run: untagged snapshots expired, small files compacted,
        orphan files removed weekly (`encore-recs maintain`)."""
        from python_jobs.config import Settings
        from python_jobs.runs.maintenance import maintain as upkeep
        from python_jobs.stack import metastore_locks
        from python_jobs.stack.spark import get_spark

        settings = Settings.from_env()
        with metastore_locks.kept(settings):  # runs after a failed or killed run too: its locks may be left
            upkeep(get_spark(settings), settings.state_dir / "maintenance.json")

    started = begin(run)
    chain(started, *[stage_task(stage)(started) for stage in STAGES], history(started), maintain())
