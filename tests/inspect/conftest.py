"""Captures with known contents for the dissector and `netsem inspect` tests.

Datagrams come from the real `Packetizer`; each frame's fates (sent, dropped with an
emulator comment, never captured, corrupted, delayed) are chosen here, so every test knows
exactly which units a receiver got. Frame 1 goes to a non-default port (heuristic decoding);
a few non-netsem and malformed packets are mixed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcapng

from packetizers.wire import DEFAULT_PORT
from packetizers.frames import LatentFrame, StreamFrame
from packetizers.packetizer import Packetizer
from packetizers.wire import Layout, PartitionKind

OTHER_PORT = 50123
START_TIME = 1_700_000_000.0


@dataclass
class CapturedDatagram:
    """One netsem packet written to a capture, with what a receiver made of it."""

    packet_number: int  # 1-based, as Wireshark counts
    datagram: bytes
    comment: str
    dport: int
    delivered: bool  # reached the receiver intact


@dataclass
class KnownCapture:
    path: object
    netsem: list[CapturedDatagram] = field(default_factory=list)
    other_packets: int = 0  # not netsem at all
    malformed_packets: int = 0  # start with the magic but cannot be parsed
    lost_units: dict[int, set[int]] = field(default_factory=dict)  # frame id -> units not received whole
    unit_counts: dict[int, int] = field(default_factory=dict)
    datagram_counts: dict[int, int] = field(default_factory=dict)
    segment_lengths: dict[int, list[int]] = field(default_factory=dict)  # byte-stream frames: bytes per unit


def _frames() -> list[tuple[LatentFrame | StreamFrame, Packetizer, int]]:
    rng = np.random.default_rng(8)
    return [
        (LatentFrame(rng.integers(0, 64, (16, 8, 8)), Layout.CHW, 6, False, scale=0.25, codec_id=3,
                     image_size=(128, 128)), Packetizer(PartitionKind.CHANNEL, seed=5, mtu=300), DEFAULT_PORT),
        (LatentFrame(rng.integers(-128, 128, (64, 24)), Layout.ND, 8, True, token_grid=(8, 8), stream_id=2,
                     importance=1, kb_version=7), Packetizer(PartitionKind.TOKEN, seed=11, mtu=400), OTHER_PORT),
        (LatentFrame(rng.integers(0, 256, (4, 32, 32)), Layout.CHW, 8, False),
         Packetizer(PartitionKind.CHANNEL, interleave=False, mtu=300), DEFAULT_PORT),
        (LatentFrame(rng.integers(0, 32, (8, 16, 16)), Layout.CHW, 5, False, image_size=(256, 256)),
         Packetizer(PartitionKind.SPATIAL, seed=2, mtu=500), DEFAULT_PORT),
        # a byte stream (as jpeg sends): segments of uneven length, some split over datagrams
        (StreamFrame.cut(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(), (0, 40, 700, 710, 1900, 2600),
                     codec_params=(75, 32), codec_id=10, image_size=(48, 64)), Packetizer(seed=4, mtu=400), DEFAULT_PORT),
    ]


# Per frame, datagram index -> fate; unlisted datagrams are "sent".
FATES: dict[int, dict[int, str]] = {
    0: {1: "dropped: gemodel bad state", 3: "delayed 23.4 ms"},
    1: {0: "missing", 2: "corrupted bit 517", 4: "dropped: loss random"},
    2: {3: "dropped: gemodel bad state", 7: "queue full"},
    3: {1: "delayed 23.4 ms; reordered"},
    4: {2: "dropped: loss random", 5: "delayed 23.4 ms"},
}


def _flip_payload_bit(datagram: bytes, bit: int) -> bytes:
    corrupted = bytearray(datagram)
    corrupted[-5 - bit // 8] ^= 1 << (bit % 8)  # inside the payload, before the CRC
    return bytes(corrupted)


def build_capture(path) -> KnownCapture:
    """Write the capture and return what it holds."""
    capture = KnownCapture(path)
    packets = []
    clock = START_TIME

    def add(packet, comment: str) -> int:
        nonlocal clock
        packet = Ether(bytes(packet))
        clock += 0.0015
        packet.time = clock
        packet.comment = comment.encode()
        packets.append(packet)
        return len(packets)

    def udp(dport: int, payload: bytes):
        return Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=40000, dport=dport) / Raw(payload)

    for frame_id, (frame, packetizer, dport) in enumerate(_frames()):
        datagrams = packetizer.packetize(frame, frame_id)
        plan = packetizer.plan(frame)
        capture.unit_counts[frame_id] = packetizer.partition_of(frame).unit_count
        capture.datagram_counts[frame_id] = len(datagrams)
        if isinstance(frame, StreamFrame):
            capture.segment_lengths[frame_id] = packetizer.partition_of(frame).unit_sizes().tolist()
        lost: set[int] = set()
        for index, datagram in enumerate(datagrams):
            fate = FATES[frame_id].get(index, "sent")
            delivered = fate == "sent" or fate.startswith("delayed")
            if not delivered:
                lost.update(np.frombuffer(plan.unit_ids[index], dtype=">u4").tolist())
            if fate == "missing":
                continue
            if fate.startswith("corrupted"):
                datagram = _flip_payload_bit(datagram, 517 % (8 * plan.payload_len[index]))
            number = add(udp(dport, datagram), fate)
            capture.netsem.append(CapturedDatagram(number, datagram, fate, dport, delivered))
        capture.lost_units[frame_id] = lost
        if frame_id == 0:  # noise between frames
            add(udp(5353, b"\x00\x01not netsem at all"), "")
            add(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(dport=DEFAULT_PORT) / Raw(b"NSEM over tcp"), "")
            add(udp(DEFAULT_PORT, b"garbage on the netsem port"), "")
            capture.other_packets += 3
            add(udp(DEFAULT_PORT, datagrams[0][:40]), "truncated")
            add(udp(DEFAULT_PORT, datagrams[0] + b"tail"), "trailing bytes")
            capture.malformed_packets += 2
    wrpcapng(str(path), packets)
    return capture


@pytest.fixture(scope="session")
def known_capture(tmp_path_factory) -> KnownCapture:
    return build_capture(tmp_path_factory.mktemp("captures") / "known.pcapng")
