"""Pieces seed 001 added to the shared layers: importance classes in the packetizer, the
KB_UPDATE message type in the reassembler, message-wise UEP in the PHY stage, JPEG 2000."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from netsem.codecs.registry import get_codec
from netsem.metrics import psnr_db
from netsem.phy.stage import importance_of, importance_phy_stage
from packetizers.frames import FrameError, StreamFrame
from packetizers.kinds import MessageType, PartitionKind
from packetizers.packetizer import Packetizer
from packetizers.reassembler import Reassembler, RejectReason
from packetizers.wire import FIXED_HEADER_STRUCT, Header


def _headers(datagrams):
    return [Header(*FIXED_HEADER_STRUCT.unpack_from(d)) for d in datagrams]


def test_segment_classes_never_share_a_datagram_and_go_first():
    segments = tuple(bytes([k]) * 100 for k in range(9))
    classes = (0, 1, 0, 1, 0, 0, 1, 0, 0)
    frame = StreamFrame(segments, image_size=(8, 8), segment_importance=classes)
    datagrams = Packetizer(PartitionKind.SEGMENT, seed=3, mtu=400).packetize(frame, 1)
    importance = [h.importance for h in _headers(datagrams)]
    assert importance == sorted(importance, reverse=True)  # class 1 first
    r = Reassembler()
    for d in datagrams:
        ids = np.frombuffer(d[70:70 + 4 * _headers([d])[0].unit_count_here], ">u4")
        assert {classes[i] for i in ids} == {_headers([d])[0].importance}
        r.receive(d, 0.0)
    (got,) = r.flush()
    assert got.complete
    with pytest.raises(FrameError, match="one class"):
        StreamFrame(segments, segment_importance=(0, 1))


def test_kb_update_messages_need_their_own_reassembler():
    frame = StreamFrame((b"update-bytes",), image_size=(0, 0))
    (datagram,) = Packetizer(PartitionKind.SEGMENT).packetize(frame, 7, MessageType.KB_UPDATE)
    assert _headers([datagram])[0].msg_type == MessageType.KB_UPDATE
    assert Reassembler().receive(datagram, 0.0) == RejectReason.UNSUPPORTED_TYPE
    updates = Reassembler(message_type=MessageType.KB_UPDATE)
    assert updates.receive(datagram, 0.0) is None
    assert updates.flush()[0].complete


def test_phy_stage_protects_important_datagrams_more():
    """At 2 dB over a SISO AWGN channel LDPC 2/3 + QPSK loses 600-byte datagrams and LDPC 1/2
    delivers them (measured: 0/30 and 30/30): the stage must route by the header's importance
    byte, spending 4/3 the channel uses on class 1."""
    segments = tuple(bytes([k % 251]) * 500 for k in range(60))
    frame = StreamFrame(segments, image_size=(8, 8), segment_importance=tuple(k % 2 for k in range(60)))
    datagrams = Packetizer(PartitionKind.SEGMENT, seed=1, mtu=600).packetize(frame, 1)
    stage = importance_phy_stage("siso awgn snr 2dB ldpc 2/3 qpsk", "siso awgn snr 2dB ldpc 1/2 qpsk", seed=5)
    delivered = {0: 0, 1: 0}
    for d in datagrams:
        if stage.process(d, 0.0).datagram is not None:
            delivered[importance_of(d)] += 1
    assert importance_of(b"not netsem") == 0
    assert delivered[1] >= 27 and delivered[0] <= 5, delivered
    uses = {k: stage.by_class[k].stats["channel_uses"] for k in (0, 1)}
    assert uses[1] / uses[0] == pytest.approx(4 / 3, rel=0.05)


def test_jpeg2000_fits_bytes_and_a_lost_tail_truncates_gracefully():
    import skimage.data

    image = skimage.data.astronaut()[:256, :256]
    codec = get_codec("jpeg2000")
    frame = codec.encode_to_bytes(image, 2000, 500)
    assert sum(map(len, frame.segments)) <= 2000 and len(frame.segments) >= 3
    full = psnr_db(image, codec.from_frame(frame))
    tail_lost = dataclasses.replace(frame, segments=frame.segments[:2] + (None,) * (len(frame.segments) - 2))
    partial = psnr_db(image, codec.from_frame(tail_lost))
    head_lost = dataclasses.replace(frame, segments=(None,) + frame.segments[1:])
    gray = psnr_db(image, codec.from_frame(head_lost))
    assert full > partial > gray + 3, (full, partial, gray)
