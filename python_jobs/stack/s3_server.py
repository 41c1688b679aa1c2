"""The local S3 server (versitygw) on loopback; buckets are folders under <state>/s3/data, so they outlive `down`."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

from python_jobs.config import Settings
from python_jobs.errors import UserError
from python_jobs.stack import versitygw
from python_jobs.stack.processes import port_open, running_pid, stop_pid_file, wait_for_port


def s3_credentials(settings: Settings) -> dict[str, str]:
    """The local S3 server's key pair, generated once per state folder (never committed)."""
    path = settings.state_dir / "s3" / "credentials.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        creds = {"access_key": "ENC" + secrets.token_hex(8).upper(), "secret_key": secrets.token_urlsafe(30)}
        path.write_text(json.dumps(creds))
        path.chmod(0o600)
    return json.loads(path.read_text())


def _s3_paths(settings: Settings) -> tuple[Path, Path]:
    return settings.state_dir / "s3" / "server.pid", settings.state_dir / "s3" / "server.log"


def start_s3(settings: Settings) -> None:
    """versitygw on loopback; buckets are folders under <state>/s3/data, so they outlive `down`."""
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
    wait_for_port(settings.s3_port, "the local S3 server", log)


def stop_s3(settings: Settings) -> bool:
    return stop_pid_file(_s3_paths(settings)[0], "versitygw", seconds=5)
