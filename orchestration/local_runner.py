"""Run the stages of `orchestration.stages` in order, here: the local equivalent of the Airflow DAG.

Two ways, chosen by what is running:
- the local Spark cluster is up (`encore-recs up --cluster`): every stage is
  its own process, submitted to the master with spark-submit when it needs a
  Spark driver, dbt's Spark side over the Thrift server: EMR's topology;
- otherwise, in this process: the stages share one SparkSession for speed,
  but still hand on only what they wrote (catalog, S3, the run's state).

Either way a failed run resumes from its failed stage with
`encore-recs run --run-id ID --from STAGE`; the stages before it are not run again.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from orchestration.stages import STAGES, stage, stages_from
from python_jobs.config import Settings
from python_jobs.errors import GateFailed, UserError
from python_jobs.runs.run_ids import check_run_id, new_run_id
from python_jobs.runs.run_state import RunState


def prepare(settings: Settings, run_id: str | None, start: str | None) -> tuple[RunState, tuple]:
    """The run's state with the stages about to run forgotten; refuses a resume whose earlier stages did not finish."""
    todo = stages_from(start)
    run_id = check_run_id(run_id) if run_id else new_run_id()
    resuming = todo[0] is not STAGES[0]
    state = RunState.load(settings, run_id, create=not resuming)
    if resuming:
        missing = [s.name for s in STAGES[: STAGES.index(todo[0])] if not state.done(s.name)]
        if missing:
            raise UserError(f"run {run_id} cannot resume from {todo[0].name}: {', '.join(missing)} did not finish; "
                            f"resume from {missing[0]}")
    state.forget_from([s.name for s in todo])
    state.save()
    return state, todo


def run_pipeline(settings: Settings, log: Callable[[str], None] = print, run_id: str | None = None,
                 start: str | None = None) -> dict:
    """Every stage from `start` (default: the first) in order; returns the run's summary (with `manifest_url`)."""
    from python_jobs.stack import cluster, services
    from python_jobs.runs.run_lock import one_run

    services.ready(settings)
    run_id = check_run_id(run_id) if run_id else new_run_id()
    with one_run(settings.state_dir, run_id):
        state, todo = prepare(settings, run_id, start)
        on_cluster = cluster.running(settings)
        try:
            if on_cluster:
                log(f"[{state.run_id}] on the local cluster {cluster.master_url(settings)}: one process per stage")
                _run_submitted(settings, state.run_id, todo)
                state = RunState.load(settings, state.run_id, create=False)
            else:
                _run_in_process(settings, state, todo, log)
        except Exception as exc:
            failed = recorded_failure(settings, state.run_id)
            _alert(settings, state.run_id, exc, failed)
            # the services are up after a gate's refusal, so the marts can be rebuilt; after any other failure the
            # run is recorded and in the morning report, and the marts take it in at the next build
            _history(settings, state.run_id, log, on_cluster, build=isinstance(exc, GateFailed))
            if isinstance(exc, UserError):
                raise
            raise UserError(failure_line(settings, state.run_id, exc, failed)) from exc
        _history(settings, state.run_id, log, on_cluster)  # after publish: the run is served already
    summary = RunState.load(settings, state.run_id, create=False).data  # with the history step's time
    summary["summary_path"] = str(state.dir / "summary.json")
    return summary


def _history(settings: Settings, run_id: str, log, on_cluster: bool, build: bool = True) -> None:
    import os

    from python_jobs.history import history_job

    if on_cluster:  # dbt over the cluster's Thrift server, as the stages' own dbt did
        os.environ["ENCORE_SPARK_THRIFT_PORT"] = str(settings.thrift_port)
    history_job.after_run(settings, run_id, log, target="spark_cluster" if on_cluster else None, build=build)


def recorded_failure(settings: Settings, run_id: str) -> dict:
    """The failed step and the run's error as its state recorded them ({} when the store cannot say)."""
    try:
        recorded = RunState.load(settings, run_id, create=False).data
    except Exception:  # noqa: BLE001 - the store may be what failed; the exception still says why
        return {}
    failed = next((s for s in reversed(recorded.get("steps", [])) if s.get("status") == "failed"), {})
    return {**failed, "error": recorded.get("error")}


def failure_line(settings: Settings, run_id: str, exc: Exception, failed: dict | None = None) -> str:
    """One line for a stage that failed with an error nobody turned into one: the stage and reason the run's state
    recorded, where the traceback was kept (beside the summary), and how to resume."""
    import traceback

    failed = recorded_failure(settings, run_id) if failed is None else failed
    stage_name = failed.get("stage")
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    kept = settings.runs_dir / run_id / "traceback.txt"
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text("".join(traceback.format_exception(exc)))
        where = f"; traceback in {kept}"
    except OSError:
        where = ""
    resume = f"; resume with `encore-recs run --run-id {run_id} --from {stage_name}`" if stage_name else ""
    return f"run {run_id} failed{f' in {stage_name}' if stage_name else ''}: {reason}{where}{resume}"


def _alert(settings: Settings, run_id: str, exc: Exception, failed: dict) -> None:
    """The failed stage and its reason, as recorded in the run's state, to ENCORE_ALERT_WEBHOOK when set."""
    from python_jobs.history import alerts

    reason = failed.get("error") or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    alerts.from_environment(run_id, failed.get("stage", "unknown"), reason,
                            str(settings.runs_dir / run_id / "summary.json"))


def _run_in_process(settings: Settings, state: RunState, todo, log) -> None:
    from python_jobs.jobs import StageContext, run_stage

    ctx = StageContext(settings, state, log)
    if any(s.spark_driver for s in todo) and not todo[0].spark_driver:
        ctx.warm_spark()
    for stage in todo:
        run_stage(ctx, stage.name, stage.title)


def stage_process(settings: Settings, name: str, run_id: str) -> tuple[list[str], dict[str, str] | None]:
    """One stage as a process of its own (command, environment): spark-submit to the local cluster when it runs
    and the stage needs a Spark driver, else `encore-recs step`. The DAG's local backend runs the same."""
    from python_jobs.stack import cluster

    if not cluster.running(settings):
        return [sys.executable, "-m", "python_jobs.cli", "step", name, "--run-id", run_id], None
    env = cluster.stage_environment(settings)
    if stage(name).spark_driver:
        return cluster.submit_command(settings, name, run_id), env
    return [sys.executable, "-m", "python_jobs.cli", "step", name, "--run-id", run_id], env


def run_stage_process(settings: Settings, name: str, run_id: str) -> None:
    """Run one stage's process; a failure is one line naming the resume command."""
    command, env = stage_process(settings, name, run_id)
    if subprocess.run(command, env=env, stdin=subprocess.DEVNULL).returncode != 0:
        error = RunState.load(settings, run_id, create=False).data.get("error", "see the output above")
        raise UserError(f"stage {name} failed ({error}); fix it, then resume with "
                        f"`encore-recs run --run-id {run_id} --from {name}`")


def _run_submitted(settings: Settings, run_id: str, todo) -> None:
    for each in todo:
        run_stage_process(settings, each.name, run_id)
