"""Datagrams -> latent frames (or byte streams) with a received-mask; sans-I/O.

    reassembler.receive(datagram, now)   # never raises on peer input; returns the reject reason or None
    reassembler.poll(now) -> [Frame]     # frames complete, or whose deadline passed
    reassembler.next_deadline()          # when to call poll next (None: nothing pending)

Every check a peer can fail runs before any buffer is allocated: length, magic, version,
CRC, header sanity, frame size against the limits, unit ids, payload length, duplicates.
Each rejection is counted under a named reason. Memory is bounded: frames in flight,
bytes per frame and bytes in all frames are limits; when a new frame would exceed them the
oldest frame is evicted (counted), never a crash.
"""

from __future__ import annotations

import enum
import math
from collections import Counter, OrderedDict
from dataclasses import dataclass

import numpy as np

from packetizers import bitpack
from packetizers.packetizer import sub_unit_bounds
from packetizers.partition import Partition, PartitionError, build_partition, unit_count_for, unit_sizes_of
from packetizers.wire import (
    CRC_SIZE,
    FRAME_WIDE_SIZE,
    HEADER_SIZE,
    LAYOUT_OFFSET,
    MAGIC,
    PER_DATAGRAM_STRUCT,
    VERSION,
    Flags,
    Header,
    Layout,
    MessageType,
    PartitionKind,
    UNIT_ID_SIZE,
    crc_ok,
    peek_header,
    unit_entry_size,
)


class RejectReason(str, enum.Enum):
    TRUNCATED = "truncated"  # shorter than a header, or shorter than the header says
    BAD_MAGIC = "bad_magic"
    BAD_VERSION = "bad_version"
    BAD_CRC = "bad_crc"
    UNSUPPORTED_TYPE = "unsupported_type"
    BAD_LENGTH = "bad_length"  # longer than the header says, or payload size != units' size
    BAD_HEADER = "bad_header"  # impossible field values or geometry
    TOO_LARGE = "too_large"  # frame exceeds max_frame_elements / max_frame_bytes
    UNIT_OUT_OF_RANGE = "unit_out_of_range"
    INCONSISTENT = "inconsistent"  # frame metadata differs from the frame's first datagram
    DUPLICATE = "duplicate"
    LATE = "late"  # its frame was already delivered or evicted


@dataclass(frozen=True)
class ReassemblerLimits:
    max_frames_in_flight: int = 16
    max_frame_elements: int = 4 * 2**20
    max_frame_bytes: int = 32 * 2**20
    max_total_bytes: int = 48 * 2**20
    frame_timeout: float = 0.5  # seconds of silence after a frame's latest datagram
    remembered_frames: int = 4096  # delivered frame ids kept to reject late datagrams


@dataclass
class Frame:
    """A reassembled (possibly partial) frame."""

    header: Header  # the first datagram's header: frame-wide fields are valid
    latent: np.ndarray  # missing elements are 0; bytes layout: the uint8 stream
    received: np.ndarray  # bool, latent-shaped
    unit_received: np.ndarray  # bool (unit_count,): every element of the unit arrived
    datagrams_received: int
    first_arrival: float
    last_arrival: float
    spans: np.ndarray | None = None  # bytes layout: (unit_count, 2) offset, length; -1 for units never seen

    def segments(self) -> dict[int, bytes]:
        """Bytes layout: the completely received segments, by unit id."""
        if self.spans is None:
            raise ValueError("only a byte-stream frame has segments")
        segments = {}
        for unit in np.flatnonzero(self.unit_received).tolist():
            offset, length = self.spans[unit].tolist()
            segments[unit] = self.latent[offset : offset + length].tobytes()
        return segments

    @property
    def datagrams_expected(self) -> int:
        return self.header.datagram_count

    @property
    def complete(self) -> bool:
        return self.datagrams_received == self.header.datagram_count


