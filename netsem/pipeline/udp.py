"""The trio edge: move datagrams between real UDP sockets and the sans-I/O cores.

Sockets are plain non-blocking stdlib sockets; trio only waits for readiness
(`wait_readable` / `wait_writable`) and time. Each wake-up drains everything queued, so a
datagram costs no scheduler round trip (see FACTS.md, UDP forwarding speed).
"""

from __future__ import annotations

import math
import socket

import trio

from packetizers.reassembler import Frame, Reassembler

RECEIVE_BUFFER = 8 * 2**20  # a whole raw-pixel frame in flight must not overflow the kernel queue
SEND_BATCH = 32  # datagrams sent between yields, so an in-process receiver keeps draining


def run_trio(async_fn, *args):
    """`trio.run`, re-raising a lone exception from inside nurseries as itself.

    trio wraps whatever escapes a nursery in an ExceptionGroup; callers here expect the plain
    exception (NothingArrived, OSError, ...) so the CLI can print it as one line.
    """
    try:
        return trio.run(async_fn, *args)
    except BaseExceptionGroup as group:
        leaves = []
        pending = [group]
        while pending:
            item = pending.pop()
            if isinstance(item, BaseExceptionGroup):
                pending.extend(item.exceptions)
            else:
                leaves.append(item)
        if len(leaves) == 1:
            raise leaves[0] from None
        raise


class NothingArrived(Exception):
    """No datagram reached the receiver in time (receiver or emulator unreachable)."""


def udp_socket(bind: tuple[str, int] = ("127.0.0.1", 0)) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, RECEIVE_BUFFER)
    sock.bind(bind)
    sock.setblocking(False)
    return sock


async def send_datagrams(sock: socket.socket, datagrams: list[bytes], target: tuple[str, int] | None) -> None:
    """Send in order, to `target` or (None) to the socket's connected peer.

    A connected socket raises ConnectionRefusedError once the peer's ICMP port-unreachable
    for an earlier datagram has come back.
    """
    for start in range(0, len(datagrams), SEND_BATCH):
        for datagram in datagrams[start : start + SEND_BATCH]:
            while True:
                try:
                    if target is None:
                        sock.send(datagram)
                    else:
                        sock.sendto(datagram, target)
                    break
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(sock)
        await trio.sleep(0)


def drain(sock: socket.socket, reassembler: Reassembler, now: float) -> None:
    """Feed every datagram queued on `sock` to the reassembler."""
    while True:
        try:
            reassembler.receive(sock.recv(65536), now)
        except BlockingIOError:
            return
        except ConnectionRefusedError:
            continue  # an ICMP error for something we sent earlier


async def receive_frames(
    sock: socket.socket, reassembler: Reassembler, *, frames: int = 1, first_datagram_timeout: float = 5.0
) -> list[Frame]:
    """Feed the reassembler until `frames` frames are delivered (complete or at their deadline)."""
    delivered: list[Frame] = []
    give_up_at = trio.current_time() + first_datagram_timeout
    while len(delivered) < frames:
        deadline = reassembler.next_deadline()
        if deadline is None and reassembler.datagrams_accepted == 0:
            deadline = give_up_at
        with trio.move_on_at(math.inf if deadline is None else deadline):
            await trio.lowlevel.wait_readable(sock)
        now = trio.current_time()
        drain(sock, reassembler, now)
        delivered.extend(reassembler.poll(now))
        if not delivered and reassembler.datagrams_accepted == 0 and now >= give_up_at:
            raise NothingArrived(f"no netsem datagram arrived within {first_datagram_timeout:g} s")
    return delivered
