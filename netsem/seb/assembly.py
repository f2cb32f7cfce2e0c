"""KB update messages gathered segment by segment, across all the copies a sender repeats.

A KB update (or snapshot) is a byte stream cut into datagram-sized segments; every copy the
sender repeats is byte-identical and cut the same way. `UpdateAssembler.receive(datagram)`
keeps each segment the first time any copy brings it, keyed by (new version, snapshot or not,
stream length, segment count), and hands back the whole message the moment its last missing
segment arrives — so at datagram loss p an n-segment update sent r times is lost only if some
segment is lost in all r copies (about n p^r), not if every copy lost one (about (1-(1-p)^n)^r).

Bounded: at most `max_messages` messages in progress (the oldest is dropped), each at most
`MAX_UPDATE_BYTES`. Everything a peer could get wrong is counted in `rejected` with a reason.
"""

from __future__ import annotations

from collections import Counter, OrderedDict

import numpy as np

from packetizers.kinds import Layout, MessageType
from packetizers.wire import CRC_SIZE, HEADER_SIZE, MAGIC, SPAN_SIZE, UNIT_ID_SIZE, VERSION, crc_ok, peek_header

MAX_UPDATE_BYTES = 1 << 20  # a snapshot of a full KB (256 + 64 Sebs x 16 slices) is ~80 kB
SNAPSHOT_ID = 0x80  # bit 7 of a KB message's frame id: a snapshot (the low bits count copies)


class UpdateAssembler:
    def __init__(self, max_messages: int = 16) -> None:
        self.max_messages = max_messages
        self.rejected: Counter[str] = Counter()
        self._messages: OrderedDict[tuple, dict[int, tuple[int, bytes]]] = OrderedDict()

    def receive(self, datagram: bytes) -> tuple[int, bytes] | None:
        """(new version, the whole message) when this datagram completes one; None otherwise."""
        header = peek_header(datagram)
        if header is None or datagram[:4] != MAGIC or header.version != VERSION:
            self.rejected["bad_header"] += 1
            return None
        if not crc_ok(datagram):
            self.rejected["bad_crc"] += 1
            return None
        n = header.unit_count_here
        table = n * (UNIT_ID_SIZE + SPAN_SIZE)
        if (header.msg_type != MessageType.KB_UPDATE or header.layout != Layout.BYTES or header.sub_count != 1
                or n == 0 or not 1 <= header.unit_count <= header.dim0 <= MAX_UPDATE_BYTES
                or len(datagram) != HEADER_SIZE + table + header.payload_len + CRC_SIZE):
            self.rejected["bad_update_datagram"] += 1
            return None
        ids = np.frombuffer(datagram, ">u4", n, HEADER_SIZE).astype(np.int64)
        spans = np.frombuffer(datagram, ">u4", 2 * n, HEADER_SIZE + n * UNIT_ID_SIZE).astype(np.int64).reshape(n, 2)
        if (ids >= header.unit_count).any() or (spans[:, 1] == 0).any() or (spans.sum(axis=1) > header.dim0).any() \
                or spans[:, 1].sum() != header.payload_len:
            self.rejected["bad_update_datagram"] += 1
            return None
        key = (header.kb_version, bool(header.frame_id & SNAPSHOT_ID), header.dim0, header.unit_count)
        pieces = self._messages.get(key)
        if pieces is None:
            pieces = self._messages[key] = {}
            while len(self._messages) > self.max_messages:
                self._messages.popitem(last=False)
                self.rejected["update_dropped_unfinished"] += 1
        at = HEADER_SIZE + table
        for unit, (offset, length) in zip(ids.tolist(), spans.tolist()):
            if unit in pieces and pieces[unit] != (offset, datagram[at:at + length]):
                self.rejected["update_segment_conflict"] += 1  # copies differ: not one message
                del self._messages[key]
                return None
            pieces.setdefault(unit, (offset, datagram[at:at + length]))
            at += length
        if len(pieces) < header.unit_count:
            return None
        del self._messages[key]
        ordered = sorted(pieces.values())
        stream = b"".join(data for _, data in ordered)
        offsets = [offset for offset, _ in ordered]
        expected = np.concatenate([[0], np.cumsum([len(data) for _, data in ordered])[:-1]]).tolist()
        if offsets != expected or len(stream) != header.dim0:
            self.rejected["bad_update_datagram"] += 1
            return None
        return header.kb_version, stream

    @property
    def in_progress(self) -> int:
        return len(self._messages)