class _FrameState:
    """A frame being reassembled. A latent's payloads are kept packed until delivery, when the
    whole frame is unpacked and scattered in a few vectorised steps; a byte stream's payloads
    are bytes already, written into the stream as they arrive."""

    __slots__ = ("header", "header_bytes", "partition", "spans", "stream", "claimed", "unit_parts", "slice_seen",
                 "seen", "whole", "slices", "count", "first", "last", "nbytes")

    def __init__(self, header: Header, header_bytes: bytes, partition: Partition | None, nbytes: int,
                 now: float) -> None:
        self.header = header
        self.header_bytes = header_bytes  # the frame-wide header bytes it is found by
        self.partition = partition  # None for a byte stream: its units' spans come with the datagrams
        stream = partition is None
        self.spans = np.full((header.unit_count, 2), -1, dtype=np.int64) if stream else None
        self.stream = np.zeros(header.dim0, dtype=np.uint8) if stream else None
        self.claimed = np.zeros(header.dim0, dtype=bool) if stream else None  # stream bytes received
        # how each unit arrives: 0 not yet, 1 whole, n > 1 as slices of n (one count per unit,
        # each slice once: no data is stored twice, so a frame holds at most its own size)
        self.unit_parts = np.zeros(header.unit_count, dtype=np.uint16)
        self.slice_seen: set[int] = set()  # unit * 65536 + sub index
        self.seen = np.zeros(header.datagram_count, dtype=bool)
        self.whole: list[tuple[np.ndarray, bytes]] = []  # (unit ids, payload)
        self.slices: list[tuple[int, int, int, bytes]] = []  # (unit, sub index, sub count, payload)
        self.count = 0
        self.first = self.last = now
        self.nbytes = nbytes


def frame_nbytes(header: Header, elements: int) -> int:
    """Upper bound of the memory a frame holds: packed payloads (at most one copy of the
    frame, duplicates being rejected), unit and datagram bitmaps, partition indices, and the
    delivered latent and mask."""
    per_datagram = 161  # seen flag, payload reference, slice record
    if header.layout == Layout.BYTES:  # the stream and its claimed bytes (delivered as they are); spans, parts
        return 2 * elements + per_datagram * header.datagram_count + 27 * (header.unit_count + 1)
    itemsize = 1 if header.bit_width <= 8 else 2
    index_bytes = 4 * elements if header.partition == PartitionKind.SPATIAL else 0
    packed = bitpack.packed_size(elements, header.bit_width) + per_datagram * header.datagram_count
    return packed + elements * (itemsize + 1) + index_bytes + 11 * (header.unit_count + 1)


