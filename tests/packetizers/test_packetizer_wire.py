"""The construct declaration and the fast struct path read every datagram identically."""

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from packetizers import bitpack
from packetizers.frames import LatentFrame
from packetizers.packetizer import Packetizer
from packetizers.wire import (
    DATAGRAM,
    FIELD_NAMES,
    FIXED_HEADER,
    HEADER_SIZE,
    MAX_DATAGRAM,
    Layout,
    PartitionKind,
    crc_ok,
    parse_with_construct,
    peek_header,
)


def sample_datagrams(partition=PartitionKind.CHANNEL, seed=3, interleave=True, mtu=1200):
    latent = np.random.default_rng(0).integers(-8, 8, size=(24, 8, 12))
    frame = LatentFrame(latent, Layout.CHW, 4, True, scale=0.25, codec_id=7, image_size=(128, 192))
    return Packetizer(partition, interleave=interleave, seed=seed, mtu=mtu).packetize(frame, frame_id=42)


@pytest.mark.parametrize("partition", [PartitionKind.CHANNEL, PartitionKind.TOKEN, PartitionKind.SPATIAL])
def test_struct_path_and_construct_agree_on_every_field(partition):
    for datagram in sample_datagrams(partition):
        fast = peek_header(datagram)
        slow = parse_with_construct(datagram)
        for name in FIELD_NAMES:
            assert getattr(fast, name) == slow.header[name], name
        assert list(slow.unit_ids) == list(np.frombuffer(datagram, ">u4", fast.unit_count_here, HEADER_SIZE))
        assert len(slow.payload) == fast.payload_len
        assert crc_ok(datagram)


def test_header_is_network_byte_order_and_carries_the_frame_metadata():
    datagram = sample_datagrams()[0]
    assert datagram[:4] == b"NSEM" and datagram[4] == 1
    header = peek_header(datagram)
    assert (header.frame_id, header.codec_id, header.image_height, header.image_width) == (42, 7, 128, 192)
    assert header.shape == (24, 8, 12) and header.scale == 0.25 and header.signed and header.interleaved
    assert header.bit_width == 4 and header.unit_count == 24 and header.interleave_seed == 3
    offset = FIELD_NAMES.index("frame_id")
    start = FIXED_HEADER.subcons[:offset]
    position = sum(sc.sizeof() for sc in start)
    assert struct.unpack_from(">I", datagram, position)[0] == 42


def test_construct_rejects_trailing_garbage_and_the_fast_path_notices_crc():
    datagram = sample_datagrams()[0]
    with pytest.raises(Exception):
        DATAGRAM.parse(datagram + b"x")
    flipped = bytearray(datagram)
    flipped[HEADER_SIZE + 3] ^= 0x10
    assert not crc_ok(bytes(flipped))


def test_same_seed_gives_byte_identical_datagrams_and_another_seed_regroups():
    assert sample_datagrams(seed=11) == sample_datagrams(seed=11)
    assert sample_datagrams(seed=11, partition=PartitionKind.TOKEN) != sample_datagrams(seed=12, partition=PartitionKind.TOKEN)


def test_4_bit_symbols_take_half_a_byte_on_the_wire():
    latent = np.random.default_rng(1).integers(0, 16, size=(4, 16, 16))
    frame = LatentFrame(latent, Layout.CHW, 4, False)
    datagrams = Packetizer(PartitionKind.CHANNEL, interleave=False, mtu=1200).packetize(frame, 0)
    payload = sum(peek_header(d).payload_len for d in datagrams)
    assert payload == latent.size // 2


def test_mtu_bounds_are_enforced_with_clear_messages():
    latent = np.zeros((4, 4, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="65507"):
        Packetizer(mtu=MAX_DATAGRAM + 1)
    with pytest.raises(ValueError, match="too small"):
        Packetizer(mtu=40).packetize(LatentFrame(latent, Layout.CHW, 8, False), 0)
    with pytest.raises(ValueError, match="outside unsigned 2-bit range"):
        Packetizer().packetize(LatentFrame(latent + 4, Layout.CHW, 2, False), 0)


def test_a_unit_bigger_than_a_jumbo_datagram_is_split_into_the_fewest_sub_units():
    latent = np.random.default_rng(2).integers(0, 256, size=(1, 400, 400))
    frame = LatentFrame(latent, Layout.CHW, 8, False)
    datagrams = Packetizer(PartitionKind.CHANNEL, mtu=MAX_DATAGRAM).packetize(frame, 0)
    assert max(map(len, datagrams)) <= MAX_DATAGRAM
    per_datagram = MAX_DATAGRAM - HEADER_SIZE - 4 - 4
    assert len(datagrams) == -(-latent.size // per_datagram) == 3
    headers = [peek_header(d) for d in datagrams]
    assert [(h.sub_index, h.sub_count) for h in headers] == [(0, 3), (1, 3), (2, 3)]
    assert sum(h.payload_len for h in headers) == latent.size


@given(st.integers(1, 16), st.booleans(), st.integers(0, 300), st.integers(0, 2**31))
def test_bit_packing_round_trips_at_every_width(bit_width, signed, count, seed):
    low, high = (-(1 << (bit_width - 1)), (1 << (bit_width - 1)) - 1) if signed else (0, (1 << bit_width) - 1)
    values = np.random.default_rng(seed).integers(low, high, size=count, endpoint=True)
    packed = bitpack.pack(values, bit_width)
    assert len(packed) == (count * bit_width + 7) // 8
    np.testing.assert_array_equal(bitpack.unpack(packed, count, bit_width, signed), values)


def test_bit_packing_is_msb_first():
    assert bitpack.pack(np.array([1, 2, 3]), 2) == bytes([0b01101100])
    assert bitpack.pack(np.array([0x1FF]), 9) == bytes([0xFF, 0x80])


@pytest.mark.parametrize("bit_width", [3, 6, 11])
def test_bit_packing_round_trips_frames_larger_than_the_position_cache(bit_width):
    values = np.random.default_rng(bit_width).integers(0, 1 << bit_width, size=(1 << 17) + 1001)
    np.testing.assert_array_equal(bitpack.unpack(bitpack.pack(values, bit_width), values.size, bit_width, False), values)
