"""A scapy layer for netsem datagrams, derived from the wire declaration.

    from scapy.all import rdpcap
    from netsem.inspect.layer import NetsemHeader
    for packet in rdpcap("capture.pcapng"):
        if NetsemHeader in packet:
            print(packet[NetsemHeader].frame_id, packet[NetsemHeader].unit_ids)

`fields_desc` is built from `FIXED_HEADER` field by field, so the layer cannot drift from
`packetizers/wire.py`; only the variable parts after the header (unit ids, for byte streams
the unit spans as a flat offset, length, offset, length... list, payload, CRC-32) are
spelled here, sized by the header fields that count them. When crafting,
leave `unit_count_here`, `payload_len` and `crc32` unset and they are filled in.
The layer is bound to UDP on `DEFAULT_PORT`; on other ports decode the UDP payload with
`NetsemHeader(bytes(packet[UDP].payload))`. Bytes without the magic, or shorter than their
header declares, come back as scapy's `Raw`, never an exception.
"""

from __future__ import annotations

import enum
import struct
import zlib

import construct as cs
from scapy.config import conf
from scapy.fields import (
    ByteEnumField,
    ByteField,
    Field,
    FieldListField,
    FlagsField,
    IEEEFloatField,
    IntField,
    ShortField,
    StrFixedLenField,
    StrLenField,
    XIntField,
)
from scapy.layers.inet import UDP
from scapy.packet import Packet, bind_layers

from packetizers.wire import (
    CRC_SIZE,
    DEFAULT_PORT,
    FIELD_NAMES,
    FIXED_HEADER,
    HEADER_SIZE,
    Flags,
    Layout,
    MessageType,
    PartitionKind,
    peek_header,
    unit_entry_size,
)

_ENUM_FIELDS: dict[str, type[enum.IntEnum]] = {"msg_type": MessageType, "partition": PartitionKind, "layout": Layout}
_FLAG_FIELDS: dict[str, type[enum.IntFlag]] = {"flags": Flags}
_SIMPLE_FIELDS = {"B": ByteField, "H": ShortField, "L": IntField, "f": IEEEFloatField}
_FILLED_ON_BUILD = ("unit_count_here", "payload_len")


def _scapy_field(subcon: cs.Construct) -> Field:
    """The scapy field equivalent to one fixed-size construct field."""
    name, inner = subcon.name, subcon.subcon
    if isinstance(inner, cs.Const):
        return StrFixedLenField(name, inner.value, length=len(inner.value))
    if not isinstance(inner, cs.FormatField) or inner.fmtstr[0] != ">":
        raise TypeError(f"field {name}: no scapy equivalent for {inner!r}")
    code = inner.fmtstr[1:]
    if name in _ENUM_FIELDS and code == "B":
        return ByteEnumField(name, 0, {int(m): m.name.lower() for m in _ENUM_FIELDS[name]})
    if name in _FLAG_FIELDS:
        bits = [member for member in _FLAG_FIELDS[name] if member]
        width = 8 * inner.length
        names = [next((m.name.lower() for m in bits if int(m) == 1 << i), f"bit{i}") for i in range(width)]
        return FlagsField(name, 0, width, names)
    default = None if name in _FILLED_ON_BUILD else (1 if name == "sub_count" else 0)
    return _SIMPLE_FIELDS[code](name, default)


def _header_offsets() -> dict[str, tuple[int, str]]:
    """Byte offset and struct code of each fixed header field."""
    offsets, position = {}, 0
    for subcon in FIXED_HEADER.subcons:
        code = "4s" if isinstance(subcon.subcon, cs.Const) else subcon.subcon.fmtstr[1:]
        offsets[subcon.name] = (position, code)
        position += subcon.subcon.sizeof()
    return offsets


_OFFSETS = _header_offsets()


def _declares_its_length(data: bytes) -> bool:
    """`data` starts with the magic and holds at least what its header declares."""
    header = peek_header(data)
    if header is None:
        return False
    declared = HEADER_SIZE + unit_entry_size(header.layout) * header.unit_count_here + header.payload_len + CRC_SIZE
    return len(data) >= declared


class NetsemHeader(Packet):
    """One netsem datagram: the fixed header, unit ids, packed payload and CRC-32."""

    name = "netsem"
    fields_desc = [_scapy_field(subcon) for subcon in FIXED_HEADER.subcons] + [
        # max_count: scapy stops at 100 list items by default; a datagram may name 65535 units
        FieldListField("unit_ids", [], IntField("unit_id", 0), count_from=lambda pkt: pkt.unit_count_here,
                       max_count=0xFFFF),
        FieldListField("unit_spans", [], IntField("unit_span", 0),
                       count_from=lambda pkt: 2 * (pkt.unit_count_here or 0) if pkt.layout == Layout.BYTES else 0,
                       max_count=2 * 0xFFFF),
        # "payload" is scapy's name for the next layer, hence "payload_bytes"
        StrLenField("payload_bytes", b"", length_from=lambda pkt: pkt.payload_len),
        XIntField("crc32", None),
    ]

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args, **kwargs) -> type[Packet]:
        """Bytes that are not a whole netsem datagram decode as `Raw`, never as a half-read header.

        scapy raises on a layer cut short when it is called directly (it turns the error into
        Raw only when the layer is a payload); checking first gives the same Raw either way,
        so `NetsemHeader in NetsemHeader(data)` says whether `data` is netsem.
        """
        return cls if not _pkt or _declares_its_length(bytes(_pkt)) else conf.raw_layer

    def post_build(self, packet: bytes, payload: bytes) -> bytes:
        """Fill in the counts and the CRC-32 left unset, as the packetizer would."""
        packet = bytearray(packet)
        for name, value in (("unit_count_here", len(self.unit_ids)), ("payload_len", len(self.payload_bytes))):
            if getattr(self, name) is None:
                offset, code = _OFFSETS[name]
                struct.pack_into(">" + code, packet, offset, value)
        if self.crc32 is None:
            packet[-4:] = zlib.crc32(packet[:-4]).to_bytes(4, "big")
        return bytes(packet) + payload

    def mysummary(self) -> str:
        return self.sprintf(
            "netsem frame %frame_id% datagram %datagram_index%/%datagram_count% units %unit_count_here%"
        )


assert [f.name for f in NetsemHeader.fields_desc[: len(FIELD_NAMES)]] == list(FIELD_NAMES)

bind_layers(UDP, NetsemHeader, dport=DEFAULT_PORT)
bind_layers(UDP, NetsemHeader, sport=DEFAULT_PORT)