class Reassembler:
    def __init__(self, limits: ReassemblerLimits = ReassemblerLimits()) -> None:
        self.limits = limits
        self.rejected: Counter[str] = Counter()
        self.datagrams_accepted = 0
        self.frames_completed = 0
        self.frames_timed_out = 0
        self.frames_evicted = 0
        self._frames: OrderedDict[tuple[int, int], _FrameState] = OrderedDict()
        self._by_header: dict[bytes, _FrameState] = {}  # frame-wide header bytes -> frame
        self._delivered: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._ready: list[Frame] = []
        self._total_bytes = 0

    # ---------------------------------------------------------------- input
    def receive(self, datagram: bytes, now: float) -> RejectReason | None:
        reason = self._receive(datagram, now)
        if reason is not None:
            self.rejected[reason.value] += 1
        return reason

    def _receive(self, datagram: bytes, now: float) -> RejectReason | None:
        length = len(datagram)
        if length < HEADER_SIZE + CRC_SIZE:
            return RejectReason.BAD_MAGIC if datagram[:4] != MAGIC[: min(4, length)] else RejectReason.TRUNCATED
        if datagram[:4] != MAGIC:
            return RejectReason.BAD_MAGIC
        if datagram[4] != VERSION:
            return RejectReason.BAD_VERSION
        _importance, reserved, index, sub_index, sub_count, id_count, payload_len = PER_DATAGRAM_STRUCT.unpack_from(
            datagram, FRAME_WIDE_SIZE
        )
        table_size = unit_entry_size(datagram[LAYOUT_OFFSET]) * id_count
        declared = HEADER_SIZE + table_size + payload_len + CRC_SIZE
        if not crc_ok(datagram):
            return RejectReason.TRUNCATED if length < declared else RejectReason.BAD_CRC
        if length != declared:
            return RejectReason.TRUNCATED if length < declared else RejectReason.BAD_LENGTH
        state = self._by_header.get(datagram[:FRAME_WIDE_SIZE])
        if state is None:
            header = peek_header(datagram)
            reason = self._check_new_frame(header)
            if reason is not None:
                return reason
        else:
            header = state.header
        if (
            index >= header.datagram_count
            or reserved != 0
            or id_count == 0
            or sub_count == 0
            or sub_index >= sub_count
            or (sub_count > 1 and id_count != 1)
            or id_count > header.unit_count
        ):
            return RejectReason.BAD_HEADER
        unit_ids = np.frombuffer(datagram, dtype=">u4", count=id_count, offset=HEADER_SIZE)
        if int(unit_ids[-1] if id_count == 1 else unit_ids.max()) >= header.unit_count:
            return RejectReason.UNIT_OUT_OF_RANGE
        if id_count > 1 and not (unit_ids[1:] > unit_ids[:-1]).all():
            return RejectReason.BAD_HEADER  # ids are strictly ascending: no unit twice
        spans = None
        if header.layout == Layout.BYTES:
            spans = np.frombuffer(datagram, dtype=">u4", count=2 * id_count, offset=HEADER_SIZE + UNIT_ID_SIZE * id_count)
            spans = spans.reshape(id_count, 2).astype(np.int64)
            elements = _span_elements(header.dim0, spans, sub_index, sub_count)
            if elements is not None and state is not None:
                known = state.spans[unit_ids]
                if ((known[:, 0] >= 0) & (known != spans).any(axis=1)).any():
                    return RejectReason.INCONSISTENT  # a unit's span differs from an earlier datagram's
        else:
            elements = self._element_count(header, state, unit_ids, sub_index, sub_count)
        if elements is None:
            return RejectReason.BAD_HEADER
        if bitpack.packed_size(elements, header.bit_width) != payload_len:
            return RejectReason.BAD_LENGTH
        pieces = None if spans is None else _stream_pieces(spans, sub_index, sub_count)
        if pieces is None and spans is not None:
            return RejectReason.INCONSISTENT  # the datagram's own units overlap in the stream
        if state is not None:
            reason = _repeat_reason(state, index, unit_ids, sub_index, sub_count, pieces)
            if reason is not None:
                return reason
        if state is None:
            state = self._open_frame(datagram[:FRAME_WIDE_SIZE], header, now)
        payload = datagram[HEADER_SIZE + table_size : -CRC_SIZE]
        if spans is not None:
            state.spans[unit_ids] = spans
            data, at = np.frombuffer(payload, dtype=np.uint8), 0
            for start, end in pieces:  # in unit-id order, as the payload carries them
                state.stream[start:end] = data[at : at + end - start]
                state.claimed[start:end] = True
                at += end - start
        if sub_count == 1:
            state.unit_parts[unit_ids] = 1
            if spans is None:
                state.whole.append((unit_ids.copy(), payload))  # a copy: the datagram itself is not kept
        else:
            state.unit_parts[unit_ids[0]] = sub_count
            state.slice_seen.add(int(unit_ids[0]) * 65536 + sub_index)
            if spans is None:
                state.slices.append((int(unit_ids[0]), sub_index, sub_count, payload))
        state.seen[index] = True
        state.count += 1
        state.last = now
        self.datagrams_accepted += 1
        if state.count == header.datagram_count:
            self._deliver((header.stream_id, header.frame_id), timed_out=False)
        return None

    def _check_new_frame(self, header: Header) -> RejectReason | None:
        """Checks on the frame-wide fields, run once per frame (its first datagram)."""
        key = (header.stream_id, header.frame_id)
        if key in self._delivered:
            return RejectReason.LATE
        if key in self._frames:
            return RejectReason.INCONSISTENT  # same frame, different frame-wide header
        if header.msg_type != MessageType.DATA:
            return RejectReason.UNSUPPORTED_TYPE
        if header.layout == Layout.BYTES:
            return self._check_new_stream(header)
        if (
            header.layout not in (Layout.CHW, Layout.ND)
            or header.partition not in (PartitionKind.CHANNEL, PartitionKind.TOKEN, PartitionKind.SPATIAL)
            or not 1 <= header.bit_width <= bitpack.MAX_BIT_WIDTH
            or header.flags & ~int(Flags.INTERLEAVED | Flags.SIGNED)
            or header.datagram_count == 0
            or (header.layout == Layout.ND and header.dim2 != 0)
            or not (math.isfinite(header.scale) and header.scale > 0)
        ):
            return RejectReason.BAD_HEADER
        elements = 1
        for dim in header.shape:
            elements *= dim
        if elements > self.limits.max_frame_elements:
            return RejectReason.TOO_LARGE
        try:
            count = unit_count_for(*self._geometry(header))
        except PartitionError:
            return RejectReason.BAD_HEADER
        if count != header.unit_count:
            return RejectReason.BAD_HEADER
        if frame_nbytes(header, elements) > self.limits.max_frame_bytes:
            return RejectReason.TOO_LARGE
        return None

    def _check_new_stream(self, header: Header) -> RejectReason | None:
        if (
            header.partition != PartitionKind.SEGMENT
            or header.bit_width != 8
            or header.flags & ~int(Flags.INTERLEAVED)
            or header.datagram_count == 0
            or not 1 <= header.unit_count <= header.dim0
            or (header.grid_h, header.grid_w, header.block_h, header.block_w) != (0, 0, 0, 0)
            or header.scale != 1.0
        ):
            return RejectReason.BAD_HEADER
        if header.dim0 > self.limits.max_frame_elements or frame_nbytes(header, header.dim0) > self.limits.max_frame_bytes:
            return RejectReason.TOO_LARGE
        return None

    @staticmethod
    def _geometry(header: Header) -> tuple:
        return (
            Layout(header.layout), header.shape, PartitionKind(header.partition),
            (header.block_h, header.block_w) if header.partition == PartitionKind.SPATIAL else (0, 0),
            (header.grid_h, header.grid_w) if header.layout == Layout.ND else (0, 0),
        )

    def _element_count(
        self, header: Header, state: _FrameState | None, unit_ids: np.ndarray, sub_index: int, sub_count: int
    ) -> int | None:
        """Elements this datagram carries, or None for an impossible sub-unit."""
        if state is not None and state.partition.uniform_unit_size:
            size = state.partition.uniform_unit_size
            if sub_count == 1:
                return size * unit_ids.size
        else:
            sizes = unit_sizes_of(*self._geometry(header), unit_ids)
            if sub_count == 1:
                return int(sizes.sum())
            size = int(sizes[0])
        if sub_count > size:
            return None
        start, end = sub_unit_bounds(size, sub_index, sub_count)
        return end - start

    # ---------------------------------------------------------------- frames
    def _open_frame(self, header_bytes: bytes, header: Header, now: float) -> _FrameState:
        if header.layout == Layout.BYTES:
            partition, nbytes = None, frame_nbytes(header, header.dim0)
        else:
            geometry = self._geometry(header)
            partition = next(
                (s.partition for s in self._frames.values() if s.partition and self._geometry(s.header) == geometry),
                None,
            ) or build_partition(*geometry)
            nbytes = frame_nbytes(header, partition.size)
        while self._frames and (
            len(self._frames) >= self.limits.max_frames_in_flight
            or self._total_bytes + nbytes > self.limits.max_total_bytes
        ):
            self._drop(next(iter(self._frames)))
            self.frames_evicted += 1
        state = _FrameState(header, header_bytes, partition, nbytes, now)
        self._frames[(header.stream_id, header.frame_id)] = state
        self._by_header[header_bytes] = state
        self._total_bytes += nbytes
        return state

    def _drop(self, key: tuple[int, int]) -> _FrameState:
        state = self._frames.pop(key)
        del self._by_header[state.header_bytes]
        self._total_bytes -= state.nbytes
        self._delivered[key] = None
        while len(self._delivered) > self.limits.remembered_frames:
            self._delivered.popitem(last=False)
        return state

    def _deliver(self, key: tuple[int, int], *, timed_out: bool) -> None:
        state = self._drop(key)
        partition = state.partition
        if partition is None:
            latent, received, unit_received = state.stream, state.claimed, _complete_units(state)
        else:
            values, mask = _unpack_frame(state)
            latent, received = partition.from_units(values), partition.from_units(mask)
            unit_received = np.logical_and.reduceat(mask, partition.unit_offsets[:-1])
        self._ready.append(
            Frame(
                header=state.header,
                latent=latent,
                received=received,
                unit_received=unit_received,
                datagrams_received=state.count,
                first_arrival=state.first,
                last_arrival=state.last,
                spans=state.spans,
            )
        )
        if timed_out:
            self.frames_timed_out += 1
        else:
            self.frames_completed += 1

    # ---------------------------------------------------------------- time
    def poll(self, now: float) -> list[Frame]:
        """Frames completed since the last poll, then frames whose deadline has passed."""
        timeout = self.limits.frame_timeout
        for key in [k for k, s in self._frames.items() if s.last + timeout <= now]:
            self._deliver(key, timed_out=True)
        ready, self._ready = self._ready, []
        return ready

    def next_deadline(self) -> float | None:
        if self._ready:  # delivered already: poll now
            return min(frame.last_arrival for frame in self._ready)
        if not self._frames:
            return None
        return min(state.last for state in self._frames.values()) + self.limits.frame_timeout

    def flush(self) -> list[Frame]:
        """Deliver every pending frame now, complete or not (end of a session)."""
        for key in list(self._frames):
            self._deliver(key, timed_out=True)
        ready, self._ready = self._ready, []
        return ready

    @property
    def frames_in_flight(self) -> int:
        return len(self._frames)

    @property
    def bytes_in_flight(self) -> int:
        return self._total_bytes

    def stats(self) -> dict[str, object]:
        return {
            "datagrams_accepted": self.datagrams_accepted,
            "datagrams_rejected": dict(sorted(self.rejected.items())),
            "frames_completed": self.frames_completed,
            "frames_timed_out": self.frames_timed_out,
            "frames_evicted": self.frames_evicted,
            "frames_in_flight": self.frames_in_flight,
            "bytes_in_flight": self.bytes_in_flight,
        }


