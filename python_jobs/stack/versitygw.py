"""The local S3 server: Versity S3 Gateway (versitygw), objects as files under the state folder.

A real S3-compatible server does the SigV4 checking (header and presigned,
expiry, unknown keys, method binding), so the project keeps no verifier of
its own. The binary is built once from the Go module proxy at a pinned
version into `.tools/` (about 3 minutes on 2 cores; skipped when present).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from python_jobs.config import PROJECT_DIR
from python_jobs.errors import UserError

VERSION = "v1.8.0"
MODULE = "github.com/versity/versitygw/cmd/versitygw"
TOOL_DIR = PROJECT_DIR / ".tools" / f"versitygw-{VERSION}"


def binary() -> Path:
    return TOOL_DIR / "versitygw"


def ensure_binary() -> Path:
    """Return the pinned versitygw binary, building it with `go install` when missing."""
    path = binary()
    if path.exists():
        return path
    if shutil.which("go") is None:
        raise UserError(f"Go (>= 1.25) is needed once to build the local S3 server; install it, or put versitygw {VERSION} at {path}")
    TOOL_DIR.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(TOOL_DIR), "GOTOOLCHAIN": "local"}
    result = subprocess.run(["go", "install", f"{MODULE}@{VERSION}"], env=env, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0 or not path.exists():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"could not build versitygw {VERSION} ({last}); check the Go module proxy and retry `make setup`")
    return path


def command(port: int, data_dir: Path, iam_dir: Path, region: str) -> list[str]:
    """The server's command line; the root key pair goes in the environment, never in argv."""
    return [
        str(ensure_binary()), "--port", f"127.0.0.1:{port}", "--region", region,
        "--iam-dir", str(iam_dir.resolve()), "--keep-alive", "--quiet",
        "posix", str(data_dir.resolve()),
    ]


def environment(access_key: str, secret_key: str) -> dict[str, str]:
    return {**os.environ, "ROOT_ACCESS_KEY": access_key, "ROOT_SECRET_KEY": secret_key}


if __name__ == "__main__":
    print(ensure_binary())
