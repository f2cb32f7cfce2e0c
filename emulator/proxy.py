"""The trio UDP proxy: real sockets around the same sans-I/O `Link` the offline driver uses.

Datagrams arriving on the listen socket go through the forward `Link` to the target;
replies from the target go back to the most recent client, through a reverse `Link` if one
is given. One task per direction waits for its socket to become readable or for its link's
next deadline, drains the non-blocking socket in one go (FACTS.md: a trio forwarder that
awaits per datagram runs at a third of a blocking one), and sends without awaiting unless
the socket buffer is full. Memory stays bounded: the links hold at most `limit` packets and
a full send buffer stops reading, so the kernel's receive buffer absorbs or drops the rest.

    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_proxy, ("127.0.0.1", 0), ("127.0.0.1", 9000), link)
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from dataclasses import dataclass

import trio

from emulator.link import Link
from emulator.pcap import CaptureWriter

log = logging.getLogger("emulator")

_MAX_DATAGRAM = 65535
_BATCH = 256  # datagrams read per wake-up before the other direction gets a turn


class ProxyError(Exception):
    """A setup problem the user can fix (port in use, unknown host); the message says which."""


@dataclass
class ProxyStats:
    """What the proxy saw outside the links."""

    forward_refused: int = 0  # ICMP "port unreachable" from the target: nothing listening there
    replies_without_client: int = 0  # replies before any client sent anything


def _udp_socket(address: tuple[str, int], verb: str) -> tuple[socket.socket, tuple]:
    """A UDP socket of the family `address` resolves to, and the resolved address."""
    host, port = address
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        return socket.socket(family, socket.SOCK_DGRAM), sockaddr
    except OSError as error:
        raise ProxyError(f"cannot {verb} {host}:{port}: {error.strerror or error}") from None


def bind_listen_socket(address: tuple[str, int]) -> socket.socket:
    """A non-blocking UDP socket bound to `address`; ProxyError with a clear message on failure."""
    sock, sockaddr = _udp_socket(address, "listen on")
    try:
        sock.bind(sockaddr)
    except OSError as error:
        sock.close()
        reason = "address already in use" if error.errno == errno.EADDRINUSE else (error.strerror or str(error))
        raise ProxyError(f"cannot listen on {address[0]}:{address[1]}: {reason}") from None
    sock.setblocking(False)
    return sock


def connect_forward_socket(address: tuple[str, int]) -> socket.socket:
    """A non-blocking UDP socket connected to the target, so ICMP errors are reported to us."""
    sock, sockaddr = _udp_socket(address, "forward to")
    try:
        sock.connect(sockaddr)
    except OSError as error:
        sock.close()
        raise ProxyError(f"cannot forward to {address[0]}:{address[1]}: {error.strerror or error}") from None
    sock.setblocking(False)
    return sock


async def serve_proxy(
    listen: socket.socket | tuple[str, int],
    forward: socket.socket | tuple[str, int],
    link: Link,
    *,
    reverse_link: Link | None = None,
    capture: CaptureWriter | None = None,
    stats: ProxyStats | None = None,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the proxy until cancelled; reports the bound listen address through `task_status`.

    `listen` is a bound socket (see `bind_listen_socket`) or an address to bind; `forward`
    a connected socket (see `connect_forward_socket`) or the target's address. `link`
    impairs client -> target; `reverse_link`, if given, impairs replies. With `capture`,
    every fate record is written to the pcapng file. Counters live in `link.counters`,
    `reverse_link.counters` and `stats`. Raises ProxyError on setup problems.
    """
    listen_sock = listen if isinstance(listen, socket.socket) else bind_listen_socket(listen)
    forward_sock = forward if isinstance(forward, socket.socket) else connect_forward_socket(forward)
    stats = stats if stats is not None else ProxyStats()
    if capture is not None:
        capture.clock_offset = time.time() - trio.current_time()
        link.record_fates = True
        if reverse_link is not None:
            reverse_link.record_fates = True
    proxy = _Proxy(listen_sock, forward_sock, link, reverse_link, capture, stats)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(proxy.forward_direction)
            nursery.start_soon(proxy.reverse_direction)
            task_status.started(listen_sock.getsockname()[:2])
    finally:  # sockets passed in belong to the caller
        if not isinstance(forward, socket.socket):
            forward_sock.close()
        if not isinstance(listen, socket.socket):
            listen_sock.close()


