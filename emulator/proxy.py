"""The trio UDP proxy: real sockets around the same sans-I/O `Link` the offline driver uses.

Datagrams arriving on the listen socket go through the forward `Link` to the target;
replies from the target go back through the reverse `Link`, if one is given, to the client
they answer. Like a NAT, the proxy gives each client (source address) a socket of its own
towards the target, so the target sees one peer per client and each reply goes to the
client whose socket it came back on, never to whoever spoke last. The client table is
bounded (`max_clients`, least recently active evicted) and idle clients expire; `allow`
restricts who may send at all.

Each direction waits for its socket(s) to become readable or for its link's next deadline,
drains the non-blocking sockets in batches (FACTS.md: a trio forwarder that awaits per
datagram runs at a third of a blocking one), and sends without awaiting unless a socket
buffer is full. Socket buffers are sized for bursts, and what the kernel still drops on a
full buffer is read back from its counters and reported on its own (`kernel_drops`).
Memory stays bounded: the links hold at most `limit` packets and a full send buffer stops
reading, so the kernel's receive buffer absorbs or drops the rest.

With a capture, every packet is recorded at the time it was read or sent (not when the
batch was processed), ingress and egress on interfaces of their own.

    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_proxy, ("127.0.0.1", 0), ("127.0.0.1", 9000), link)
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import trio

from emulator.fate import ARRIVAL, Fate
from emulator.link import Link
from emulator.pcap import EGRESS, INGRESS, CaptureWriter
from emulator.sockets import enlarge_buffers, kernel_drops

log = logging.getLogger("emulator")

_MAX_DATAGRAM = 65535
_BATCH = 256  # datagrams read per wake-up before the other tasks get a turn
DEFAULT_MAX_CLIENTS = 256
DEFAULT_CLIENT_IDLE = 120.0  # seconds without traffic either way before a client's socket closes

Address = tuple[str, int]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxyError(Exception):
    """A setup problem the user can fix (port in use, unknown host, a loop); the message says which."""


@dataclass
class ProxyStats:
    """What the proxy saw outside the links."""

    forward_refused: int = 0  # ICMP "port unreachable" from the target: nothing listening there
    not_allowed: int = 0  # datagrams from sources outside `allow`, dropped
    clients: int = 0  # clients seen (each got a socket towards the target)
    clients_expired: int = 0  # idle for `client_idle` seconds
    clients_evicted: int = 0  # pushed out of a full table
    to_closed_client: int = 0  # datagrams whose client's socket had closed by the time they left
    kernel_dropped: int = 0  # dropped by the kernel on full socket buffers (closed sockets' share)
    _sockets: list = field(default_factory=list, repr=False)  # open sockets whose drops count too

    def kernel_drops_now(self) -> int | None:
        """Kernel drops on every socket the proxy has had; None where the kernel does not say."""
        counts = [kernel_drops(sock) for sock in self._sockets if sock.fileno() >= 0]
        if None in counts:
            return None
        return self.kernel_dropped + sum(counts)

    def as_dict(self) -> dict:
        return {"forward_refused": self.forward_refused, "not_allowed": self.not_allowed, "clients": self.clients,
                "clients_expired": self.clients_expired, "clients_evicted": self.clients_evicted,
                "to_closed_client": self.to_closed_client, "kernel_dropped": self.kernel_drops_now()}


def resolve(address: Address, verb: str) -> tuple[int, tuple]:
    """The address family and socket address of `address`; ProxyError when it does not resolve."""
    host, port = address
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except OSError as error:
        raise ProxyError(f"cannot {verb} {host}:{port}: {error.strerror or error}") from None
    return family, sockaddr


def bind_listen_socket(address: Address) -> socket.socket:
    """A non-blocking UDP socket bound to `address`, buffers sized for bursts; ProxyError with a
    clear message on failure."""
    family, sockaddr = resolve(address, "listen on")
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        enlarge_buffers(sock)
        sock.bind(sockaddr)
    except OSError as error:
        sock.close()
        reason = "address already in use" if error.errno == errno.EADDRINUSE else (error.strerror or str(error))
        raise ProxyError(f"cannot listen on {address[0]}:{address[1]}: {reason}") from None
    sock.setblocking(False)
    return sock


def check_forward(listen_sock: socket.socket, forward: Address) -> tuple[int, tuple]:
    """The target's family and address, after checking it is reachable and is not the listen
    socket itself (which would loop every datagram forever)."""
    family, sockaddr = resolve(forward, "forward to")
    probe = socket.socket(family, socket.SOCK_DGRAM)
    try:
        probe.connect(sockaddr)  # no packet is sent: this only asks for a route
    except OSError as error:
        raise ProxyError(f"cannot forward to {forward[0]}:{forward[1]}: {error.strerror or error}") from None
    finally:
        probe.close()
    if _is_own_address(listen_sock, family, sockaddr):
        raise ProxyError(f"--forward {forward[0]}:{forward[1]} is the address this emulator listens on: "
                         "every datagram would loop through it forever")
    return family, sockaddr


def _is_own_address(listen_sock: socket.socket, family: int, target: tuple) -> bool:
    bound = listen_sock.getsockname()
    if family != listen_sock.family or target[1] != bound[1]:
        return False
    if ipaddress.ip_address(target[0]) == ipaddress.ip_address(bound[0]):
        return True
    if not ipaddress.ip_address(bound[0]).is_unspecified:
        return False
    probe = socket.socket(family, socket.SOCK_DGRAM)
    try:
        probe.bind((target[0], 0))  # succeeds only for an address of this host
        return True
    except OSError:
        return False
    finally:
        probe.close()


def parse_network(text: str) -> Network:
    """ADDR or ADDR/PREFIX ('127.0.0.1', '10.0.0.0/8', '::1/128'); ValueError when malformed."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"--allow {text!r} is not an address or ADDR/PREFIX") from None


