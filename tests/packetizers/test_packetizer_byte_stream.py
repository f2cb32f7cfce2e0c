"""Byte streams (layout bytes, jpeg): variable-length segments with their spans on the wire."""

import numpy as np
import pytest

from packetizers.frames import LatentFrame, StreamFrame
from packetizers.packetizer import Packetizer
from packetizers.reassembler import Reassembler, RejectReason
from packetizers.wire import (
    FIELD_NAMES,
    HEADER_SIZE,
    SPAN_SIZE,
    UNIT_ID_SIZE,
    Layout,
    PartitionKind,
    crc_ok,
    parse_with_construct,
    peek_header,
    rewrite_header,
    with_crc,
)

RNG = np.random.default_rng(4)
STREAM = RNG.integers(0, 256, size=9000, dtype=np.uint8).tobytes()
# segments of very different lengths, some larger than a datagram
OFFSETS = (0, 300, 310, 2900, 2901, 4000, 6500, 6600)
FRAME = StreamFrame.cut(STREAM, OFFSETS, codec_params=(80, 32), codec_id=10, image_size=(64, 96))


def segments_of(offsets=OFFSETS, stream=STREAM):
    ends = (*offsets[1:], len(stream))
    return {i: stream[a:b] for i, (a, b) in enumerate(zip(offsets, ends))}


def packetize(seed=3, mtu=1200, frame=FRAME, frame_id=5):
    return Packetizer(seed=seed, mtu=mtu).packetize(frame, frame_id)


def test_construct_and_struct_agree_and_spans_locate_every_unit():
    seen = {}
    for datagram in packetize():
        fast, slow = peek_header(datagram), parse_with_construct(datagram)
        for name in FIELD_NAMES:
            assert getattr(fast, name) == slow.header[name], name
        assert (fast.layout, fast.partition, fast.bit_width) == (Layout.BYTES, PartitionKind.SEGMENT, 8)
        assert fast.shape == (len(STREAM),) and (fast.dim1, fast.dim2) == (80, 32) and fast.unit_count == len(OFFSETS)
        assert crc_ok(datagram)
        assert len(datagram) == HEADER_SIZE + (UNIT_ID_SIZE + SPAN_SIZE) * fast.unit_count_here + fast.payload_len + 4
        for unit, span in zip(slow.unit_ids, slow.unit_spans):
            seen[unit] = (span.offset, span.length)
    expected = {u: (OFFSETS[u], len(s)) for u, s in segments_of().items()}
    assert seen == expected


def test_big_segments_are_split_and_datagrams_respect_the_mtu():
    datagrams = packetize(mtu=500)
    assert max(map(len, datagrams)) <= 500
    assert any(peek_header(d).sub_count > 1 for d in datagrams)
    assert packetize(mtu=500) == datagrams  # deterministic
    assert packetize(mtu=500, seed=4) != datagrams


@pytest.mark.parametrize("mtu", [300, 1200])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_received_segments_are_exact_and_lost_ones_are_marked(mtu, seed):
    datagrams = packetize(mtu=mtu)
    keep = np.random.default_rng(seed).random(len(datagrams)) >= 0.3
    reassembler = Reassembler()
    for datagram, kept in zip(datagrams, keep):
        if kept:
            assert reassembler.receive(datagram, 0.0) is None
    (frame,) = reassembler.flush()
    # oracle: a unit arrives iff every datagram naming it arrived
    complete = {u: True for u in range(len(OFFSETS))}
    named = set()
    for datagram, kept in zip(datagrams, keep):
        for unit in parse_with_construct(datagram).unit_ids:
            named.add(unit)
            complete[unit] &= bool(kept)
    assert named == set(complete)
    np.testing.assert_array_equal(frame.unit_received, [complete[u] for u in range(len(OFFSETS))])
    sent = segments_of()
    received = frame.segments()
    assert set(received) == {u for u, ok in complete.items() if ok}
    assert all(received[u] == sent[u] for u in received)
    assert frame.received.sum() == sum(
        len(parse_with_construct(d).payload) for d, kept in zip(datagrams, keep) if kept
    )


def _with_spans(datagram, spans):
    """The datagram with its unit spans replaced (CRC repaired): what a hostile peer sends."""
    count = peek_header(datagram).unit_count_here
    start = HEADER_SIZE + UNIT_ID_SIZE * count
    table = np.asarray(spans, dtype=">u4").tobytes()
    return with_crc(datagram[:start] + table + datagram[start + SPAN_SIZE * count : -4])


