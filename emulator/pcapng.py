"""A pcapng writer for UDP datagrams, fast enough to run per datagram inside the emulator's loop.

Each record becomes one Ethernet / IPv4-or-IPv6 / UDP frame in an Enhanced Packet Block with a
nanosecond timestamp and an `opt_comment`:

    with PcapngWriter("run.pcapng", interfaces=("ingress", "egress")) as writer:
        writer.write(datagram, time.time_ns(), ("10.0.0.1", 5000), ("10.0.0.2", 47474), "sent", interface=1)

Why our own writer: building each frame with scapy costs hundreds of µs, which shifts the
emulator's timing; here a record is a few `struct.pack` calls on cached address bytes appended
to a buffer (a few µs), and the buffer goes to the file every `FLUSH_BYTES`, so memory stays
bounded. Block layout: pcapng, draft-ietf-opsawg-pcapng. The section is big-endian (its byte-order
magic says so; every reader swaps as needed), so one `struct.pack` in network byte order covers
the block's fields and the IP and UDP headers together.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

Endpoint = tuple[str, int]

FLUSH_BYTES = 1 << 20
LINKTYPE_ETHERNET = 1
_MAC = bytes.fromhex("020000000001")  # placeholder, locally administered (Ethernet keeps one link type for v4 and v6)
_ETHERNET_IPV4 = _MAC + _MAC + b"\x08\x00"
_ETHERNET_IPV6 = _MAC + _MAC + b"\x86\xdd"
_UDP = 17
_TTL = 64
_MAX_IPV4_DATAGRAM = 0xFFFF - 20 - 8  # IP total length is 16 bits
_MAX_IPV6_DATAGRAM = 0xFFFF - 8  # the UDP length is 16 bits (jumbograms are not written)
_ADDRESS_CACHE_SIZE = 4096  # (src, dst) pairs; a flood from many ports cannot grow it without bound

_OPT_ENDOFOPT = b"\x00\x00\x00\x00"
_OPT_COMMENT = 1
_IF_NAME = 2
_IF_TSRESOL = 9
_TSRESOL_NANOSECONDS = 9  # 10^-9 s per timestamp unit

# Enhanced Packet Block up to its packet data, then the 14-byte Ethernet header and the IP and
# UDP headers, in one pack: type, total length, interface, timestamp high, low, captured, original.
_EPB_IPV4 = struct.Struct(">7I14sBBHHHBBH8sHHHH")
_EPB_IPV6 = struct.Struct(">7I14sIHBB32sHHHH")
_EPB_OVERHEAD = 32  # the EPB's fixed fields (28) and trailing length (4)
_OPTION_HEADER = struct.Struct(">HH")
_TRAILER = struct.Struct(">I")
_PADDING = (b"", b"\x00\x00\x00", b"\x00\x00", b"\x00")  # indexed by length % 4


def _option(code: int, value: bytes) -> bytes:
    return _OPTION_HEADER.pack(code, len(value)) + value + _PADDING[len(value) % 4]


def _block(block_type: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack(">II", block_type, length) + body + _TRAILER.pack(length)


def _section_header() -> bytes:
    # byte-order magic, version 1.0, section length unknown (-1)
    return _block(0x0A0D0D0A, struct.pack(">IHHq", 0x1A2B3C4D, 1, 0, -1) + _OPT_ENDOFOPT)


def _interface_description(name: str) -> bytes:
    options = _option(_IF_NAME, name.encode()) + _option(_IF_TSRESOL, bytes([_TSRESOL_NANOSECONDS])) + _OPT_ENDOFOPT
    return _block(1, struct.pack(">HHI", LINKTYPE_ETHERNET, 0, 0) + options)


def _address(host: str) -> bytes:
    """16 bytes for IPv6 (an IPv4 address mapped into it), 4 for IPv4; a scope suffix is dropped."""
    host = host.partition("%")[0]
    if ":" in host:
        return socket.inet_pton(socket.AF_INET6, host)
    return socket.inet_pton(socket.AF_INET, host)


def _residue(data: bytes) -> int:
    """The Internet checksum's ones' complement sum of `data`, modulo 0xFFFF.

    The 16-bit words of `data` read as one big-endian integer are its digits in base 2^16, and
    2^16 = 1 (mod 0xFFFF), so the integer modulo 0xFFFF is the sum of its words: one C-speed
    conversion instead of a Python loop over 600 words. Odd lengths get a zero pad byte.
    """
    value = int.from_bytes(data, "big")
    return (value << 8 if len(data) & 1 else value) % 0xFFFF


class _Route:
    """What every frame from one (src, dst) pair shares, computed once."""

    __slots__ = ("ipv6", "addresses", "sport", "dport", "checksum_base")

    def __init__(self, src: Endpoint, dst: Endpoint) -> None:
        source, destination = _address(src[0]), _address(dst[0])
        self.ipv6 = len(source) == 16 or len(destination) == 16
        if self.ipv6:  # a mixed pair (e.g. a placeholder 0.0.0.0 client of an IPv6 socket) maps IPv4 into IPv6
            source, destination = (a if len(a) == 16 else b"\x00" * 10 + b"\xff\xff" + a for a in (source, destination))
        self.addresses = source + destination
        self.sport, self.dport = src[1], dst[1]
        if self.ipv6:
            # the UDP checksum's pseudo-header addresses, next header and ports; the lengths vary
            self.checksum_base = _residue(self.addresses) + _UDP + self.sport + self.dport
        else:
            # the IPv4 header checksum's constant words: version/IHL/TOS, TTL/protocol, addresses
            self.checksum_base = 0x4500 + (_TTL << 8 | _UDP) + _residue(self.addresses)


class PcapngWriter:
    """Writes UDP datagrams as Ethernet frames to a pcapng file, one interface per name given."""

    def __init__(self, path: str | Path, interfaces: tuple[str, ...] = ("ingress", "egress")) -> None:
        if not interfaces:
            raise ValueError("a pcapng file needs at least one interface")
        self.path = Path(path)
        self.interfaces = tuple(interfaces)
        self._file = open(self.path, "wb")
        self._buffer = bytearray(_section_header())
        for name in self.interfaces:
            self._buffer += _interface_description(name)
        self._routes: dict[tuple[Endpoint, Endpoint], _Route] = {}

    def write(self, datagram: bytes, time_ns: int, src: Endpoint, dst: Endpoint, comment: str = "",
              interface: int = 0) -> None:
        """One UDP datagram from `src` to `dst` at `time_ns` (nanoseconds since the Unix epoch)."""
        route = self._routes.get((src, dst))
        if route is None:
            route = self._route(src, dst)
        if not 0 <= interface < len(self.interfaces):
            raise ValueError(f"interface {interface}: this capture declares {len(self.interfaces)}")
        size = len(datagram)
        udp_length = size + 8
        encoded = comment.encode()
        options = (_OPTION_HEADER.pack(_OPT_COMMENT, len(encoded)) + encoded + _PADDING[len(encoded) % 4]
                   + _OPT_ENDOFOPT) if encoded else b""
        if route.ipv6:
            if size > _MAX_IPV6_DATAGRAM:
                raise ValueError(f"a {size}-byte datagram does not fit a UDP/IPv6 header")
            captured = udp_length + 54
            pad = _PADDING[captured % 4]
            total = _EPB_OVERHEAD + captured + len(pad) + len(options)
            # ~sum, with a zero sum's residue 0 giving 0xFFFF: never 0, "no checksum", which IPv6 forbids
            checksum = 0xFFFF - (route.checksum_base + 2 * udp_length + _residue(datagram)) % 0xFFFF
            self._buffer += _EPB_IPV6.pack(
                6, total, interface, time_ns >> 32, time_ns & 0xFFFFFFFF, captured, captured, _ETHERNET_IPV6,
                0x60000000, udp_length, _UDP, _TTL, route.addresses, route.sport, route.dport, udp_length, checksum,
            )
        else:
            if size > _MAX_IPV4_DATAGRAM:
                raise ValueError(f"a {size}-byte datagram does not fit a UDP/IPv4 header")
            total_length = udp_length + 20
            captured = total_length + 14
            pad = _PADDING[captured % 4]
            total = _EPB_OVERHEAD + captured + len(pad) + len(options)
            header_sum = route.checksum_base + total_length
            header_sum = (header_sum & 0xFFFF) + (header_sum >> 16)
            header_sum = (header_sum & 0xFFFF) + (header_sum >> 16)
            # identification 0, no fragment flags, UDP checksum 0: "none", legal over IPv4
            self._buffer += _EPB_IPV4.pack(
                6, total, interface, time_ns >> 32, time_ns & 0xFFFFFFFF, captured, captured, _ETHERNET_IPV4,
                0x45, 0, total_length, 0, 0, _TTL, _UDP, ~header_sum & 0xFFFF, route.addresses,
                route.sport, route.dport, udp_length, 0,
            )
        self._buffer += datagram
        self._buffer += pad
        self._buffer += options
        self._buffer += _TRAILER.pack(total)
        if len(self._buffer) >= FLUSH_BYTES:
            self.flush()

    def _route(self, src: Endpoint, dst: Endpoint) -> _Route:
        if len(self._routes) >= _ADDRESS_CACHE_SIZE:
            self._routes.clear()
        route = self._routes[(src, dst)] = _Route(src, dst)
        return route

    def flush(self) -> None:
        """Everything written so far goes to the file."""
        self._file.write(self._buffer)
        self._buffer.clear()
        self._file.flush()

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self.flush()
        finally:
            self._file.close()

    def __enter__(self) -> PcapngWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
