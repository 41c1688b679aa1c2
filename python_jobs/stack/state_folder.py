"""The state folder made private: credentials, landed emails, published JSON and presigned URLs live there."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


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


def secret(state_dir: Path, name: str) -> str:
    """A secret of this state folder (a password, Spark's shared secret): generated once, 0600 from its first byte,
    then the same for every process that reads it."""
    path = state_dir / name
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(24))
    return path.read_text().strip()