@dataclass(eq=False)
class _Client:
    """One source address and the socket that talks to the target for it."""

    address: Address
    sock: socket.socket
    local: Address  # that socket's own address, as the target sees the client
    last_active: float
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)

    @property
    def closed(self) -> bool:
        return self.sock.fileno() < 0


async def serve_proxy(
    listen: socket.socket | Address,
    forward: Address,
    link: Link,
    *,
    reverse_link: Link | None = None,
    capture: CaptureWriter | None = None,
    stats: ProxyStats | None = None,
    allow: Sequence[Network] = (),
    max_clients: int = DEFAULT_MAX_CLIENTS,
    client_idle: float = DEFAULT_CLIENT_IDLE,
    task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the proxy until cancelled; reports the bound listen address through `task_status`.

    `listen` is a bound socket (see `bind_listen_socket`) or an address to bind; `forward`
    the target's address. `link` impairs client -> target; `reverse_link`, if given,
    impairs replies. With `capture`, every fate record is written to the pcapng file.
    `allow` (networks) restricts the sources served (empty: all). Counters live in
    `link.counters`, `reverse_link.counters` and `stats`. Raises ProxyError on setup
    problems (unresolvable or unreachable target, a target that is the listen socket).
    """
    listen_sock = listen if isinstance(listen, socket.socket) else bind_listen_socket(listen)
    stats = stats if stats is not None else ProxyStats()
    try:
        family, target = check_forward(listen_sock, forward)
        if capture is not None:
            link.record_fates = True
            if reverse_link is not None:
                reverse_link.record_fates = True
        proxy = _Proxy(listen_sock, family, target, link, reverse_link, capture, stats, tuple(allow), max_clients,
                       client_idle)
        try:
            async with trio.open_nursery() as nursery:
                proxy.nursery = nursery
                nursery.start_soon(proxy.forward_direction)
                if reverse_link is not None:
                    nursery.start_soon(proxy.reverse_pump)
                task_status.started(listen_sock.getsockname()[:2])
        finally:
            for client in list(proxy.clients.values()):
                proxy.close(client)
    finally:
        if not isinstance(listen, socket.socket):  # a socket passed in belongs to the caller
            listen_sock.close()


class _Proxy:
    def __init__(self, listen_sock, family, target, link, reverse_link, capture, stats, allow, max_clients,
                 client_idle) -> None:
        self.listen_sock = listen_sock
        self.family = family
        self.target = target
        self.link = link
        self.reverse_link = reverse_link
        self.capture = capture
        self.stats = stats
        self.allow = allow
        self.max_clients = max_clients
        self.client_idle = client_idle
        self.clients: OrderedDict[Address, _Client] = OrderedDict()  # least recently active first
        self.listen_address = listen_sock.getsockname()[:2]
        self.target_address = target[:2]
        self.nursery: trio.Nursery | None = None
        self._reverse_wakeup = trio.Event()
        self._queue_full_reported: set[str] = set()
        # capture timestamps: wall-clock ns = trio's clock + this offset
        self._wall_offset_ns = time.time_ns() - int(trio.current_time() * 1e9)
        stats._sockets.append(listen_sock)

    # ------------------------------------------------------------------ clients
    def client_for(self, address: Address, now: float) -> _Client | None:
        """The client's entry, opened (with its socket to the target) on its first datagram."""
        client = self.clients.get(address)
        if client is not None:
            client.last_active = now
            self.clients.move_to_end(address)
            return client
        self.expire(now)
        if len(self.clients) >= self.max_clients:
            self.stats.clients_evicted += 1
            self.close(next(iter(self.clients.values())))
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            enlarge_buffers(sock)
            sock.connect(self.target)  # a connected socket hears ICMP errors and accepts only the target's replies
        except OSError as error:
            sock.close()
            log.warning("cannot open a socket towards %s:%d for client %s:%d: %s", *self.target_address, *address,
                        error.strerror or error)
            return None
        sock.setblocking(False)
        client = _Client(address, sock, sock.getsockname()[:2], now)
        self.clients[address] = client
        self.stats.clients += 1
        self.stats._sockets.append(sock)
        self.nursery.start_soon(self.replies_of, client)
        return client

    def expire(self, now: float) -> None:
        while self.clients:
            oldest = next(iter(self.clients.values()))
            if oldest.last_active + self.client_idle > now:
                return
            self.stats.clients_expired += 1
            self.close(oldest)

    def close(self, client: _Client) -> None:
        if client.closed:
            return
        self.stats.kernel_dropped += kernel_drops(client.sock) or 0
        self.stats._sockets.remove(client.sock)
        client.scope.cancel()
        client.sock.close()
        self.clients.pop(client.address, None)

    def allowed(self, address: Address) -> bool:
        if not self.allow:
            return True
        host = ipaddress.ip_address(address[0].split("%")[0])
        if isinstance(host, ipaddress.IPv6Address) and host.ipv4_mapped is not None:
            host = host.ipv4_mapped
        return any(host in network for network in self.allow)

    # ------------------------------------------------------------------ directions
    async def forward_direction(self) -> None:
        """clients -> link -> target, each on its client's socket."""
        link, sock, clock = self.link, self.listen_sock, trio.current_time
        while True:
            await _wait_readable_or_deadline(sock, link.next_deadline())
            out: list[tuple[bytes, _Client]] = []
            for _ in range(_BATCH):
                try:
                    datagram, source = sock.recvfrom(_MAX_DATAGRAM)
                except (BlockingIOError, InterruptedError):
                    break
                except ConnectionRefusedError:  # an ICMP error for an earlier reply to a client
                    continue
                source = source[:2]
                if not self.allowed(source):
                    self.stats.not_allowed += 1
                    continue
                now = clock()  # each datagram's own arrival time: the link and the capture use it
                client = self.client_for(source, now)
                if client is None:
                    continue
                link.submit(datagram, now, client)
                out += link.due_tagged(now)
            out += link.due_tagged(clock())
            sent_at = [await self._send_to_target(datagram, client) for datagram, client in out]
            self._after_batch(link, "forward", sent_at)

    async def replies_of(self, client: _Client) -> None:
        """One client's replies: target -> (reverse link) -> that client."""
        with client.scope:
            while True:
                await trio.lowlevel.wait_readable(client.sock)
                direct: list[tuple[bytes, _Client]] = []
                for _ in range(_BATCH):
                    try:
                        datagram = client.sock.recv(_MAX_DATAGRAM)
                    except (BlockingIOError, InterruptedError):
                        break
                    except ConnectionRefusedError:
                        self._refused()
                        continue
                    client.last_active = trio.current_time()
                    if self.reverse_link is None:
                        direct.append((datagram, client))
                    else:
                        self.reverse_link.submit(datagram, client.last_active, client)
                if self.reverse_link is not None:
                    self._reverse_wakeup.set()
                    continue
                for datagram, to in direct:
                    await self._send_to_client(datagram, to)

    async def reverse_pump(self) -> None:
        """Releases the reverse link's datagrams when due, each to the client it answers."""
        link = self.reverse_link
        while True:
            deadline = link.next_deadline()
            with trio.move_on_at(float("inf") if deadline is None else deadline):
                await self._reverse_wakeup.wait()
            self._reverse_wakeup = trio.Event()
            out = link.due_tagged(trio.current_time())
            sent_at = [await self._send_to_client(datagram, client) for datagram, client in out]
            self._after_batch(link, "reverse", sent_at)

    # ------------------------------------------------------------------ sending
    async def _send_to_target(self, datagram: bytes, client: _Client) -> float | None:
        """Send on the client's socket; the time it left, or None when it could not."""
        while not client.closed:
            try:
                client.sock.send(datagram)
                return trio.current_time()
            except BlockingIOError:
                await trio.lowlevel.wait_writable(client.sock)
            except ConnectionRefusedError:  # reports an earlier datagram; this one was not sent yet
                self._refused()
            except OSError as error:
                log.warning("sending to %s:%d failed: %s", *self.target_address, error.strerror or error)
                return None
        self.stats.to_closed_client += 1
        return None

    async def _send_to_client(self, datagram: bytes, client: _Client) -> float | None:
        while True:
            try:
                self.listen_sock.sendto(datagram, client.address)
                return trio.current_time()
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self.listen_sock)
            except ConnectionRefusedError:
                continue  # an ICMP error from an earlier reply: the client went away
            except OSError as error:
                log.warning("sending to client %s:%d failed: %s", *client.address, error.strerror or error)
                return None

    # ------------------------------------------------------------------ records
    def _after_batch(self, link: Link, direction: str, sent_at: list[float | None]) -> None:
        if self.capture is not None:
            self._capture(link.take_fates(), direction, iter(sent_at))
        if link.counters.queue_dropped and direction not in self._queue_full_reported:
            self._queue_full_reported.add(direction)
            log.warning(
                "%s queue full (limit %d packets): arriving datagrams are dropped and counted as queue-dropped",
                direction, link.spec.limit,
            )

    def _capture(self, fates: list[Fate], direction: str, sent_at) -> None:
        """Write fate records at the time each packet was read or actually sent."""
        for fate in fates:
            client: _Client = fate.tag
            outer, inner = (client.address, self.listen_address), (client.local, self.target_address)
            if fate.direction == ARRIVAL:
                when, interface = fate.time, INGRESS
                src, dst = outer if direction == "forward" else (inner[1], inner[0])
            else:
                interface = EGRESS
                src, dst = inner if direction == "forward" else (outer[1], outer[0])
                dropped = fate.notes and fate.notes[-1].startswith("dropped")
                when = fate.time if dropped else next(sent_at, None) or fate.time
            self.capture.write(fate.datagram, int(when * 1e9) + self._wall_offset_ns, src, dst, fate.comment,
                               interface)

    def _refused(self) -> None:
        self.stats.forward_refused += 1
        if self.stats.forward_refused == 1:
            host, port = self.target_address
            log.warning("%s:%d refused a datagram (ICMP port unreachable): is anything listening there?", host, port)


async def _wait_readable_or_deadline(sock: socket.socket, deadline: float | None) -> None:
    if deadline is None:
        await trio.lowlevel.wait_readable(sock)
        return
    with trio.move_on_at(deadline):
        await trio.lowlevel.wait_readable(sock)
