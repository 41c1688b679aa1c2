"""Processes of the local stack: ports on loopback, pid files checked against what they name, and stopping a
process group only when it is ours. The bottom layer: imports nothing of the stack."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from python_jobs.errors import UserError


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


def wait_for_port(port: int, what: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if port_open(port):
            return
        time.sleep(0.2)
    raise UserError(f"{what} did not start on 127.0.0.1:{port}; see {log}")


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
