"""Reassembler: every bad input is rejected under a named reason, memory stays bounded."""

import struct
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from packetizers.frames import LatentFrame, StreamFrame
from packetizers.packetizer import Packetizer
from packetizers.reassembler import Delivery, Reassembler, ReassemblerLimits, RejectReason
from packetizers.wire import HEADER_SIZE, Layout, PartitionKind, peek_header, rewrite_header, with_crc

LATENT = np.random.default_rng(0).integers(0, 64, size=(16, 8, 8))


def make_datagrams(frame_id=0, partition=PartitionKind.TOKEN, latent=LATENT, stream_id=0):
    frame = LatentFrame(latent, Layout.CHW, 6, False, codec_id=1, image_size=(128, 128), stream_id=stream_id)
    return Packetizer(partition, seed=9, mtu=300).packetize(frame, frame_id)


def reject_reason(datagram: bytes, reassembler: Reassembler | None = None) -> RejectReason | None:
    return (reassembler or Reassembler()).receive(datagram, 0.0)


def test_valid_datagram_is_accepted():
    assert reject_reason(make_datagrams()[0]) is None


@pytest.mark.parametrize(
    "mutate,reason",
    [
        (lambda d: b"", RejectReason.TRUNCATED),
        (lambda d: d[:30], RejectReason.TRUNCATED),
        (lambda d: b"XSEM" + d[4:], RejectReason.BAD_MAGIC),
        (lambda d: b"hello world", RejectReason.BAD_MAGIC),
        (lambda d: d[:4] + b"\x02" + d[5:], RejectReason.BAD_VERSION),
        (lambda d: d[:-10] + bytes([d[-10] ^ 1]) + d[-9:], RejectReason.BAD_CRC),
        (lambda d: d[:-7], RejectReason.TRUNCATED),
        (lambda d: rewrite_header(d, msg_type=9), RejectReason.UNSUPPORTED_TYPE),
        (lambda d: rewrite_header(d + b"\0\0\0\0")[:-4] + d[-4:], RejectReason.BAD_CRC),
        (lambda d: rewrite_header(d + b"\0\0\0\0"), RejectReason.BAD_LENGTH),
        (lambda d: rewrite_header(d, layout=7), RejectReason.BAD_HEADER),
        (lambda d: rewrite_header(d, partition=3), RejectReason.BAD_HEADER),
        (lambda d: rewrite_header(d, bit_width=0), RejectReason.BAD_HEADER),
        (lambda d: rewrite_header(d, bit_width=17), RejectReason.BAD_HEADER),
        (lambda d: rewrite_header(d, flags=0x80), RejectReason.BAD_HEADER),
        (lambda d: rewrite_header(d, datagram_index=60000), RejectReason.BAD_HEADER),
        (lambda d: rewrite_header(d, unit_count=999), RejectReason.BAD_HEADER),
        (lambda d: rewrite_header(d, dim0=2**31, dim1=2**31, dim2=2**31), RejectReason.TOO_LARGE),
        (lambda d: rewrite_header(d, dim0=4000, dim1=1000, unit_count=1000 * 8), RejectReason.TOO_LARGE),
        (lambda d: rewrite_header(d, bit_width=5), RejectReason.BAD_LENGTH),
        (lambda d: rewrite_header(d, sub_index=1, sub_count=2), RejectReason.BAD_HEADER),
        (lambda d: rewrite_header(d, scale=float("nan")), RejectReason.BAD_HEADER),
        (lambda d: rewrite_header(d, scale=-1.0), RejectReason.BAD_HEADER),
        (lambda d: rewrite_header(d, reserved=255), RejectReason.BAD_HEADER),
    ],
)
def test_bad_datagrams_are_rejected_with_a_named_reason(mutate, reason):
    reassembler = Reassembler()
    assert reassembler.receive(mutate(make_datagrams()[0]), 0.0) == reason
    assert reassembler.rejected[reason.value] == 1
    assert reassembler.frames_in_flight == 0  # nothing was allocated for it


def test_unit_ids_out_of_range_are_rejected():
    datagram = make_datagrams()[0]
    header = peek_header(datagram)
    ids = bytearray(datagram[HEADER_SIZE : HEADER_SIZE + 4 * header.unit_count_here])
    ids[0:4] = struct.pack(">I", header.unit_count)
    body = datagram[:HEADER_SIZE] + bytes(ids) + datagram[HEADER_SIZE + len(ids) : -4]
    assert reject_reason(with_crc(body)) == RejectReason.UNIT_OUT_OF_RANGE


def test_duplicates_inconsistent_and_late_datagrams_are_rejected():
    datagrams = make_datagrams()
    reassembler = Reassembler()
    assert reassembler.receive(datagrams[0], 0.0) is None
    assert reassembler.receive(datagrams[0], 0.0) == RejectReason.DUPLICATE
    assert reassembler.receive(rewrite_header(datagrams[1], scale=2.0), 0.0) == RejectReason.INCONSISTENT
    for datagram in datagrams[1:]:
        assert reassembler.receive(datagram, 0.0) is None
    (frame,) = reassembler.poll(0.0)
    assert frame.complete and frame.received.all()
    np.testing.assert_array_equal(frame.latent, LATENT)
    assert reassembler.receive(datagrams[3], 0.0) == RejectReason.LATE
    assert reassembler.stats()["datagrams_rejected"] == {"duplicate": 1, "inconsistent": 1, "late": 1}


