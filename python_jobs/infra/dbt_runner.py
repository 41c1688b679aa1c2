"""Run dbt in-process, so the Spark target reuses this process's SparkSession.

dbt-spark's `session` method calls `SparkSession.builder.getOrCreate()`, which
returns the session the pipeline already built (S3A, the shared Postgres metastore), so dbt and
the Python jobs share one catalog without a metastore server.
"""

from __future__ import annotations

import os

from python_jobs.config import Settings
from python_jobs.db_secret import thrift_credentials_from_secret
from python_jobs.errors import UserError


def run_dbt(settings: Settings, args: list[str], quiet: bool = False, env: dict[str, str] | None = None) -> list:
    """Invoke dbt with `args` (quiet: errors only); raise UserError naming the failures. env: variables the
    project's env_var() reads, set for this call only (unlike --vars, a changed one re-parses only the files
    that read it, not the whole project)."""
    saved = {name: os.environ.get(name) for name in env or {}}
    os.environ.update(env or {})
    try:
        return _invoke(settings, args, quiet)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _invoke(settings: Settings, args: list[str], quiet: bool) -> list:
    from dbt.cli.main import dbtRunner

    # directories through dbt's own environment variables: every subcommand reads them, not every one takes the flags
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ["DBT_PROJECT_DIR"] = os.environ["DBT_PROFILES_DIR"] = str(settings.project_dir)
    os.environ["DBT_LOG_PATH"] = str(settings.state_dir / "dbt-logs")
    if not any(a.startswith("--target-path") for a in args):
        # one folder per target: dbt re-parses the whole project whenever the target differs from the last parse,
        # and every run alternates pg (stage) and spark (marts)
        target = args[args.index("--target") + 1] if "--target" in args[:-1] else "default"
        os.environ["DBT_TARGET_PATH"] = str(settings.state_dir / "dbt-target" / target)
    if settings.thrift_secret_id and "emr" in args:  # the EMR Thrift server's credentials for the `emr` target
        user, password = thrift_credentials_from_secret(settings.thrift_secret_id, settings.region)
        os.environ.update({"ENCORE_SPARK_THRIFT_USER": user, "ENCORE_SPARK_THRIFT_PASSWORD": password})
    result = dbtRunner().invoke([*(["--quiet"] if quiet else []), *args])
    shown = " ".join(a if not a.startswith("{") else "'...'" for a in args)  # not the JSON of --args / --vars
    if result.exception is not None:
        raise UserError(f"dbt {shown} failed: {str(result.exception).splitlines()[0]}")
    results = node_results(result.result)
    if not result.success:
        failures = [f"{_name(r)}: {r.status}" for r in results
                    if str(getattr(r, "status", "")).lower() in {"error", "fail", "runtime error"}]
        detail = "; ".join(failures[:3]) or "see the dbt log above"
        raise UserError(f"dbt {shown} failed ({detail}); logs in {settings.state_dir / 'dbt-logs'}")
    return results


def node_results(outcome) -> list:
    """The per-node results of any dbt command's outcome (run, build, freshness, run-operation); [] for the rest."""
    return list(getattr(outcome, "results", None) or [])


def _name(result) -> str:
    node = getattr(result, "node", None)
    return node.name if node is not None else getattr(result, "unique_id", "?")
