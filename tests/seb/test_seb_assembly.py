"""KB update messages gathered segment by segment across copies, and what a peer can get wrong."""

from __future__ import annotations

from packetizers.frames import StreamFrame
from packetizers.kinds import MessageType, PartitionKind
from packetizers.packetizer import Packetizer
from packetizers.wire import rewrite_header

from netsem.seb.assembly import UpdateAssembler


def _copies(message: bytes, version: int, count: int, mtu: int = 300) -> list[list[bytes]]:
    frame = StreamFrame.cut(message, list(range(0, len(message), 200)), kb_version=version)
    packetizer = Packetizer(PartitionKind.SEGMENT, mtu=mtu)
    return [packetizer.packetize(frame, (version << 8) | copy, MessageType.KB_UPDATE) for copy in range(count)]


def test_gaps_of_one_copy_are_filled_by_the_next():
    message = bytes(range(256)) * 4  # 1024 bytes, 6 segments
    first, second, third = _copies(message, 5, 3)
    assembler = UpdateAssembler()
    done = [assembler.receive(d) for k, d in enumerate(first) if k != 2]
    assert done == [None] * (len(first) - 1) and assembler.in_progress == 1
    assert assembler.receive(second[0]) is None  # already held
    assert assembler.receive(second[2]) == (5, message)
    assert assembler.in_progress == 0 and not assembler.rejected
    assert assembler.receive(third[0]) is None and assembler.in_progress == 1  # a new gathering (the caller drops held versions)


def test_hostile_datagrams_are_counted():
    message = bytes(600)
    (copy,) = _copies(message, 3, 1)
    assembler = UpdateAssembler(max_messages=2)
    assert assembler.receive(b"NSEM" + bytes(20)) is None
    assert assembler.receive(copy[0][:-1] + bytes([copy[0][-1] ^ 1])) is None
    assert assembler.receive(rewrite_header(copy[0], msg_type=MessageType.DATA)) is None
    assert assembler.receive(rewrite_header(copy[0], dim0=1 << 24)) is None
    assert assembler.rejected == {"bad_header": 1, "bad_crc": 1, "bad_update_datagram": 2}
    # the same segment with other bytes: not one message
    assembler.receive(copy[0])
    forged = bytearray(copy[0])
    forged[-10] ^= 0xFF
    from packetizers.wire import with_crc

    assert assembler.receive(with_crc(bytes(forged[:-4]))) is None
    assert assembler.rejected["update_segment_conflict"] == 1 and assembler.in_progress == 0
    # bounded: a third message in progress drops the oldest
    for version in (7, 8, 9):
        assembler.receive(_copies(bytes(600), version, 1)[0][0])
    assert assembler.in_progress == 2 and assembler.rejected["update_dropped_unfinished"] == 1
