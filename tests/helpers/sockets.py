"""This process's descriptors and TCP sockets, read from /proc (Linux)."""

import os
from pathlib import Path


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def sockets_to(port: int, *, established_only: bool = True) -> int:
    """This process's TCP sockets connected to ``port`` on loopback (any state if asked)."""
    ours = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # closed since listed (the listing's own, for one)
            continue
        if target.startswith("socket:["):
            ours.add(target[len("socket:[") : -1])
    count = 0
    for line in Path("/proc/self/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port, state, inode = int(fields[2].split(":")[1], 16), fields[3], fields[9]
        if remote_port == port and inode in ours and (state == "01" or not established_only):
            count += 1  # 01: ESTABLISHED
    return count