def test_a_datagram_claiming_already_received_units_is_a_duplicate():
    datagrams = make_datagrams()
    reassembler = Reassembler()
    reassembler.receive(datagrams[0], 0.0)
    assert reassembler.receive(rewrite_header(datagrams[0], datagram_index=1), 0.0) == RejectReason.DUPLICATE


def test_incomplete_frame_is_delivered_at_its_deadline_with_its_mask():
    datagrams = make_datagrams()
    reassembler = Reassembler(ReassemblerLimits(frame_timeout=0.25))
    for datagram in datagrams[:-2]:
        reassembler.receive(datagram, 1.0)
    assert reassembler.poll(1.2) == []
    assert reassembler.next_deadline() == pytest.approx(1.25)
    (frame,) = reassembler.poll(1.25)
    assert not frame.complete and frame.datagrams_received == len(datagrams) - 2
    assert 0 < frame.received.mean() < 1
    np.testing.assert_array_equal(frame.latent[frame.received], LATENT[frame.received])
    assert reassembler.frames_timed_out == 1 and reassembler.next_deadline() is None


def test_frames_in_flight_are_bounded_and_the_oldest_is_evicted():
    reassembler = Reassembler(ReassemblerLimits(max_frames_in_flight=4))
    for frame_id in range(10):
        reassembler.receive(make_datagrams(frame_id)[0], float(frame_id))
    assert reassembler.frames_in_flight == 4 and reassembler.frames_evicted == 6
    assert reassembler.receive(make_datagrams(0)[1], 20.0) == RejectReason.LATE  # evicted frames stay closed
    delivered = reassembler.flush()
    # evicted frames are handed over partial, oldest first, like a deadline that came early
    assert [f.header.frame_id for f in delivered] == list(range(10))
    assert [f.delivery for f in delivered] == [Delivery.EVICTED] * 6 + [Delivery.FLUSHED] * 4


def test_eviction_takes_from_the_source_holding_most_frames_and_spares_a_frame_arriving():
    """Sixteen one-datagram frames from one peer do not push out another peer's frame."""
    reassembler = Reassembler(ReassemblerLimits(max_frames_in_flight=16))
    real = make_datagrams(frame_id=7)
    for datagram in real[:3]:
        assert reassembler.receive(datagram, 0.0, source=("10.0.0.1", 5000)) is None
    for frame_id in range(100, 140):
        assert reassembler.receive(make_datagrams(frame_id)[0], 0.0, source=("10.0.0.2", 6000)) is None
    for datagram in real[3:]:
        assert reassembler.receive(datagram, 0.0, source=("10.0.0.1", 5000)) is None
    frames = reassembler.poll(0.0)
    (mine,) = [f for f in frames if f.source == ("10.0.0.1", 5000)]
    assert mine.complete and mine.header.frame_id == 7
    assert reassembler.frames_evicted == 40 - 15


def test_a_peer_cannot_add_datagrams_to_another_peers_frame():
    reassembler = Reassembler()
    datagrams = make_datagrams()
    assert reassembler.receive(datagrams[0], 0.0, source="a") is None
    assert reassembler.receive(datagrams[1], 0.0, source="b") is None  # opens b's own frame 0
    assert reassembler.frames_in_flight == 2
    frames = reassembler.flush()
    assert sorted(f.source for f in frames) == ["a", "b"] and all(f.datagrams_received == 1 for f in frames)


