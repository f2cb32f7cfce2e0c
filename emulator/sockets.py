"""UDP socket settings that bursts need, and the kernel's count of what it dropped.

Linux queues at most `net.core.rmem_default` bytes (212 992 here, ~170 datagrams of 1200 B)
on a socket that never asks for more, and drops the rest silently: one image's burst
overflows it. `enlarge_buffers` asks for more (as root, past `rmem_max` with the FORCE
options) and returns what the kernel granted; `kernel_drops` reads the socket's drop
counter (the last column of /proc/net/udp, matched by the socket's inode), so what the
kernel threw away is reported as its own number instead of vanishing.
"""

from __future__ import annotations

import os
import socket

BURST_BUFFER = 8 * 2**20  # bytes: several frames of 1200-byte datagrams in flight
_SO_RCVBUFFORCE, _SO_SNDBUFFORCE = 33, 32  # Linux; not in Python's socket module


def enlarge_buffers(sock: socket.socket, size: int = BURST_BUFFER) -> tuple[int, int]:
    """Ask for `size`-byte receive and send buffers; the sizes granted (as the kernel reports them)."""
    for option, forced in ((socket.SO_RCVBUF, _SO_RCVBUFFORCE), (socket.SO_SNDBUF, _SO_SNDBUFFORCE)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, forced, size)  # root only: beyond rmem_max / wmem_max
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, option, size)  # capped at rmem_max / wmem_max
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)


def kernel_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped for this socket (full receive buffer); None where unknown."""
    try:
        inode = str(os.fstat(sock.fileno()).st_ino)
    except OSError:
        return None
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as lines:
                next(lines)  # column titles
                for line in lines:
                    fields = line.split()
                    if len(fields) >= 13 and fields[9] == inode:
                        return int(fields[-1])
        except OSError:
            continue
    return None


def parse_address(text: str, *, default_host: str | None = None) -> tuple[str, int]:
    """`HOST:PORT`, `[V6HOST]:PORT`, or a bare `PORT` on `default_host`; ValueError saying
    what is wrong otherwise. The one address parser of every command."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = default_host or "", text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise ValueError(f"{text!r} needs a host (HOST:PORT)")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535 (HOST:PORT)")
    return host, int(port)
