"""The listening TCP sockets of a set of processes and their descendants, read from /proc (no `ss` needed)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path


def _listening_inodes() -> dict[str, str]:
    """socket inode -> "address:port" for every socket in LISTEN state in this network namespace."""
    found = {}
    for name, width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A":  # TCP_LISTEN
                continue
            address, port = local.split(":")
            raw = bytes.fromhex(address)
            # the kernel prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, width // 2, 4))
            ip = ipaddress.ip_address(raw)
            ip = getattr(ip, "ipv4_mapped", None) or ip  # a JVM's socket: ::ffff:127.0.0.1 is 127.0.0.1
            found[inode] = f"{ip}:{int(port, 16)}"
    return found


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(parent, []).append(int(entry.name))
    return tree


def descendants(pids: list[int]) -> set[int]:
    """The processes and every process below them."""
    tree, seen, todo = _children(), set(), list(pids)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo += tree.get(pid, [])
    return seen


def listening(pids: list[int]) -> dict[str, str]:
    """"address:port" -> the command of the process listening on it, for the processes and their descendants."""
    inodes, found = _listening_inodes(), {}
    for pid in descendants(pids):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                found[inodes[target[8:-1]]] = f"{pid} {command}"
    return found
