"""A strict reader of pcap and pcapng files, and the UDP datagram inside each captured frame.

    for record in read_capture("run.pcapng"):
        udp = decode_udp(record.link_type, record.data)

`read_capture` yields every packet up to the first damage (a cut-off file, a block length
that cannot be, a trailing length that disagrees with the leading one, a bad magic) and then
raises `CaptureError` saying where, as tshark fails where scapy's reader stops with a warning:
a half-read capture must not pass for a whole one. It reads classic pcap (either byte order,
µs or ns timestamps) and pcapng (either byte order, several sections, SHB/IDB/EPB/SPB and the
obsolete Packet Block, any `if_tsresol` and `if_tsoffset`; other blocks are skipped).
Timestamps are integer nanoseconds, exact for the common resolutions.

`decode_udp` never raises: packet bytes come from the network, so anything it does not
understand is "not UDP" (None).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

# Longer records or blocks are damage, not data: tshark's own limits (wiretap's 256 KiB
# packets, 16 MiB blocks) also keep a corrupt length from allocating gigabytes.
MAX_PACKET_BYTES = 262_144
MAX_BLOCK_BYTES = 16 * 1024 * 1024

_SECTION_HEADER = b"\x0a\x0d\x0d\x0a"  # the first block's type, a palindrome
_BYTE_ORDER_MAGIC = b"\x1a\x2b\x3c\x4d"  # as written big-endian
_PCAP_MAGICS = {  # first four bytes of a classic pcap -> (byte order, nanoseconds per timestamp fraction unit)
    b"\xd4\xc3\xb2\xa1": ("<", 1000), b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1), b"\xa1\xb2\x3c\x4d": (">", 1),
}
_BLOCK_SECTION_HEADER = 0x0A0D0D0A
_BLOCK_INTERFACE = 1
_BLOCK_PACKET_OBSOLETE = 2
_BLOCK_SIMPLE_PACKET = 3
_BLOCK_ENHANCED_PACKET = 6
_OPT_COMMENT = 1
_IF_NAME = 2
_IF_TSRESOL = 9
_IF_TSOFFSET = 14


class CaptureError(Exception):
    """The capture is damaged at `offset` (bytes from the file start), after `packets` good packets."""

    def __init__(self, problem: str, offset: int, packets: int) -> None:
        super().__init__(f"{problem} at byte {offset}, after {packets} packets")
        self.problem, self.offset, self.packets = problem, offset, packets


class NotACapture(CaptureError):
    """The file does not start like a pcap or pcapng file."""


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    number: int  # 1-based, as Wireshark counts
    time_ns: int | None  # ns since the Unix epoch; None for a Simple Packet Block, which has no time stamp
    interface: int  # index among the section's interfaces (0 in a classic pcap)
    interface_name: str | None  # pcapng `if_name`; None when the file names none
    comments: tuple[str, ...]
    link_type: int  # LINKTYPE_* (1 Ethernet, 101 raw IP, 113 Linux SLL, ...)
    data: bytes  # the captured link-layer bytes (possibly fewer than were on the wire)


@dataclass(frozen=True, slots=True)
class _Interface:
    link_type: int
    snap_length: int
    name: str | None
    resolution: tuple[int, int]  # (base, exponent): one time unit is base^-exponent seconds
    offset_s: int  # if_tsoffset, seconds added to every time stamp

    def time_ns(self, units: int) -> int:
        base, exponent = self.resolution
        if base == 10 and exponent <= 9:
            nanoseconds = units * 10 ** (9 - exponent)
        else:  # finer than ns, or a power of 2: rounded down to the ns
            nanoseconds = units * 10**9 // base**exponent
        return nanoseconds + self.offset_s * 10**9


class _File:
    """A capture file read block by block, counting bytes and packets for the error messages."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.offset = 0
        self.packets = 0

    def read(self, size: int, what: str, start: int) -> bytes:
        """Exactly `size` bytes of `what` (which begins at `start`), or CaptureError."""
        data = self.stream.read(size)
        self.offset += len(data)
        if len(data) < size:
            raise self.error(f"file ends {self.offset - start} bytes into {what}", start)
        return data

    def at_end(self) -> bool:
        return not self.stream.peek(1)

    def error(self, problem: str, offset: int) -> CaptureError:
        return CaptureError(problem, offset, self.packets)


