"""Run dbt in-process, so the Spark target reuses this process's SparkSession.

dbt-spark's `session` method calls `SparkSession.builder.getOrCreate()`, which
returns the session the pipeline already built (S3A, Derby catalog), so dbt and
the Python jobs share one catalog without a metastore server.
"""

from __future__ import annotations

import os

from python_jobs.config import Settings
from python_jobs.errors import UserError


def run_dbt(settings: Settings, args: list[str], quiet: bool = False) -> list:
    """Invoke dbt with `args` (quiet: errors only); raise UserError naming the failures."""
    from dbt.cli.main import dbtRunner

    project = str(settings.project_dir)
    full = [*(["--quiet"] if quiet else []), *args, "--project-dir", project, "--profiles-dir", project]
    if not any(a.startswith("--target-path") for a in args):
        full += ["--target-path", str(settings.state_dir / "dbt-target")]
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ["DBT_LOG_PATH"] = str(settings.state_dir / "dbt-logs")
    result = dbtRunner().invoke(full)
    if result.exception is not None:
        raise UserError(f"dbt {' '.join(args)} failed: {str(result.exception).splitlines()[0]}")
    if not result.success:
        failures = [
            f"{r.node.name}: {r.status}"
            for r in (result.result or [])
            if str(getattr(r, "status", "")).lower() in {"error", "fail", "runtime error"}
        ]
        detail = "; ".join(failures[:3]) or "see the dbt log above"
        raise UserError(f"dbt {' '.join(args)} failed ({detail}); logs in {settings.state_dir / 'dbt-logs'}")
    return list(result.result or [])
