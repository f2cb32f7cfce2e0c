"""One UDP payload -> a decoded netsem datagram, or the reason it is not one.

This is the part of `netsem inspect` a peer controls, so it never raises on any input:
lengths are checked against the header (read with the struct derived from the wire
declaration) before the scapy layer decodes the unit ids and payload.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from netsem.inspect.layer import NetsemHeader
from packetizers.wire import CRC_SIZE, HEADER_SIZE, MAGIC, VERSION, Header, crc_ok, peek_header, unit_entry_size


class Unreadable(str, enum.Enum):
    """Why a UDP payload was not decoded as a netsem datagram."""

    NOT_NETSEM = "not_netsem"  # no magic bytes: someone else's traffic
    TOO_SHORT = "too_short"  # magic, but shorter than a header and CRC
    BAD_VERSION = "bad_version"  # a version whose fields we cannot read
    TRUNCATED = "truncated"  # shorter than its header declares
    TRAILING_BYTES = "trailing_bytes"  # longer than its header declares


@dataclass(frozen=True)
class Rejected:
    reason: Unreadable
    detail: str

    @property
    def malformed(self) -> bool:
        """Looks like netsem (has the magic) but cannot be decoded."""
        return self.reason != Unreadable.NOT_NETSEM


@dataclass(frozen=True)
class Datagram:
    """A decoded datagram; `crc_good` False means its content cannot be trusted."""

    header: Header
    unit_ids: tuple[int, ...]
    size: int
    crc_good: bool
    unit_spans: tuple[tuple[int, int], ...] = ()  # byte streams: each unit's (offset, length)


def parse_datagram(data: bytes) -> Datagram | Rejected:
    """Decode `data` (a UDP payload); never raises."""
    if not data or not MAGIC.startswith(bytes(data[: len(MAGIC)])):
        return Rejected(Unreadable.NOT_NETSEM, "no netsem magic")
    header = peek_header(data)
    if header is None:
        return Rejected(Unreadable.TOO_SHORT, f"{len(data)} bytes, a header and CRC need {HEADER_SIZE + CRC_SIZE}")
    if header.version != VERSION:
        return Rejected(Unreadable.BAD_VERSION, f"version {header.version}, this reader knows {VERSION}")
    declared = HEADER_SIZE + unit_entry_size(header.layout) * header.unit_count_here + header.payload_len + CRC_SIZE
    if len(data) != declared:
        reason = Unreadable.TRUNCATED if len(data) < declared else Unreadable.TRAILING_BYTES
        return Rejected(reason, f"{len(data)} bytes, the header declares {declared}")
    layer = NetsemHeader(data)
    flat = list(layer.unit_spans)
    spans = tuple(zip(flat[::2], flat[1::2]))
    return Datagram(header, tuple(layer.unit_ids), len(data), crc_ok(data), spans)