def test_impossible_spans_and_stream_headers_are_rejected():
    datagrams = packetize()
    first = datagrams[0]
    count = peek_header(first).unit_count_here
    cases = [
        (_with_spans(first, [[len(STREAM), 1]] * count), RejectReason.BAD_HEADER),  # beyond the stream
        (_with_spans(first, [[0, 0]] * count), RejectReason.BAD_HEADER),  # empty unit
        (rewrite_header(first, bit_width=6), RejectReason.BAD_HEADER),
        (rewrite_header(first, partition=PartitionKind.CHANNEL), RejectReason.BAD_HEADER),
        (rewrite_header(first, unit_count=len(STREAM) + 1), RejectReason.BAD_HEADER),
        (rewrite_header(first, flags=2), RejectReason.BAD_HEADER),  # signed bytes
        (rewrite_header(first, dim0=2**31), RejectReason.TOO_LARGE),
    ]
    for datagram, reason in cases:
        reassembler = Reassembler()
        assert reassembler.receive(datagram, 0.0) == reason
        assert reassembler.frames_in_flight == 0


def test_a_unit_whose_span_changes_between_datagrams_is_inconsistent():
    datagrams = packetize(mtu=500)
    split = [d for d in datagrams if peek_header(d).sub_count > 1]
    first, second = split[0], split[1]
    assert parse_with_construct(first).unit_ids == parse_with_construct(second).unit_ids
    reassembler = Reassembler()
    assert reassembler.receive(first, 0.0) is None
    offset, length = (lambda s: (s.offset, s.length))(parse_with_construct(second).unit_spans[0])
    assert reassembler.receive(_with_spans(second, [[offset, length - 1]]), 0.0) == RejectReason.INCONSISTENT
    assert reassembler.receive(second, 0.0) is None


def test_segment_partition_is_for_byte_streams_only():
    latent = np.zeros((4, 2, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="byte streams"):
        Packetizer(PartitionKind.SEGMENT).packetize(LatentFrame(latent, Layout.CHW, 4, False), 0)
    with pytest.raises(ValueError, match="offsets"):
        Packetizer().packetize(StreamFrame.cut(STREAM, (0, 10, 10)), 0)
    latent_frame = Reassembler()
    datagram = Packetizer(PartitionKind.CHANNEL).packetize(LatentFrame(latent, Layout.CHW, 4, False), 0)[0]
    assert latent_frame.receive(rewrite_header(datagram, layout=Layout.BYTES), 0.0) in (
        RejectReason.BAD_LENGTH, RejectReason.TRUNCATED)


def test_no_stream_byte_is_stored_twice():
    datagrams = packetize(mtu=500)
    whole = next(d for d in datagrams if peek_header(d).sub_count == 1)
    ids = parse_with_construct(whole).unit_ids
    reassembler = Reassembler()
    assert reassembler.receive(whole, 0.0) is None
    # another datagram index claiming the same bytes under another unit id
    other = [u for u in range(len(OFFSETS)) if u not in ids][0]
    span = parse_with_construct(whole).unit_spans[0]
    body = whole[:HEADER_SIZE] + np.asarray([other], ">u4").tobytes() + np.asarray(
        [[span.offset, span.length]], ">u4").tobytes() + parse_with_construct(whole).payload[: span.length]
    thief = rewrite_header(with_crc(body), unit_count_here=1, payload_len=span.length,
                           datagram_index=peek_header(datagrams[-1]).datagram_index)
    assert reassembler.receive(thief, 0.0) == RejectReason.INCONSISTENT
    # the same slice again under another datagram index
    sliced = [d for d in datagrams if peek_header(d).sub_count > 1]
    assert reassembler.receive(sliced[0], 0.0) is None
    unused = next(i for i in range(peek_header(whole).datagram_count)
                  if i not in {peek_header(d).datagram_index for d in (whole, sliced[0])})
    assert reassembler.receive(rewrite_header(sliced[0], datagram_index=unused), 0.0) == RejectReason.DUPLICATE
    (frame,) = reassembler.flush()
    assert frame.received.sum() == len(parse_with_construct(whole).payload) + len(parse_with_construct(sliced[0]).payload)
