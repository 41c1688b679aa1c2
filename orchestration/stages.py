"""The one ordered list of stages that feeds every runner: in-process, spark-submit on the local cluster, EMR steps.

Plain data, no heavy imports: a scheduler can read it while parsing its DAG.
Each stage is the job `python_jobs.jobs.JOBS[name]`, run in a process of its
own by `encore-recs step NAME --run-id ID` (or through spark-submit with
`python_jobs/stage_job.py NAME --run-id ID` when it needs a Spark driver).
"""

from __future__ import annotations

from dataclasses import dataclass

from python_jobs.errors import UserError


@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    spark_driver: bool  # submitted with spark-submit on a cluster; the others are plain processes
    retry_safe: bool = True  # idempotent for a run id: a scheduler may retry it


STAGES: tuple[Stage, ...] = (
    Stage("stage", "dbt staging, source freshness and reconcile (pg)", spark_driver=False),
    Stage("extract", "extract staging to S3", spark_driver=False),
    Stage("events", "ingest the app's events (Structured Streaming)", spark_driver=True),
    Stage("marts", "dbt marts (spark)", spark_driver=True),
    Stage("validate-inputs", "validate inputs (Great Expectations)", spark_driver=True),
    Stage("train", "evaluate every model, choose the blend, train and list", spark_driver=True),
    Stage("validate-outputs", "validate outputs (Great Expectations)", spark_driver=True),
    Stage("publish", "publish JSON + manifest", spark_driver=True),
)
NAMES = tuple(stage.name for stage in STAGES)


def stage(name: str) -> Stage:
    for candidate in STAGES:
        if candidate.name == name:
            return candidate
    raise UserError(f"unknown stage {name!r}; the stages are {', '.join(NAMES)}")


def stages_from(name: str | None) -> tuple[Stage, ...]:
    """The stages from `name` (inclusive) to the end; all of them when name is None."""
    if name is None:
        return STAGES
    return STAGES[STAGES.index(stage(name)):]
