"""The trio UDP proxy: real sockets around the same sans-I/O `Link` the offline driver uses.

Datagrams arriving on a listen socket go through a forward `Link` to that socket's target;
replies from the target go back through a reverse `Link`, if one applies, to the client they
answer. Like a NAT, the proxy gives each client (source address) a socket of its own towards
the target, so the target sees one peer per client and each reply goes to the client whose
socket it came back on, never to whoever spoke last. The client table is bounded
(`max_clients`, least recently active evicted) and idle clients expire; `allow` restricts who
may send at all.

Several routes (a listen socket and its target each) may run in one proxy, and per-flow
rules (`emulator.rules.RuleSet`) give each flow the link of the first rule that matches it;
flows no rule takes use the default links. Each link has a pump task that releases what is
due at its next deadline; arrivals are read in batches from the non-blocking sockets
(FACTS.md: a trio forwarder that awaits per datagram runs at a third of a blocking one),
passed through their link at once (`Link.pass_ns`: a link with nothing to do forwards
without queueing) and sent without awaiting unless a socket buffer is full. Socket buffers
are sized for bursts, and what the kernel still drops on a full buffer is read back from its
counters and reported on its own (`kernel_drops`). Memory stays bounded: the links hold at
most `limit` packets and a full send buffer stops reading, so the kernel's receive buffer
absorbs or drops the rest.

The links run on the proxy's clock, `time.monotonic_ns()` (the clock trio's default clock
reads too), in integer nanoseconds. With a capture, every packet is recorded at the time it
was read or sent (not when the batch was processed), ingress and egress on interfaces of
their own; with an event log, every fate record is written with its link's name.

    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_proxy, ("127.0.0.1", 0), ("127.0.0.1", 9000), link)
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import trio

from emulator.eventlog import EventLogWriter
from emulator.fate import ARRIVAL, Fate
from emulator.link import Link, header_bytes_for
from emulator.pcap import EGRESS, INGRESS, CaptureWriter
from emulator.rules import FORWARD, REVERSE, RuleSet
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
class _Route:
    """A listen socket and the target its clients' datagrams go to."""

    sock: socket.socket
    family: int
    target: tuple  # the target's socket address
    listen_address: Address
    target_address: Address
    clients: dict = field(default_factory=dict)  # source sockaddr -> _Client


@dataclass(eq=False)
class _Client:
    """One source address on one route, the socket that talks to the target for it, and its links."""

    address: Address
    route: _Route
    sock: socket.socket
    local: Address  # that socket's own address, as the target sees the client
    last_active: int  # ns on the proxy's clock
    forward: object  # its forward link
    reverse: object | None  # its reverse link; None: replies pass unimpaired
    forward_header: int  # bytes on the wire besides the payload, towards the target
    reverse_header: int  # and towards the client
    forward_pump: object = None
    source: tuple = ()  # the socket address it sends from, its key in its route's table
    pass_forward: object = None  # forward.pass_ns and sock.send, looked up once (the per-datagram path)
    send: object = None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)

    @property
    def closed(self) -> bool:
        return self.sock.fileno() < 0


@dataclass(eq=False)
class _Pump:
    """A link's departures: woken at its next deadline or when an arrival makes that earlier."""

    link: object
    name: str
    direction: str
    wakeup: trio.Event = field(default_factory=trio.Event)
    sleeping_until: int | None = None

    def poke(self) -> None:
        deadline = self.link.next_deadline_ns()
        if deadline is not None and (self.sleeping_until is None or deadline < self.sleeping_until):
            self.wakeup.set()


