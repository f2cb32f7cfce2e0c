"""The scapy layer decodes and builds exactly what the construct declaration does."""

from __future__ import annotations

import struct
import zlib

from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP

from netsem.inspect.layer import NetsemHeader
from packetizers.wire import DEFAULT_PORT
from packetizers.wire import DATAGRAM, FIELD_NAMES, FIXED_HEADER, MAGIC, Layout, PartitionKind, parse_with_construct

_INTEGER_BITS = {"B": 8, "H": 16, "L": 32}


def _field_strategy(subcon) -> st.SearchStrategy:
    inner = subcon.subcon
    if subcon.name == "magic":
        return st.just(MAGIC)
    code = inner.fmtstr[1:]
    if code == "f":  # float32 values, so the round trip is exact
        return st.floats(width=32, allow_nan=False)
    return st.integers(0, (1 << _INTEGER_BITS[code]) - 1)


@st.composite
def datagrams(draw) -> bytes:
    """Random datagrams of the declared format (any field values, consistent lengths)."""
    header = {sc.name: draw(_field_strategy(sc)) for sc in FIXED_HEADER.subcons if sc.name != "magic"}
    unit_ids = draw(st.lists(st.integers(0, 2**32 - 1), max_size=40))
    payload = draw(st.binary(max_size=300))
    header["layout"] = draw(st.sampled_from([*Layout, 255]))
    spans = None
    if header["layout"] == Layout.BYTES:
        pairs = draw(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
                              min_size=len(unit_ids), max_size=len(unit_ids)))
        spans = [{"offset": offset, "length": length} for offset, length in pairs]
    header.update(unit_count_here=len(unit_ids), payload_len=len(payload))
    return DATAGRAM.build({"header": header, "unit_ids": unit_ids, "unit_spans": spans, "payload": payload,
                           "crc32": draw(st.integers(0, 2**32 - 1))})


def test_fields_desc_follows_the_declaration():
    assert [f.name for f in NetsemHeader.fields_desc][: len(FIELD_NAMES)] == list(FIELD_NAMES)
    assert [f.name for f in NetsemHeader.fields_desc][len(FIELD_NAMES):] == ["unit_ids", "unit_spans", "payload_bytes", "crc32"]


@given(datagrams())
def test_scapy_decodes_what_construct_decodes(datagram):
    parsed = parse_with_construct(datagram)
    layer = NetsemHeader(datagram)
    for name in FIELD_NAMES:
        value = layer.getfieldval(name)
        assert (int(value) if name == "flags" else value) == parsed.header[name], name
    assert layer.unit_ids == list(parsed.unit_ids)
    spans = [value for span in parsed.unit_spans or [] for value in (span.offset, span.length)]
    assert layer.unit_spans == spans
    assert layer.payload_bytes == parsed.payload
    assert layer.crc32 == parsed.crc32
    assert bytes(layer) == datagram


@given(datagrams())
def test_crafted_layer_fills_counts_and_crc_like_the_packetizer(datagram):
    parsed = parse_with_construct(datagram)
    fields = {name: parsed.header[name] for name in FIELD_NAMES if name not in ("magic", "unit_count_here", "payload_len")}
    spans = [value for span in parsed.unit_spans or [] for value in (span.offset, span.length)]
    crafted = bytes(NetsemHeader(**fields, unit_ids=list(parsed.unit_ids), unit_spans=spans, payload_bytes=parsed.payload))
    reparsed = parse_with_construct(crafted)
    assert crafted[:-4] == datagram[:-4]
    assert struct.unpack(">I", crafted[-4:])[0] == zlib.crc32(crafted[:-4])
    assert reparsed.header == parsed.header


def test_layer_is_bound_to_udp_on_the_default_port():
    packet = IP(bytes(IP() / UDP(sport=40000, dport=DEFAULT_PORT) / NetsemHeader(frame_id=7, unit_ids=[1, 2], payload_bytes=b"ab")))
    assert NetsemHeader in packet
    assert packet[NetsemHeader].frame_id == 7 and packet[NetsemHeader].unit_ids == [1, 2]


def test_datagrams_naming_hundreds_of_units_decode():
    import numpy as np

    from netsem.inspect.datagram import Datagram, parse_datagram
    from packetizers.frames import LatentFrame, StreamFrame
    from packetizers.packetizer import Packetizer

    stream = StreamFrame.cut(bytes(range(256)) * 4, tuple(range(0, 1000, 5)), codec_id=10)
    tokens = LatentFrame(np.zeros((400, 1), dtype=np.int64), Layout.ND, 1, False)
    for datagram in (Packetizer().packetize(stream, 1)[0],
                     Packetizer(PartitionKind.TOKEN, mtu=1500).packetize(tokens, 2)[0]):
        parsed = parse_datagram(datagram)
        assert isinstance(parsed, Datagram) and len(parsed.unit_ids) > 60
        assert list(parsed.unit_ids) == list(parse_with_construct(datagram).unit_ids)


@given(datagrams(), st.data())
def test_short_or_foreign_bytes_decode_as_raw_never_raise(datagram, data):
    from scapy.packet import Raw

    cut = data.draw(st.integers(1, len(datagram) - 1))
    for partial in (datagram[:cut], b"XSEM" + datagram[4:], data.draw(st.binary(min_size=1, max_size=80).filter(lambda b: b[:4] != MAGIC))):
        layer = NetsemHeader(partial)
        assert isinstance(layer, Raw) and NetsemHeader not in layer and bytes(layer) == partial
    whole = NetsemHeader(datagram + b"tail")  # longer than declared: the rest follows as a payload
    assert NetsemHeader in whole and bytes(whole[Raw]) == b"tail"


def test_a_cut_datagram_on_the_netsem_port_is_udp_with_a_raw_payload():
    from scapy.packet import Raw

    cut = bytes(NetsemHeader(frame_id=1, unit_ids=[1, 2], payload_bytes=b"abc"))[:30]
    packet = IP(bytes(IP() / UDP(sport=40000, dport=DEFAULT_PORT) / cut))
    assert NetsemHeader not in packet and bytes(packet[Raw]) == cut