def _repeat_reason(state: _FrameState, index: int, unit_ids: np.ndarray, sub_index: int, sub_count: int,
                  pieces: list[tuple[int, int]] | None) -> RejectReason | None:
    """Why a datagram of a known frame repeats or contradicts data the frame already holds."""
    if state.seen[index]:
        return RejectReason.DUPLICATE
    parts = state.unit_parts[unit_ids]
    if sub_count == 1:
        if parts.any():
            return RejectReason.DUPLICATE  # a unit received already, whole or in part
    else:
        unit = int(unit_ids[0])
        if parts[0] == 1 or unit * 65536 + sub_index in state.slice_seen:
            return RejectReason.DUPLICATE
        if parts[0] not in (0, sub_count):
            return RejectReason.INCONSISTENT  # the unit was cut into another number of slices
    if pieces is not None and any(state.claimed[start:end].any() for start, end in pieces):
        return RejectReason.INCONSISTENT  # claims stream bytes another unit delivered
    return None


def _stream_pieces(spans: np.ndarray, sub_index: int, sub_count: int) -> list[tuple[int, int]] | None:
    """The stream byte ranges a (valid-span) datagram fills, in unit-id order, or None when
    they overlap."""
    if sub_count > 1:
        offset, length = spans[0].tolist()
        start, end = sub_unit_bounds(length, sub_index, sub_count)
        return [(offset + start, offset + end)]
    pieces = [(offset, offset + length) for offset, length in spans.tolist()]
    ordered = sorted(pieces)
    if any(ordered[i][1] > ordered[i + 1][0] for i in range(len(ordered) - 1)):
        return None
    return pieces