def read_capture(path: str | Path) -> Iterator[CaptureRecord]:
    """Every packet of a pcap or pcapng file in order; CaptureError after the last good one if damaged.

    OSError when the file cannot be opened; NotACapture when it is neither format.
    """
    with open(path, "rb") as stream:
        magic = stream.peek(4)[:4]
        file = _File(stream)
        if magic == _SECTION_HEADER:
            yield from _read_pcapng(file)
        elif magic in _PCAP_MAGICS:
            yield from _read_pcap(file, *_PCAP_MAGICS[magic])
        else:
            shown = f"it starts with {magic.hex()}" if magic else "it is empty"
            raise NotACapture(f"not a pcap or pcapng file ({shown})", 0, 0)


def _read_pcap(file: _File, order: str, ns_per_fraction: int) -> Iterator[CaptureRecord]:
    header = file.read(24, "the pcap file header", 0)
    link_type = struct.unpack_from(order + "I", header, 20)[0] & 0x03FFFFFF  # upper bits: FCS length (libpcap)
    record_header = struct.Struct(order + "IIII")
    while not file.at_end():
        start = file.offset
        seconds, fraction, captured, _original = record_header.unpack(file.read(16, "a record header", start))
        if captured > MAX_PACKET_BYTES:
            raise file.error(f"bad record length {captured}", start)
        data = file.read(captured, "a record", start)
        file.packets += 1
        yield CaptureRecord(file.packets, seconds * 10**9 + fraction * ns_per_fraction, 0, None, (), link_type, data)


def _read_pcapng(file: _File) -> Iterator[CaptureRecord]:
    order = ""  # each Section Header Block says which
    interfaces: list[_Interface] = []
    while not file.at_end():
        start = file.offset
        head = file.read(8, "a block header", start)
        if head[:4] == _SECTION_HEADER:  # the same four bytes in either byte order
            order = _section_byte_order(file, file.read(4, "a section header", start), start)
            interfaces = []
        block_type, length = struct.unpack(order + "II", head)
        minimum = 28 if block_type == _BLOCK_SECTION_HEADER else 12
        if length < minimum or length % 4 or length > MAX_BLOCK_BYTES:
            raise file.error(f"bad block length {length}", start)
        body = file.read(length - (file.offset - start) - 4, f"a block of type {block_type:#x}", start)
        (trailer,) = struct.unpack(order + "I", file.read(4, f"a block of type {block_type:#x}", start))
        if trailer != length:
            raise file.error(f"block length {length} but trailing length {trailer}", start)
        if block_type == _BLOCK_SECTION_HEADER:
            major = struct.unpack_from(order + "H", body)[0]
            if major != 1:
                raise file.error(f"pcapng version {major}, this reader knows 1", start)
        elif block_type == _BLOCK_INTERFACE:
            interfaces.append(_interface(file, order, body, start))
        elif block_type in (_BLOCK_ENHANCED_PACKET, _BLOCK_PACKET_OBSOLETE):
            file.packets += 1
            yield _packet(file, order, block_type, body, interfaces, start)
        elif block_type == _BLOCK_SIMPLE_PACKET:
            file.packets += 1
            yield _simple_packet(file, order, body, interfaces, start)


def _section_byte_order(file: _File, magic: bytes, start: int) -> str:
    if magic == _BYTE_ORDER_MAGIC:
        return ">"
    if magic == _BYTE_ORDER_MAGIC[::-1]:
        return "<"
    raise file.error(f"bad byte-order magic {magic.hex()} in a section header", start)


