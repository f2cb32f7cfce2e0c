"""The multicast session's trio edge: real UDP sockets on loopback, the cores do the rest.

One sender socket (bound to 127.0.0.1, `IP_MULTICAST_IF` 127.0.0.1, as FACTS.md says loopback
multicast needs) sends each group's common datagrams once to the group's multicast address
(239.255.77.(g + 1), organisation-local scope, TTL 1) and each user's private datagrams to
that user's unicast socket. Each receiver has two sockets of its own: one bound to its group's
multicast address and port with `SO_REUSEADDR`, member of the group on interface 127.0.0.1
(`IP_MULTICAST_ALL` off, so it hears that group only), and one unicast socket on 127.0.0.1.
A receiver's task waits for either socket, drains both, hands every datagram to its
`ReceiverCore` and sleeps until the core's next deadline. When the sender is done and a
receiver's links hold nothing more, what is queued on its sockets is all there will be
(loopback delivers within `sendto`), so it drains once more and ends the session.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

import trio
import trio.lowlevel

from emulator.sockets import enlarge_buffers, kernel_drops
from netsem.multiuser.session import Received, ReceiverCore, Transmission
from netsem.pipeline.udp import send_paced, udp_socket

MULTICAST_PREFIX = "239.255.77."
LOOPBACK = "127.0.0.1"
IP_MULTICAST_ALL = 49  # Linux; not in Python's socket module
RECHECK = 0.02  # seconds: how often a waiting receiver looks whether the sender is done


def multicast_address(group: int) -> str:
    if not 0 <= group <= 253:
        raise ValueError(f"group {group}: at most 254 multicast groups (239.255.77.1 .. .254)")
    return f"{MULTICAST_PREFIX}{group + 1}"


def multicast_receiver_socket(group_address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
        except OSError:
            pass  # not Linux: binding to the group address already filters
        enlarge_buffers(sock)
        sock.bind((group_address, port))
        membership = struct.pack("4s4s", socket.inet_aton(group_address), socket.inet_aton(LOOPBACK))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def sender_socket() -> socket.socket:
    sock = udp_socket((LOOPBACK, 0))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(LOOPBACK))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    return sock


def write_capture(path, transmission: Transmission, *, port: int, start_ns: int) -> int:
    """What the sender puts on the wire, as a pcapng Wireshark opens: each group's common
    datagrams to its multicast address, each user's private ones to 127.0.0.(user + 2) (the
    receivers' real unicast ports are ephemeral), 1 us apart in sending order (the dissector
    names each one's stream). Returns the number of packets."""
    from emulator.pcapng import PcapngWriter

    sender = (LOOPBACK, 40000)
    bursts = [((multicast_address(g), port), ds) for g, ds in transmission.common.items()]
    bursts += [((f"127.0.0.{user % 250 + 2}", port), ds) for user, ds in transmission.private.items()]
    written = 0
    with PcapngWriter(path, interfaces=("sender",)) as capture:
        for target, datagrams in bursts:
            for datagram in datagrams:
                capture.write(datagram, start_ns + 1000 * written, sender, target)
                written += 1
    return written


@dataclass
class SenderStats:
    datagrams_multicast: int = 0
    bytes_multicast: int = 0
    datagrams_unicast: int = 0
    bytes_unicast: int = 0


def _drain(sock: socket.socket, core: ReceiverCore, path: str, now: float) -> None:
    while True:
        try:
            datagram, sender = sock.recvfrom(65536)
        except BlockingIOError:
            return
        except ConnectionRefusedError:
            continue
        core.arrive(datagram, now, path, sender[:2])


async def _wait_readable(socks: list[socket.socket], deadline: float) -> None:
    """Until one of `socks` is readable or `deadline` (trio time) passes."""
    with trio.move_on_at(deadline):
        async with trio.open_nursery() as nursery:
            async def wait(sock: socket.socket) -> None:
                await trio.lowlevel.wait_readable(sock)
                nursery.cancel_scope.cancel()

            for sock in socks:
                nursery.start_soon(wait, sock)


async def _receive(core: ReceiverCore, sockets: dict[str, socket.socket], sender_done: trio.Event,
                   out: dict[int, list[Received]], drops: dict[int, int]) -> None:
    while True:
        deadline = core.next_deadline()
        recheck = trio.current_time() + RECHECK
        await _wait_readable(list(sockets.values()), recheck if deadline is None else min(deadline, recheck))
        now = trio.current_time()
        ended = sender_done.is_set()  # read before draining: all that was sent is queued now
        for path, sock in sockets.items():
            _drain(sock, core, path, now)
        core.poll(now)
        if ended and core.link_deadline() is None:
            core.flush(now)
            break
    out[core.user] = core.take_ready()
    drops[core.user] = sum(kernel_drops(sock) or 0 for sock in sockets.values())


async def run_session(transmission: Transmission, cores: dict[int, ReceiverCore], *, joins: dict[int, int],
                      port: int = 0) -> tuple[dict[int, list[Received]], SenderStats, dict[int, int]]:
    """Send one transmission to the receivers over loopback UDP; `joins[user]` is the group
    whose multicast address that user's receiver joins (normally its own). Returns what each
    receiver got, the sender's counters and each receiver's kernel drops."""
    sockets: dict[int, dict[str, socket.socket]] = {}
    sender = sender_socket()
    try:
        for user in cores:
            common = multicast_receiver_socket(multicast_address(joins[user]), port)
            port = port or common.getsockname()[1]
            sockets[user] = {"common": common, "private": udp_socket((LOOPBACK, 0))}
        stats = SenderStats()
        bursts: list[tuple[str, tuple, list[bytes]]] = []  # (kind, target, datagrams) in sending order
        for group, datagrams in transmission.common.items():
            bursts.append(("multicast", (multicast_address(group), port), datagrams))
        for user, datagrams in transmission.private.items():
            if user in sockets:
                bursts.append(("unicast", sockets[user]["private"].getsockname(), datagrams))
        received: dict[int, list[Received]] = {}
        drops: dict[int, int] = {}
        done = trio.Event()

        async def send() -> None:
            for kind, target, datagrams in bursts:
                await send_paced(sender, [(0.0, d) for d in datagrams], target)
                setattr(stats, f"datagrams_{kind}", getattr(stats, f"datagrams_{kind}") + len(datagrams))
                setattr(stats, f"bytes_{kind}", getattr(stats, f"bytes_{kind}") + sum(map(len, datagrams)))
                await trio.lowlevel.checkpoint()  # let the receivers drain between bursts
            done.set()

        async with trio.open_nursery() as nursery:
            for user, core in cores.items():
                nursery.start_soon(_receive, core, sockets[user], done, received, drops)
            nursery.start_soon(send)
        return received, stats, drops
    finally:
        sender.close()
        for pair in sockets.values():
            for sock in pair.values():
                sock.close()