def _span_elements(stream_length: int, spans: np.ndarray, sub_index: int, sub_count: int) -> int | None:
    """Bytes a byte-stream datagram carries, or None when its spans are impossible."""
    offsets, lengths = spans[:, 0], spans[:, 1]
    if (lengths < 1).any() or (offsets + lengths > stream_length).any():
        return None
    if sub_count == 1:
        return int(lengths.sum())
    if sub_count > lengths[0]:
        return None
    start, end = sub_unit_bounds(int(lengths[0]), sub_index, sub_count)
    return end - start


def _complete_units(state: _FrameState) -> np.ndarray:
    """Which units of a byte stream arrived whole: all `length` bytes from `offset` claimed,
    counted with a prefix sum."""
    offsets, lengths = state.spans[:, 0], state.spans[:, 1]
    known = lengths > 0
    arrived = np.concatenate(([0], np.cumsum(state.claimed, dtype=np.int64)))
    ends = np.where(known, offsets + lengths, 0)
    starts = np.where(known, offsets, 0)
    return known & (arrived[ends] - arrived[starts] == lengths)


def _unpack_frame(state: _FrameState) -> tuple[np.ndarray, np.ndarray]:
    """Unit-order values and received mask of a frame, from its packed payloads.

    Each payload is padded to a whole number of 8-element groups, all are joined and unpacked
    at once, then scattered to their unit-order positions in one step.
    """
    header, partition = state.header, state.partition
    bit_width, offsets = header.bit_width, partition.unit_offsets
    group_bytes = bit_width  # 8 elements of bit_width bits
    pieces: list[bytes] = []
    positions: list[np.ndarray] = []
    counts: list[int] = []
    if state.whole:
        all_ids = np.concatenate([ids for ids, _ in state.whole]).astype(np.int64)
        sizes = offsets[all_ids + 1] - offsets[all_ids]
        ends = np.cumsum(sizes)
        # element j of unit u sits at offsets[u] + j
        positions.append(np.repeat(offsets[all_ids] - (ends - sizes), sizes) + np.arange(int(ends[-1])))
        ids_per_payload = np.array([ids.size for ids, _ in state.whole])
        counts = np.add.reduceat(sizes, np.cumsum(ids_per_payload) - ids_per_payload).tolist()
        for (_, payload), count in zip(state.whole, counts):
            pieces.append(payload.ljust(-(-count // 8) * group_bytes, b"\0"))
    if state.slices:
        starts, lengths = [], []
        for unit, sub_index, sub_count, payload in state.slices:
            start, end = sub_unit_bounds(int(offsets[unit + 1] - offsets[unit]), sub_index, sub_count)
            starts.append(int(offsets[unit]) + start)
            lengths.append(end - start)
            pieces.append(payload.ljust(-(-(end - start) // 8) * group_bytes, b"\0"))
        lengths_array = np.asarray(lengths, dtype=np.int64)
        ends = np.cumsum(lengths_array)
        positions.append(np.repeat(np.asarray(starts) - (ends - lengths_array), lengths_array) + np.arange(int(ends[-1])))
        counts += lengths
    counts_array = np.asarray(counts, dtype=np.int64)
    padded = -(-counts_array // 8) * 8
    unpacked = bitpack.unpack(b"".join(pieces), int(padded.sum()), bit_width, header.signed)
    if (padded != counts_array).any():
        # drop each payload's padding: element j of payload k sits at padded_start[k] + j
        skip = np.repeat(np.cumsum(padded) - padded - (np.cumsum(counts_array) - counts_array), counts_array)
        unpacked = unpacked[np.arange(int(counts_array.sum())) + skip]
    values = np.zeros(partition.size, dtype=bitpack.element_dtype(bit_width, header.signed))
    received = np.zeros(partition.size, dtype=bool)
    if positions:
        where = np.concatenate(positions)
        values[where] = unpacked
        received[where] = True
    return values, received