def test_frames_with_less_than_min_share_are_discarded_not_delivered():
    datagrams = make_datagrams()  # 16 x 8 x 8 latent in several datagrams
    reassembler = Reassembler(ReassemblerLimits(frame_timeout=0.1, min_share=0.5))
    reassembler.receive(datagrams[0], 0.0, source="few")
    for datagram in datagrams[: len(datagrams) * 3 // 4]:
        reassembler.receive(datagram, 0.0, source="most")
    frames = reassembler.poll(1.0)
    assert [f.source for f in frames] == ["most"] and 0.5 <= frames[0].share < 1
    assert reassembler.frames_discarded == 1


def test_a_frame_deadline_counts_later_datagrams_as_lost():
    datagrams = make_datagrams()
    reassembler = Reassembler(ReassemblerLimits(frame_timeout=1.0, frame_deadline=0.1))
    reassembler.receive(datagrams[0], 0.0)
    reassembler.receive(datagrams[1], 0.05)
    assert reassembler.next_deadline() == pytest.approx(0.1)
    (frame,) = reassembler.poll(0.1)
    assert frame.delivery == Delivery.DEADLINE and frame.datagrams_received == 2
    assert reassembler.receive(datagrams[2], 0.11) == RejectReason.LATE


def test_a_header_claiming_more_pixels_than_the_budget_is_too_large():
    datagram = make_datagrams()[0]
    reassembler = Reassembler(ReassemblerLimits(max_image_pixels=100 * 100))
    assert reassembler.receive(datagram, 0.0) == RejectReason.TOO_LARGE  # 128 x 128 claimed
    assert reassembler.receive(rewrite_header(datagram, image_height=100, image_width=100), 0.0) is None


def test_a_million_one_by_one_blocks_cost_nothing_until_the_frame_is_unpacked():
    """A spatial partition of 1x1 blocks on a large map: receive() does arithmetic only."""
    frame = LatentFrame(np.zeros((2, 4, 4), dtype=np.uint8), Layout.CHW, 1, False, image_size=(64, 64))
    small = Packetizer(PartitionKind.SPATIAL, block=(1, 1), mtu=79).packetize(frame, 0)[0]  # one unit: 79 bytes
    side = 1000  # 10^6 blocks
    first = rewrite_header(small, dim1=side, dim2=side, unit_count=side * side)
    reassembler = Reassembler()
    started = time.process_time()
    for frame_id in range(20):
        assert reassembler.receive(rewrite_header(first, frame_id=frame_id), 0.0) is None
    assert time.process_time() - started < 0.5  # was ~4 s per datagram (a Python loop per block)
    (frame, *_) = reassembler.flush()
    assert frame.received.sum() == 2 and frame.unit_received.sum() == 1  # unpacked on demand, vectorised


def test_total_bytes_are_bounded():
    latent = np.zeros((64, 64, 64), dtype=np.uint8)  # ~0.5 MB of frame state each
    limits = ReassemblerLimits(max_total_bytes=2 * 2**20)
    reassembler = Reassembler(limits)
    for frame_id in range(20):
        frame = LatentFrame(latent, Layout.CHW, 8, False)
        first = Packetizer(PartitionKind.CHANNEL).packetize(frame, frame_id)[0]
        assert reassembler.receive(first, 0.0) is None
        assert reassembler.bytes_in_flight <= limits.max_total_bytes
    assert reassembler.frames_evicted > 10


def test_streams_are_reassembled_separately():
    reassembler = Reassembler()
    for datagram in make_datagrams(stream_id=1) + make_datagrams(stream_id=2):
        assert reassembler.receive(datagram, 0.0) is None
    frames = reassembler.poll(0.0)
    assert sorted(f.header.stream_id for f in frames) == [1, 2] and all(f.complete for f in frames)


STREAM = StreamFrame.cut(bytes(range(256)) * 8, (0, 100, 900, 1500), codec_params=(75, 32), codec_id=10, image_size=(32, 32))
VALID = (
    make_datagrams(partition=PartitionKind.SPATIAL)
    + make_datagrams(partition=PartitionKind.CHANNEL)
    + Packetizer(seed=2, mtu=400).packetize(STREAM, 3)
)


@given(st.binary(max_size=2000))
def test_random_bytes_never_raise_and_are_counted(data):
    reassembler = Reassembler()
    reason = reassembler.receive(data, 0.0)
    assert reason is not None
    assert sum(reassembler.rejected.values()) == 1


@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
    st.booleans(),
    st.integers(0, 100),
)
def test_mutated_datagrams_never_raise(datagram, edits, fix_crc, cut):
    mutated = bytearray(datagram)
    for position, value in edits:
        mutated[position % len(mutated)] = value
    mutated = bytes(mutated[: len(mutated) - cut])
    if fix_crc and len(mutated) > 4:
        mutated = with_crc(mutated[:-4])
    reassembler = Reassembler()
    reason = reassembler.receive(mutated, 0.0)
    accepted = reason is None
    assert reassembler.datagrams_accepted + sum(reassembler.rejected.values()) == 1
    if accepted:  # a mutation the CRC cannot see must still be self-consistent
        frames = reassembler.flush()
        assert len(frames) == 1 and frames[0].received.any()


def test_a_slice_is_stored_once_whatever_datagram_index_it_claims():
    big = np.random.default_rng(3).integers(0, 64, size=(2, 40, 40))  # 1200-byte channels: sliced at mtu 300
    datagrams = make_datagrams(partition=PartitionKind.CHANNEL, latent=big)
    first = next(d for d in datagrams if peek_header(d).sub_count > 1)
    header = peek_header(first)
    reassembler = Reassembler()
    assert reassembler.receive(first, 0.0) is None
    for index in range(header.datagram_count):
        if index != header.datagram_index:
            assert reassembler.receive(rewrite_header(first, datagram_index=index), 0.0) == RejectReason.DUPLICATE
    recut = rewrite_header(first, datagram_index=(header.datagram_index + 1) % header.datagram_count,
                           sub_count=header.sub_count + 1)
    assert reassembler.receive(recut, 0.0) in (RejectReason.INCONSISTENT, RejectReason.BAD_LENGTH)
