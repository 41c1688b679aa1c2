"""Run ids: one format, checked where an id enters (CLI, stage jobs, the DAG, EMR requests).

Standard library only, so the Airflow DAG can import it on MWAA without the pipeline's dependencies.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone

from python_jobs.errors import UserError

RUN_ID_FORMAT = "YYYYMMDDTHHMMSSZ-suffix (suffix: 1 to 16 lowercase letters or digits), e.g. 20261123T120000Z-1a2b3c"
_RUN_ID = re.compile(r"\d{8}T\d{6}Z-[a-z0-9]{1,16}")


def new_run_id() -> str:
    """Sortable by time, unique: 20261123T120000Z-1a2b3c."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def check_run_id(run_id: str) -> str:
    """A run id becomes a folder, an S3 prefix and a partition value: one format, checked where it enters."""
    if not _RUN_ID.fullmatch(run_id):
        shown = run_id if len(run_id) <= 80 else run_id[:80] + "..."
        raise UserError(f"run id {shown!r} is not valid; use the format {RUN_ID_FORMAT}")
    try:
        datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ")
    except ValueError:
        raise UserError(f"run id {run_id!r} does not start with a real UTC time; use the format {RUN_ID_FORMAT}") from None
    return run_id


def run_time(run_id: str) -> datetime:
    """The UTC time a run id starts with: a scheduled run's logical date, which is what the run is as of."""
    return datetime.strptime(check_run_id(run_id)[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def scheduled_run_id(logical_date: datetime) -> str:
    """A scheduled run's id from its logical date: the same date always names the same run (retries, re-runs)."""
    return logical_date.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-daily"