def _options(file: _File, order: str, data: bytes, start: int) -> Iterator[tuple[int, bytes]]:
    """(code, value) of each option up to opt_endofopt or the end of the block."""
    position, header = 0, struct.Struct(order + "HH")
    while len(data) - position >= 4:
        code, length = header.unpack_from(data, position)
        if code == 0:
            return
        position += 4
        if position + length > len(data):
            raise file.error(f"option {code} of {length} bytes overruns its block", start)
        yield code, data[position:position + length]
        position += length + (-length % 4)


def _interface(file: _File, order: str, body: bytes, start: int) -> _Interface:
    if len(body) < 8:
        raise file.error("interface description block too short", start)
    link_type, _reserved, snap_length = struct.unpack_from(order + "HHI", body)
    name, resolution, offset_s = None, (10, 6), 0  # pcapng's default resolution: µs
    for code, value in _options(file, order, body[8:], start):
        if code == _IF_NAME:
            name = value.decode("utf-8", "replace")
        elif code == _IF_TSRESOL and len(value) == 1:
            resolution = (2 if value[0] & 0x80 else 10, value[0] & 0x7F)
        elif code == _IF_TSOFFSET and len(value) == 8:
            offset_s = struct.unpack(order + "q", value)[0]
    return _Interface(link_type, snap_length, name, resolution, offset_s)


def _interface_of(file: _File, interface_id: int, interfaces: list[_Interface], start: int) -> _Interface:
    if interface_id >= len(interfaces):
        raise file.error(f"a packet of interface {interface_id}, but the section describes {len(interfaces)}", start)
    return interfaces[interface_id]


def _packet(file: _File, order: str, block_type: int, body: bytes, interfaces: list[_Interface],
            start: int) -> CaptureRecord:
    """An Enhanced Packet Block's record, or an obsolete Packet Block's (16-bit interface id and a drop count)."""
    if len(body) < 20:
        raise file.error("packet block too short", start)
    if block_type == _BLOCK_ENHANCED_PACKET:
        interface_id, high, low, captured, _original = struct.unpack_from(order + "5I", body)
    else:
        interface_id, _drops, high, low, captured, _original = struct.unpack_from(order + "HH4I", body)
    interface = _interface_of(file, interface_id, interfaces, start)
    options_start = 20 + captured + (-captured % 4)
    if options_start > len(body):
        raise file.error(f"captured length {captured} overruns its block", start)
    comments = tuple(value.decode("utf-8", "replace")
                     for code, value in _options(file, order, body[options_start:], start) if code == _OPT_COMMENT)
    return CaptureRecord(file.packets, interface.time_ns(high << 32 | low), interface_id, interface.name, comments,
                         interface.link_type, body[20:20 + captured])


def _simple_packet(file: _File, order: str, body: bytes, interfaces: list[_Interface], start: int) -> CaptureRecord:
    """A Simple Packet Block: interface 0, no time stamp, no options; the snap length bounds what it holds."""
    interface = _interface_of(file, 0, interfaces, start)
    if len(body) < 4:
        raise file.error("simple packet block too short", start)
    (original,) = struct.unpack_from(order + "I", body)
    captured = min(original, len(body) - 4, interface.snap_length or original)
    return CaptureRecord(file.packets, None, 0, interface.name, (), interface.link_type, body[4:4 + captured])


class UdpDatagram(NamedTuple):
    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes  # as long as the UDP length says, clipped to what was captured


_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_IPV6 = 0x86DD
_ETHERTYPE_VLANS = (0x8100, 0x88A8, 0x9100)  # 802.1Q, 802.1ad and the older QinQ tag
_BSD_AF_INET6 = (10, 24, 28, 30)  # Linux, NetBSD/OpenBSD, FreeBSD, macOS
_IPV6_EXTENSIONS = (0, 43, 60)  # hop-by-hop, routing, destination options: (length + 1) * 8 bytes
_IPV6_FRAGMENT = 44
_IPV6_AUTHENTICATION = 51  # (length + 2) * 4 bytes


