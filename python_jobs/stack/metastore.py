"""The shared Spark catalog: a Hive metastore database in PostgreSQL that any number of processes open at once.

Spark 3.5's built-in metastore client speaks the Hive 2.3 schema. DataNucleus
must not create it (its auto-create deadlocks on Postgres), so the schema is
loaded here from Hive's own Postgres scripts (1.2.0 then the upgrades to
2.3.0), once, in one transaction, and Spark starts with schema verification
on. `check_schema` runs before any SparkSession is built: a missing or
foreign schema is one clear line, not a hang inside the JVM.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from python_jobs.config import Settings
from python_jobs.errors import UserError
from python_jobs.stack.jars import JAR_DIR, fetch
from python_jobs.stack.postgres import pg_env

HIVE_VERSION = "3.1.3"
SCHEMA_VERSION = "2.3.0"
SCRIPTS = (
    "hive-schema-1.2.0.postgres.sql",
    "upgrade-1.2.0-to-2.0.0.postgres.sql",
    "upgrade-2.0.0-to-2.1.0.postgres.sql",
    "upgrade-2.1.0-to-2.2.0.postgres.sql",
    "upgrade-2.2.0-to-2.3.0.postgres.sql",
)
SCRIPT_DIR = JAR_DIR / f"hive-metastore-schema-{HIVE_VERSION}"


def schema_scripts() -> list[Path]:
    """The Postgres scripts, unpacked from hive-standalone-metastore (fetched once from Maven Central)."""
    paths = [SCRIPT_DIR / name for name in SCRIPTS]
    if all(path.exists() for path in paths):
        return paths
    tarball = fetch(f"org.apache.hive:hive-standalone-metastore:{HIVE_VERSION}:tar.gz:bin",
                    JAR_DIR / f"hive-standalone-metastore-{HIVE_VERSION}-bin.tar.gz")
    SCRIPT_DIR.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if name in SCRIPTS and "/upgrade/postgres/" in member.name:
                (SCRIPT_DIR / name).write_bytes(tar.extractfile(member).read())
    tarball.unlink()
    missing = [path.name for path in paths if not path.exists()]
    if missing:
        raise UserError(f"hive-standalone-metastore {HIVE_VERSION} lacks {', '.join(missing)}; delete {SCRIPT_DIR} and retry")
    return paths


def managed_by_cluster(settings: Settings) -> bool:
    """On YARN (EMR) the cluster brings S3 access, the Glue catalog and memory settings: add nothing of ours (no
    metastore of ours either)."""
    return settings.spark_master == "yarn"


def connection_params(settings: Settings) -> dict[str, str]:
    """The metastore database: ENCORE_METASTORE_DB on the same server as the application database."""
    env = pg_env(settings)
    return {"host": env["ENCORE_PG_HOST"], "port": env["ENCORE_PG_PORT"], "user": env["ENCORE_PG_USER"],
            "password": env["ENCORE_PG_PASSWORD"], "dbname": settings.metastore_db}


def jdbc_url(settings: Settings) -> str:
    params = connection_params(settings)
    return f"jdbc:postgresql://{params['host']}:{params['port']}/{params['dbname']}"


def _connect(params: dict[str, str]):
    import psycopg2

    return psycopg2.connect(connect_timeout=5, **params)


def _schema_version(settings: Settings) -> str | None:
    """The recorded schema version; None when the database exists but holds no metastore schema."""
    import psycopg2

    params = connection_params(settings)
    try:
        conn = _connect(params)
    except psycopg2.OperationalError as exc:
        first = (str(exc).strip().splitlines() or ["no answer"])[0]
        raise UserError(
            f"the Hive metastore database {params['dbname']} on {params['host']}:{params['port']} is unreachable "
            f"({first}); run `encore-recs up` to create it, or set ENCORE_METASTORE_DB"
        ) from None
    try:
        with conn.cursor() as cur:
            cur.execute("select to_regclass('public.\"VERSION\"') is not null")
            if not cur.fetchone()[0]:
                return None
            cur.execute('select "SCHEMA_VERSION" from "VERSION"')
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


def ensure_schema(settings: Settings) -> bool:
    """Create the metastore database and load the schema when missing; True when it was loaded now."""
    import psycopg2

    params = connection_params(settings)
    try:
        admin = _connect({**params, "dbname": "postgres"})
    except psycopg2.OperationalError:
        admin = None
    if admin is not None:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (params["dbname"],))
            if cur.fetchone() is None:
                try:
                    cur.execute(f'create database "{params["dbname"]}"')
                except psycopg2.Error as exc:
                    raise UserError(f"could not create the metastore database {params['dbname']} ({exc.pgerror or exc}); "
                                    "create it or set ENCORE_METASTORE_DB to one that exists") from None
        admin.close()
    if _schema_version(settings) is not None:
        return False
    scripts = schema_scripts()
    conn = _connect(params)
    try:
        with conn, conn.cursor() as cur:
            for script in scripts:
                cur.execute(script.read_text())
    finally:
        conn.close()
    return True


def check_schema(settings: Settings) -> None:
    """Refuse to start Spark against a missing or wrong metastore schema."""
    version = _schema_version(settings)
    name = connection_params(settings)["dbname"]
    if version is None:
        raise UserError(f"the Hive metastore schema is missing in database {name}; run `encore-recs up` to load it")
    if version != SCHEMA_VERSION:
        raise UserError(
            f"the Hive metastore in database {name} has schema {version}, Spark needs {SCHEMA_VERSION}; "
            "point ENCORE_METASTORE_DB at a database of that version or an empty one"
        )


if __name__ == "__main__":  # `make setup`: the schema scripts, fetched once beside the jars
    print(schema_scripts()[0].parent)