class _Proxy:
    def __init__(self, listen_sock, forward_sock, link, reverse_link, capture, stats) -> None:
        self.listen_sock = listen_sock
        self.forward_sock = forward_sock
        self.link = link
        self.reverse_link = reverse_link
        self.capture = capture
        self.stats = stats
        self.client: tuple[str, int] | None = None
        self.listen_address = listen_sock.getsockname()[:2]
        self.forward_local = forward_sock.getsockname()[:2]
        self.forward_address = forward_sock.getpeername()[:2]
        self._queue_full_reported = False

    async def forward_direction(self) -> None:
        """client -> link -> target."""
        link, sock = self.link, self.listen_sock
        while True:
            await _wait_readable_or_deadline(sock, link.next_deadline())
            now = trio.current_time()
            out: list[bytes] = []
            for _ in range(_BATCH):
                try:
                    datagram, self.client = sock.recvfrom(_MAX_DATAGRAM)
                except (BlockingIOError, InterruptedError):
                    break
                except ConnectionRefusedError:  # an ICMP error for an earlier reply to a client
                    continue
                link.submit(datagram, now)
                out += link.due(now)
            out += link.due(now)
            self._after_batch(link, "forward")
            await self._send(self.forward_sock, out, None)

    async def reverse_direction(self) -> None:
        """target -> (reverse link) -> most recent client."""
        link, sock = self.reverse_link, self.forward_sock
        while True:
            await _wait_readable_or_deadline(sock, link.next_deadline() if link is not None else None)
            now = trio.current_time()
            out: list[bytes] = []
            for _ in range(_BATCH):
                try:
                    datagram = sock.recv(_MAX_DATAGRAM)
                except (BlockingIOError, InterruptedError):
                    break
                except ConnectionRefusedError:
                    self._refused()
                    continue
                if link is None:
                    out.append(datagram)
                else:
                    link.submit(datagram, now)
                    out += link.due(now)
            if link is not None:
                out += link.due(now)
                self._after_batch(link, "reverse")
            if self.client is None:
                self.stats.replies_without_client += len(out)
                continue
            await self._send(self.listen_sock, out, self.client)

    def _after_batch(self, link: Link, direction: str) -> None:
        if self.capture is not None:
            fates = link.take_fates()
            if fates:
                client = self.client or ("0.0.0.0", 0)
                outer = (client, self.listen_address)
                inner = (self.forward_local, self.forward_address)
                if direction == "forward":
                    self.capture.write_fates(fates, arrival=outer, departure=inner)
                else:
                    self.capture.write_fates(
                        fates, arrival=(inner[1], inner[0]), departure=(outer[1], outer[0])
                    )
        if link.counters.queue_dropped and not self._queue_full_reported:
            self._queue_full_reported = True
            log.warning(
                "%s queue full (limit %d packets): arriving datagrams are dropped and counted as queue-dropped",
                direction, link.spec.limit,
            )

    def _refused(self) -> None:
        self.stats.forward_refused += 1
        if self.stats.forward_refused == 1:
            host, port = self.forward_address
            log.warning("%s:%d refused a datagram (ICMP port unreachable): is anything listening there?", host, port)

    async def _send(self, sock: socket.socket, datagrams: list[bytes], address: tuple[str, int] | None) -> None:
        """Send in order without awaiting, unless the socket buffer is full."""
        for datagram in datagrams:
            while True:
                try:
                    if address is None:
                        sock.send(datagram)
                    else:
                        sock.sendto(datagram, address)
                    break
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(sock)
                except ConnectionRefusedError:  # reports an earlier datagram; this one was not sent yet
                    self._refused()


async def _wait_readable_or_deadline(sock: socket.socket, deadline: float | None) -> None:
    if deadline is None:
        await trio.lowlevel.wait_readable(sock)
        return
    with trio.move_on_at(deadline):
        await trio.lowlevel.wait_readable(sock)
