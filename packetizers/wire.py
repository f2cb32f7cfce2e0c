"""The netsem datagram, declared once.

`DATAGRAM` (construct) is the single declaration of the wire format. The sender, the
receiver, `netsem inspect` and the Wireshark dissector tests all use it or are checked
against it. The hot path (tens of thousands of datagrams per second) cannot afford
construct's interpreter, so `FIXED_HEADER_STRUCT` is *derived* from the construct
declaration at import time (field by field, same order, same byte order) and a test
asserts both parse every datagram identically.

Layout, network byte order:

    fixed header (FIXED_HEADER, 70 bytes: frame-wide fields, then per-datagram fields)
    unit ids      unit_count_here x uint32   which units (or sub-unit) this datagram carries
    unit spans    unit_count_here x SPAN     bytes layout only: each unit's (offset, length)
    payload       payload_len bytes          the units' elements bit-packed at bit_width
    crc32         uint32                     zlib CRC-32 over everything before it

Every datagram carries all frame metadata, so any subset of a frame is decodable.

Latents (layouts chw, nd) have units whose sizes follow from the header's geometry. A byte
stream (layout bytes: a JPEG cut at its restart markers) has units of data-dependent length,
so each datagram also says where its units sit in the stream; a receiver then places every
received segment without knowing the lost ones.
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

import construct as cs
import numpy as np

from packetizers.kinds import (  # noqa: F401  (the wire's names, re-exported)
    STREAM_INDEX_MASK,
    STREAM_KIND_SHIFT,
    Flags,
    Layout,
    MessageType,
    PartitionKind,
    StreamKind,
)

MAGIC = b"NSEM"
VERSION = 1
MAX_DATAGRAM = 65507  # largest UDP payload over IPv4
DEFAULT_MTU = 1200  # UDP payload budget: no IP fragmentation on common paths
DEFAULT_PORT = 47474  # claimed by no Wireshark dissector (`tshark -G decodes`, 4.0.17)


FIXED_HEADER = cs.Struct(
    # frame-wide fields: identical in every datagram of a frame
    "magic" / cs.Const(MAGIC),
    "version" / cs.Int8ub,
    "msg_type" / cs.Int8ub,
    "flags" / cs.Int8ub,
    "partition" / cs.Int8ub,
    "layout" / cs.Int8ub,
    "bit_width" / cs.Int8ub,
    "stream_id" / cs.Int16ub,  # StreamKind in bits 15-14, user / group index in bits 13-0
    "kb_version" / cs.Int16ub,  # knowledge-base / codebook version a receiver must hold
    "codec_id" / cs.Int16ub,
    "image_height" / cs.Int16ub,
    "image_width" / cs.Int16ub,
    "frame_id" / cs.Int32ub,
    "dim0" / cs.Int32ub,  # chw: C   nd: N tokens   bytes: stream length
    "dim1" / cs.Int32ub,  # chw: H   nd: D dims     bytes: codec parameter (jpeg: quality)
    "dim2" / cs.Int32ub,  # chw: W   nd: 0          bytes: codec parameter (jpeg: MCUs per restart interval)
    "grid_h" / cs.Int16ub,  # nd: token grid rows (spatial partition); chw: 0
    "grid_w" / cs.Int16ub,
    "block_h" / cs.Int16ub,  # spatial partition block size; 0 otherwise
    "block_w" / cs.Int16ub,
    "unit_count" / cs.Int32ub,  # units in the whole frame
    "interleave_seed" / cs.Int32ub,
    "scale" / cs.Float32b,  # quantizer step (1.0 when none)
    "datagram_count" / cs.Int16ub,
    # per-datagram fields
    "importance" / cs.Int8ub,  # unequal error protection class (0 = default)
    "reserved" / cs.Int8ub,
    "datagram_index" / cs.Int16ub,
    "sub_index" / cs.Int16ub,  # this datagram carries slice sub_index of sub_count of one unit
    "sub_count" / cs.Int16ub,  # 1 when whole units are carried
    "unit_count_here" / cs.Int16ub,
    "payload_len" / cs.Int16ub,
)

SPAN = cs.Struct(
    "offset" / cs.Int32ub,  # first byte of the whole unit in the stream
    "length" / cs.Int32ub,  # bytes of the whole unit (a sub-unit carries a balanced slice of it)
)

DATAGRAM = cs.Struct(
    "header" / FIXED_HEADER,
    "unit_ids" / cs.Array(cs.this.header.unit_count_here, cs.Int32ub),
    "unit_spans" / cs.If(cs.this.header.layout == Layout.BYTES, cs.Array(cs.this.header.unit_count_here, SPAN)),
    "payload" / cs.Bytes(cs.this.header.payload_len),
    "crc32" / cs.Int32ub,
    cs.Terminated,
)

FIELD_NAMES: tuple[str, ...] = tuple(sc.name for sc in FIXED_HEADER.subcons)


def _struct_code(subcon: cs.Construct) -> str:
    """The `struct` format character of one fixed-size construct field."""
    if isinstance(subcon, cs.Renamed):
        subcon = subcon.subcon
    if isinstance(subcon, cs.Const):
        return f"{len(subcon.value)}s"
    if isinstance(subcon, cs.FormatField):
        return subcon.fmtstr[1:]
    raise TypeError(f"field {subcon!r} has no fixed struct equivalent")


FIXED_HEADER_STRUCT = struct.Struct(">" + "".join(_struct_code(sc) for sc in FIXED_HEADER.subcons))
HEADER_SIZE = FIXED_HEADER_STRUCT.size
CRC_SIZE = 4
UNIT_ID_SIZE = 4
SPAN_SIZE = SPAN.sizeof()
assert HEADER_SIZE == FIXED_HEADER.sizeof()
# where the layout byte sits: a receiver needs it to size the unit table before trusting the header
LAYOUT_OFFSET = struct.calcsize(">" + "".join(_struct_code(sc) for sc in FIXED_HEADER.subcons[: FIELD_NAMES.index("layout")]))


def unit_entry_size(layout: int) -> int:
    """Bytes per unit in a datagram's unit table: its id, and for byte streams its span."""
    return UNIT_ID_SIZE + (SPAN_SIZE if layout == Layout.BYTES else 0)

