"""The top of the local stack: `up` starts whatever local services the settings call for, `ready` adds the
buckets, `down` stops everything this state folder started. Both services run as background processes that
outlive the command that started them, so consecutive commands share them. When ENCORE_PG_DSN or
ENCORE_S3_ENDPOINT point elsewhere, the matching local service is not started."""

from __future__ import annotations

import os

from python_jobs.config import Settings
from python_jobs.stack import cluster, postgres, s3_server, thrift_auth
from python_jobs.stack.metastore import ensure_schema
from python_jobs.stack.state_folder import make_private


def apply_environment(settings: Settings) -> None:
    """Export the variables that dbt's profiles, boto3 and Spark read."""
    if settings.local_s3:
        creds = s3_server.s3_credentials(settings)
        os.environ["AWS_ACCESS_KEY_ID"] = creds["access_key"]
        os.environ["AWS_SECRET_ACCESS_KEY"] = creds["secret_key"]
        os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.setdefault("AWS_DEFAULT_REGION", settings.region)
    os.environ.update(postgres.pg_env(settings))
    if settings.local_postgres:  # libpq's own variable: every connection of this process and its children
        os.environ["PGPASSWORD"] = postgres.pg_password(settings)
    os.environ.update(thrift_auth.thrift_env(settings))  # dbt's spark_cluster target, when the cluster is up


def up(settings: Settings) -> None:
    """Start whatever local services the settings call for, and export their variables."""
    make_private(settings.state_dir)
    if settings.local_postgres:
        postgres.start_postgres(settings)
        make_private(settings.state_dir)  # initdb opened the folders on the way to its data for its own user
    if settings.local_s3:
        (settings.state_dir / "s3").mkdir(parents=True, exist_ok=True)
        s3_server.start_s3(settings)
    apply_environment(settings)
    postgres.check_reachable(settings)
    ensure_schema(settings)


def ready(settings: Settings) -> None:
    """`up`, then the lake and publish buckets: what every command needs before it reads or writes a run."""
    from python_jobs.infra.s3 import ensure_buckets

    up(settings)
    ensure_buckets(settings)


def down(settings: Settings) -> list[str]:
    stopped = cluster.down(settings)
    if s3_server.stop_s3(settings):
        stopped.append("s3")
    if postgres.stop_postgres(settings):
        stopped.append("postgres")
    return stopped