def decode_udp(link_type: int, data: bytes) -> UdpDatagram | None:
    """The UDP datagram a captured frame carries, or None (not UDP, a later fragment, too short)."""
    if link_type == 1:  # Ethernet
        position, ethertype = 12, 0
        while len(data) >= position + 2:
            ethertype = int.from_bytes(data[position:position + 2], "big")
            if ethertype not in _ETHERTYPE_VLANS:
                break
            position += 4
        return _from_ethertype(ethertype, data[position + 2:])
    if link_type == 101:  # raw IP: each parser checks its version nibble
        return _ipv4(data) or _ipv6(data)
    if link_type == 228:
        return _ipv4(data)
    if link_type == 229:
        return _ipv6(data)
    if link_type == 113:  # Linux cooked capture v1: the protocol type ends its 16-byte header
        return _from_ethertype(int.from_bytes(data[14:16], "big"), data[16:]) if len(data) >= 16 else None
    if link_type == 276:  # Linux cooked capture v2: the protocol type starts its 20-byte header
        return _from_ethertype(int.from_bytes(data[0:2], "big"), data[20:]) if len(data) >= 20 else None
    if link_type == 0:  # BSD loopback: an address family in the capturing host's byte order
        if len(data) < 4:
            return None
        family = int.from_bytes(data[:4], "little")
        family = family if family < 256 else int.from_bytes(data[:4], "big")
        return _ipv4(data[4:]) if family == 2 else _ipv6(data[4:]) if family in _BSD_AF_INET6 else None
    return None


def _from_ethertype(ethertype: int, packet: bytes) -> UdpDatagram | None:
    if ethertype == _ETHERTYPE_IPV4:
        return _ipv4(packet)
    if ethertype == _ETHERTYPE_IPV6:
        return _ipv6(packet)
    return None


def _ipv4(packet: bytes) -> UdpDatagram | None:
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != 17:
        return None
    header_length = (packet[0] & 0x0F) * 4
    # 0: segmentation offload left the length to the NIC (Wireshark reads on to the end, too)
    total_length = int.from_bytes(packet[2:4], "big") or len(packet)
    if header_length < 20 or total_length < header_length or int.from_bytes(packet[6:8], "big") & 0x1FFF:
        return None  # a bad header, or a fragment after the first: no UDP header in it
    src, dst = socket.inet_ntop(socket.AF_INET, packet[12:16]), socket.inet_ntop(socket.AF_INET, packet[16:20])
    return _udp(src, dst, packet[header_length:total_length])  # trailing link-layer padding cut off


def _ipv6(packet: bytes) -> UdpDatagram | None:
    if len(packet) < 40 or packet[0] >> 4 != 6:
        return None
    payload_length = int.from_bytes(packet[4:6], "big")
    next_header, position = packet[6], 40
    end = 40 + payload_length if payload_length else len(packet)  # 0: a jumbogram, as long as captured
    while next_header != 17:
        if len(packet) < position + 8:
            return None
        if next_header in _IPV6_EXTENSIONS:
            length = (packet[position + 1] + 1) * 8
        elif next_header == _IPV6_FRAGMENT:
            if int.from_bytes(packet[position + 2:position + 4], "big") & 0xFFF8:
                return None  # a later fragment
            length = 8
        elif next_header == _IPV6_AUTHENTICATION:
            length = (packet[position + 1] + 2) * 4
        else:
            return None  # not UDP, or not readable without keys (ESP)
        next_header, position = packet[position], position + length
    src, dst = socket.inet_ntop(socket.AF_INET6, packet[8:24]), socket.inet_ntop(socket.AF_INET6, packet[24:40])
    return _udp(src, dst, packet[position:end])


def _udp(src: str, dst: str, segment: bytes) -> UdpDatagram | None:
    if len(segment) < 8:
        return None
    length = int.from_bytes(segment[4:6], "big")
    end = length if length >= 8 else len(segment)  # 0 (a jumbogram) or nonsense: take what is there
    return UdpDatagram(src, int.from_bytes(segment[0:2], "big"), dst, int.from_bytes(segment[2:4], "big"),
                       segment[8:end])
