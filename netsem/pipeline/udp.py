"""The trio edge: move datagrams between real UDP sockets and the sans-I/O cores.

Sockets are plain non-blocking stdlib sockets; trio only waits for readiness
(`wait_readable` / `wait_writable`) and time. Each wake-up drains everything queued, so a
datagram costs no scheduler round trip (see FACTS.md, UDP forwarding speed).
"""

from __future__ import annotations

import itertools
import math
import operator
import socket
from collections.abc import Callable

import trio

from emulator.sockets import enlarge_buffers
from packetizers.reassembler import Frame, Reassembler

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


def resolve(address: tuple[str, int]) -> tuple[int, tuple]:
    """The address family and socket address of HOST:PORT (IPv4 or IPv6)."""
    family, _, _, _, sockaddr = socket.getaddrinfo(*address, type=socket.SOCK_DGRAM)[0]
    return family, sockaddr


def udp_socket(bind: tuple[str, int] | None = ("127.0.0.1", 0), family: int = socket.AF_INET) -> socket.socket:
    """A non-blocking UDP socket with buffers sized for bursts, bound to `bind` (None: left
    unbound, so connecting picks the interface that reaches the peer)."""
    if bind is not None:
        family, bind = resolve(bind)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        enlarge_buffers(sock)
        if bind is not None:
            sock.bind(bind)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


async def send_paced(sock: socket.socket, schedule: list[tuple[float, bytes]], target: tuple | None) -> None:
    """Send each datagram at its offset (seconds after the start), to `target` or (None) to
    the socket's connected peer; unpaced datagrams (offset 0) leave back to back.

    A connected socket raises ConnectionRefusedError once the peer's ICMP port-unreachable
    for an earlier datagram has come back.
    """
    start = trio.current_time()
    for number, (offset, datagram) in enumerate(schedule):
        if offset > 0 and trio.current_time() < start + offset:
            await trio.sleep_until(start + offset)
        elif number % SEND_BATCH == SEND_BATCH - 1:
            await trio.sleep(0)  # let an in-process emulator and receiver drain
        while True:
            try:
                if target is None:
                    sock.send(datagram)
                else:
                    sock.sendto(datagram, target)
                break
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)


def drain(sock: socket.socket, reassembler: Reassembler, now: float, limit: int | None = None) -> int:
    """Feed the datagrams queued on `sock` (every one, or up to `limit`), with their senders,
    to the reassembler; how many.  They go in batches (`receive_many`): each sender's run of
    datagrams is checked and taken at once where it can be."""
    count = 0
    while limit is None or count < limit:
        batch = []  # (sender, datagram) in arrival order
        room = DRAIN_BATCH if limit is None else min(DRAIN_BATCH, limit - count)
        while len(batch) < room:
            try:
                datagram, sender = sock.recvfrom(65536)
            except BlockingIOError:
                break
            except ConnectionRefusedError:
                continue  # an ICMP error for something we sent earlier
            batch.append((sender[:2], datagram))
        for sender, run in itertools.groupby(batch, key=operator.itemgetter(0)):
            reassembler.receive_many([datagram for _, datagram in run], now, sender)
        count += len(batch)
        if len(batch) < room:
            return count
    return count


DRAIN_BATCH = 512  # datagrams read from the socket before the reassembler takes them


async def collect_frames(
    sock: socket.socket, reassembler: Reassembler, frames: int, *, all_sent: Callable[[], bool],
    first_datagram_timeout: float | None = None,
) -> list[Frame]:
    """Feed the reassembler until `frames` frames are delivered, or nothing more can come.

    `all_sent()` says when every datagram has left the path towards `sock` (an in-process
    emulator's queue is empty): then what is queued on the socket is all there will be, so
    the frames still pending are delivered at once instead of at their deadlines. Raises
    NothingArrived when no datagram came within `first_datagram_timeout` (None: wait)."""
    delivered: list[Frame] = []
    give_up_at = math.inf if first_datagram_timeout is None else trio.current_time() + first_datagram_timeout
    while len(delivered) < frames:
        deadline = reassembler.next_deadline()
        if reassembler.datagrams_accepted == 0 and give_up_at < math.inf:
            deadline = give_up_at if deadline is None else min(deadline, give_up_at)
        # a dropped last datagram wakes nobody: look at all_sent() every 20 ms as well
        recheck = trio.current_time() + 0.02
        with trio.move_on_at(recheck if deadline is None else min(deadline, recheck)):
            await trio.lowlevel.wait_readable(sock)
        now = trio.current_time()
        ended = all_sent()  # read before draining: what was sent by now is queued on the socket
        drain(sock, reassembler, now)
        delivered += reassembler.flush() if ended else reassembler.poll(now)
        if ended:
            break
        if reassembler.datagrams_accepted == 0 and now >= give_up_at:
            raise NothingArrived(f"no netsem datagram arrived within {first_datagram_timeout:g} s")
    return delivered