async def serve_proxy(
    listen: socket.socket | Address,
    forward: Address,
    link: Link,
    *,
    reverse_link: Link | None = None,
    rules: RuleSet | None = None,
    routes: Sequence[tuple[socket.socket | Address, Address]] = (),
    capture: CaptureWriter | None = None,
    event_log: EventLogWriter | None = None,
    stats: ProxyStats | None = None,
    allow: Sequence[Network] = (),
    max_clients: int = DEFAULT_MAX_CLIENTS,
    client_idle: float = DEFAULT_CLIENT_IDLE,
    task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the proxy until cancelled; reports the bound listen address through `task_status`.

    `listen` is a bound socket (see `bind_listen_socket`) or an address to bind; `forward`
    the target's address. `link` impairs client -> target; `reverse_link`, if given,
    impairs replies. `rules`, if given, chooses per flow (its defaults replace `link` and
    `reverse_link`); `routes` are more (listen, target) pairs served alike. With `capture`,
    every fate record is written to the pcapng file; with `event_log`, to the event log.
    `allow` (networks) restricts the sources served (empty: all). Counters live in the links'
    `counters` and `stats`. Raises ProxyError on setup problems (unresolvable or unreachable
    target, a target that is the listen socket).
    """
    if rules is None:
        rules = RuleSet([], {}, link, reverse_link)
    stats = stats if stats is not None else ProxyStats()
    owned: list[socket.socket] = []
    try:
        built = []
        for listen_at, target in ((listen, forward), *routes):
            sock = listen_at if isinstance(listen_at, socket.socket) else bind_listen_socket(listen_at)
            if sock is not listen_at:
                owned.append(sock)
            family, sockaddr = check_forward(sock, target)
            built.append(_Route(sock, family, sockaddr, sock.getsockname()[:2], sockaddr[:2]))
        for route in built:
            for other in built:
                if other is not route and _is_own_address(other.sock, route.family, route.target):
                    raise ProxyError(f"the target {route.target_address[0]}:{route.target_address[1]} is another "
                                     "address this emulator listens on: datagrams would go through it twice or loop")
        named = rules.named_links()
        if capture is not None or event_log is not None:
            for _, each in named:
                each.record_fates = True
        proxy = _Proxy(built, rules, named, capture, event_log, stats, tuple(allow), max_clients, client_idle)
        try:
            async with trio.open_nursery() as nursery:
                proxy.nursery = nursery
                for route in built:
                    nursery.start_soon(proxy.receive, route)
                for pump in proxy.pumps.values():
                    nursery.start_soon(proxy.run_pump, pump)
                task_status.started(built[0].listen_address)
        finally:
            for client in proxy.all_clients():
                proxy.close(client)
    finally:
        for sock in owned:  # a socket passed in belongs to the caller
            sock.close()


class _Proxy:
    def __init__(self, routes, rules, named_links, capture, event_log, stats, allow, max_clients, client_idle) -> None:
        self.routes = routes
        self.rules = rules
        self.capture = capture
        self.event_log = event_log
        self.recording = capture is not None or event_log is not None
        self.stats = stats
        self.allow = allow
        self.max_clients = max_clients
        self.client_idle_ns = int(client_idle * 1e9)
        self.pumps: dict[int, _Pump] = {}  # id(link) -> its pump
        for name, each in named_links:
            direction = REVERSE if name.endswith(REVERSE) else FORWARD
            self.pumps[id(each)] = _Pump(each, name, direction)
        self.nursery: trio.Nursery | None = None
        self._queue_full_reported: set[str] = set()
        self.clock_ns = time.monotonic_ns
        self._wall_offset_ns = time.time_ns() - time.monotonic_ns()  # capture timestamps: wall clock
        for route in routes:
            stats._sockets.append(route.sock)

    # ------------------------------------------------------------------ clients
    def open_client(self, route: _Route, source: tuple, now: int) -> _Client | None:
        """A client's entry on its first datagram: its socket to the target and its links."""
        address = source[:2]
        if not self.allowed(address):
            self.stats.not_allowed += 1
            return None
        self.expire(now)
        clients = self.all_clients()
        if len(clients) >= self.max_clients:
            self.stats.clients_evicted += 1
            self.close(min(clients, key=lambda client: client.last_active))
        sock = socket.socket(route.family, socket.SOCK_DGRAM)
        try:
            enlarge_buffers(sock)
            sock.connect(route.target)  # a connected socket hears ICMP errors and accepts only the target's replies
        except OSError as error:
            sock.close()
            log.warning("cannot open a socket towards %s:%d for client %s:%d: %s", *route.target_address, *address,
                        error.strerror or error)
            return None
        sock.setblocking(False)
        forward_link = self.rules.forward_link(address, route.target_address)
        reverse_link = self.rules.reverse_link(address, route.target_address)
        client = _Client(address, route, sock, sock.getsockname()[:2], now, forward_link, reverse_link,
                         header_bytes_for(route.family), header_bytes_for(route.sock.family),
                         self.pumps[id(forward_link)], source)
        client.pass_forward, client.send = forward_link.pass_ns, sock.send
        route.clients[source] = client
        self.stats.clients += 1
        self.stats._sockets.append(sock)
        self.nursery.start_soon(self.replies_of, client)
        return client

    def all_clients(self) -> list[_Client]:
        return [client for route in self.routes for client in route.clients.values()]

    def expire(self, now: int) -> None:
        for client in [c for c in self.all_clients() if c.last_active + self.client_idle_ns <= now]:
            self.stats.clients_expired += 1
            self.close(client)

    def close(self, client: _Client) -> None:
        if client.closed:
            return
        self.stats.kernel_dropped += kernel_drops(client.sock) or 0
        self.stats._sockets.remove(client.sock)
        client.scope.cancel()
        client.sock.close()
        client.route.clients.pop(client.source, None)

    def allowed(self, address: Address) -> bool:
        if not self.allow:
            return True
        host = ipaddress.ip_address(address[0].split("%")[0])
        if isinstance(host, ipaddress.IPv6Address) and host.ipv4_mapped is not None:
            host = host.ipv4_mapped
        return any(host in network for network in self.allow)

    # ------------------------------------------------------------------ directions
    async def receive(self, route: _Route) -> None:
        """clients -> their forward links -> the target, each on its client's socket.

        Each datagram is sent on as soon as its link releases it (a forwarder that holds a
        batch back stalls a sender that waits for replies); only a full send buffer makes it
        stop reading and await."""
        sock, clock, clients, largest = route.sock, self.clock_ns, route.clients, _MAX_DATAGRAM
        recvfrom = sock.recvfrom
        while True:
            await trio.lowlevel.wait_readable(sock)
            out: list[tuple[bytes, _Client]] = []
            sent = 0  # out[:sent] have left
            sent_at = [] if self.capture is not None else None
            for _ in range(_BATCH):
                try:
                    datagram, source = recvfrom(largest)
                except (BlockingIOError, InterruptedError):
                    break
                except ConnectionRefusedError:  # an ICMP error for an earlier reply to a client
                    continue
                now = clock()  # each datagram's own arrival time: the link and the capture use it
                client = clients.get(source)
                if client is None:
                    client = self.open_client(route, source, now)
                    if client is None:
                        continue
                client.last_active = now
                if client.pass_forward(datagram, now, client, out, client.forward_header):
                    client.forward_pump.poke()
                while sent < len(out):
                    departing, to = out[sent]
                    try:
                        to.send(departing)
                    except OSError:  # a full buffer, an ICMP error to report, a closed client: below
                        break
                    sent += 1
                    if sent_at is not None:
                        sent_at.append(clock())
                else:
                    continue
                break
            await self._send_forward(out, sent, sent_at)

    async def replies_of(self, client: _Client) -> None:
        """One client's replies: target -> (its reverse link) -> that client."""
        reverse = client.reverse
        pump = self.pumps[id(reverse)] if reverse is not None else None
        with client.scope:
            while True:
                await trio.lowlevel.wait_readable(client.sock)
                out: list[tuple[bytes, _Client]] = []
                for _ in range(_BATCH):
                    try:
                        datagram = client.sock.recv(_MAX_DATAGRAM)
                    except (BlockingIOError, InterruptedError):
                        break
                    except ConnectionRefusedError:
                        self._refused(client.route)
                        continue
                    now = self.clock_ns()
                    client.last_active = now
                    if reverse is None:
                        out.append((datagram, client))
                    elif reverse.pass_ns(datagram, now, client, out, client.reverse_header):
                        pump.poke()
                await self._send_reverse(out)

    async def run_pump(self, pump: _Pump) -> None:
        """Releases a link's datagrams when due."""
        link, clock = pump.link, self.clock_ns
        send = self._send_reverse if pump.direction == REVERSE else self._send_forward
        while True:
            deadline = link.next_deadline_ns()
            pump.sleeping_until = deadline
            if deadline is None:
                await pump.wakeup.wait()
            else:
                with trio.move_on_after(max(0.0, (deadline - clock()) / 1e9)):
                    await pump.wakeup.wait()
            pump.wakeup = trio.Event()
            await send(link.due_tagged_ns(clock()))

    # ------------------------------------------------------------------ sending
    async def _send_forward(self, out: list[tuple[bytes, _Client]], sent: int = 0,
                            sent_at: list | None = None) -> None:
        """Send out[sent:] each on its client's socket, awaiting only when a buffer is full."""
        if sent_at is None and self.capture is not None:
            sent_at = []
        for datagram, client in out[sent:]:
            try:
                client.sock.send(datagram)
                when = self.clock_ns() if sent_at is not None else None
            except OSError:  # a full buffer, an ICMP error to report, a closed client
                when = await self._send_to_target(datagram, client)
            if sent_at is not None:
                sent_at.append(when)
        self._after_batch(out, sent_at, FORWARD)

    async def _send_reverse(self, out: list[tuple[bytes, _Client]]) -> None:
        sent_at = [] if self.capture is not None else None
        for datagram, client in out:
            when = await self._send_to_client(datagram, client)
            if sent_at is not None:
                sent_at.append(when)
        self._after_batch(out, sent_at, REVERSE)

    async def _send_to_target(self, datagram: bytes, client: _Client) -> int | None:
        """Send on the client's socket; the time it left, or None when it could not."""
        while not client.closed:
            try:
                client.sock.send(datagram)
                return self.clock_ns()
            except BlockingIOError:
                await trio.lowlevel.wait_writable(client.sock)
            except ConnectionRefusedError:  # reports an earlier datagram; this one was not sent yet
                self._refused(client.route)
            except OSError as error:
                if client.closed:
                    break
                log.warning("sending to %s:%d failed: %s", *client.route.target_address, error.strerror or error)
                return None
        self.stats.to_closed_client += 1
        return None

    async def _send_to_client(self, datagram: bytes, client: _Client) -> int | None:
        sock = client.route.sock
        while True:
            try:
                sock.sendto(datagram, client.address)
                return self.clock_ns()
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)
            except ConnectionRefusedError:
                continue  # an ICMP error from an earlier reply: the client went away
            except OSError as error:
                log.warning("sending to client %s:%d failed: %s", *client.address, error.strerror or error)
                return None

    # ------------------------------------------------------------------ records
    def _after_batch(self, out: list[tuple[bytes, _Client]], sent_at: list | None, direction: str) -> None:
        """Write the fate records of every link of `direction` (captures date departures by `sent_at`)
        and warn once per link when its queue overflows."""
        by_link: dict[int, list] = {}
        if sent_at is not None:
            for (_, client), when in zip(out, sent_at):
                link = client.forward if direction == FORWARD else client.reverse
                by_link.setdefault(id(link), []).append(when)
        for pump in self.pumps.values():
            if pump.direction != direction:
                continue
            fates = pump.link.take_fates() if self.recording else None
            if fates:
                if self.event_log is not None:
                    self.event_log.write(pump.name, fates)
                if self.capture is not None:
                    self._capture(fates, direction, iter(by_link.get(id(pump.link), ())))
            if pump.link.counters.queue_dropped and pump.name not in self._queue_full_reported:
                self._queue_full_reported.add(pump.name)
                log.warning("%s queue full (limit %d packets): arriving datagrams are dropped and counted as "
                            "queue-dropped", pump.name, pump.link.spec.limit)

    def _capture(self, fates: list[Fate], direction: str, sent_at) -> None:
        """Write fate records at the time each packet was read or actually sent."""
        for fate in fates:
            client: _Client = fate.tag
            route = client.route
            outer, inner = (client.address, route.listen_address), (client.local, route.target_address)
            if fate.direction == ARRIVAL:
                when, interface = fate.time_ns, INGRESS
                src, dst = outer if direction == FORWARD else (inner[1], inner[0])
            else:
                interface = EGRESS
                src, dst = inner if direction == FORWARD else (outer[1], outer[0])
                when = fate.time_ns if fate.dropped else next(sent_at, None) or fate.time_ns
            self.capture.write(fate.datagram, when + self._wall_offset_ns, src, dst, fate.comment, interface)

    def _refused(self, route: _Route) -> None:
        self.stats.forward_refused += 1
        if self.stats.forward_refused == 1:
            host, port = route.target_address
            log.warning("%s:%d refused a datagram (ICMP port unreachable): is anything listening there?", host, port)