# The header splits into a frame-wide part (bytes [0, FRAME_WIDE_SIZE)) and a per-datagram
# tail; a receiver recognises a datagram of a frame it knows by comparing the first part.
_FIRST_PER_DATAGRAM = FIELD_NAMES.index("importance")
FRAME_WIDE_STRUCT = struct.Struct(">" + "".join(_struct_code(sc) for sc in FIXED_HEADER.subcons[:_FIRST_PER_DATAGRAM]))
PER_DATAGRAM_STRUCT = struct.Struct(">" + "".join(_struct_code(sc) for sc in FIXED_HEADER.subcons[_FIRST_PER_DATAGRAM:]))
FRAME_WIDE_SIZE = FRAME_WIDE_STRUCT.size
# The per-datagram tail as a numpy record, for reading the tails of many datagrams at once
PER_DATAGRAM_DTYPE = np.dtype([
    (name, ">" + {"B": "u1", "H": "u2", "L": "u4"}[code])
    for name, code in zip(FIELD_NAMES[_FIRST_PER_DATAGRAM:], PER_DATAGRAM_STRUCT.format[1:])
])
assert PER_DATAGRAM_DTYPE.itemsize == PER_DATAGRAM_STRUCT.size


class Header(NamedTuple):
    """The fixed header of one datagram, fields named as in `FIXED_HEADER`.

    A named tuple: a receiver builds one for every datagram of a new frame, and a tuple is
    made in one step where a frozen dataclass sets each of its 31 fields on its own."""

    magic: bytes
    version: int
    msg_type: int
    flags: int
    partition: int
    layout: int
    bit_width: int
    stream_id: int
    kb_version: int
    codec_id: int
    image_height: int
    image_width: int
    frame_id: int
    dim0: int
    dim1: int
    dim2: int
    grid_h: int
    grid_w: int
    block_h: int
    block_w: int
    unit_count: int
    interleave_seed: int
    scale: float
    datagram_count: int
    importance: int
    reserved: int
    datagram_index: int
    sub_index: int
    sub_count: int
    unit_count_here: int
    payload_len: int

    @property
    def shape(self) -> tuple[int, ...]:
        if self.layout == Layout.CHW:
            return (self.dim0, self.dim1, self.dim2)
        if self.layout == Layout.BYTES:
            return (self.dim0,)
        return (self.dim0, self.dim1)

    @property
    def signed(self) -> bool:
        return bool(self.flags & Flags.SIGNED)

    @property
    def interleaved(self) -> bool:
        return bool(self.flags & Flags.INTERLEAVED)

assert Header._fields == FIELD_NAMES  # the tuple mirrors the construct declaration


def frame_wide_bytes(datagram: bytes) -> bytes:
    """The header bytes every datagram of one frame shares (its identity and geometry)."""
    return datagram[:FRAME_WIDE_SIZE]


def with_crc(body: bytes) -> bytes:
    """`body` followed by its CRC-32, as every datagram ends."""
    return body + zlib.crc32(body).to_bytes(CRC_SIZE, "big")


def rewrite_header(datagram: bytes, **fields) -> bytes:
    """The datagram with some fixed-header fields replaced and a valid CRC again: what a
    hostile or buggy peer can send (tests, the fuzzer and the flood generator use it)."""
    values = list(FIXED_HEADER_STRUCT.unpack_from(datagram))
    for name, value in fields.items():
        values[FIELD_NAMES.index(name)] = value
    return with_crc(FIXED_HEADER_STRUCT.pack(*values) + datagram[HEADER_SIZE:-CRC_SIZE])


def peek_header(datagram: bytes) -> Header | None:
    """The fixed header, or None when the datagram is too short or not netsem's."""
    if len(datagram) < HEADER_SIZE + CRC_SIZE or datagram[:4] != MAGIC:
        return None
    return Header(*FIXED_HEADER_STRUCT.unpack_from(datagram))


def importance_of(datagram: bytes) -> int:
    """The `importance` byte of a netsem datagram's header (0 for anything else): what an
    importance-aware PHY stage or a protecting sender reads."""
    if len(datagram) > FRAME_WIDE_SIZE and datagram[:4] == MAGIC:
        return datagram[FRAME_WIDE_SIZE]
    return 0


def crc_ok(datagram: bytes) -> bool:
    return zlib.crc32(memoryview(datagram)[:-CRC_SIZE]) == int.from_bytes(datagram[-CRC_SIZE:], "big")


def parse_with_construct(datagram: bytes) -> cs.Container:
    """Full parse through the declaration itself: slow, for inspection and tests."""
    return DATAGRAM.parse(datagram)
