"""Datagrams -> latent frames (or byte streams) with a received-mask; sans-I/O.

    reassembler.receive(datagram, now, source)  # never raises on peer input; the reject reason or None
    reassembler.receive_many(datagrams, now, source)  # the same for a batch: runs of one frame at once
    reassembler.poll(now) -> [Frame]     # frames complete, or whose deadline passed
    reassembler.next_deadline()          # when to call poll next (None: nothing pending)

Every check a peer can fail runs before any buffer is allocated: length, magic, version,
CRC, header sanity, frame and image size against the limits, unit ids, payload length,
duplicates. Each rejection is counted under a named reason. Memory is bounded: frames in
flight, bytes per frame and bytes in all frames are limits; when a new frame would exceed
them a frame is evicted (counted), never a crash.

A frame is identified by its sender's address (`source`, any hashable; None when unknown),
stream id and frame id, so one peer cannot add datagrams to another peer's frame. The work
a peer can cause is bounded by what it sent: nothing frame-sized is built while datagrams
arrive (a delivered frame unpacks its latent when first asked for it, on the consumer's
side), a frame of which less than `min_share` of its elements arrived is discarded at its
deadline instead of being delivered, and eviction takes from the source holding the most
frames, least-received first, so a burst of one-datagram frames cannot push out a frame
that is arriving.
"""

from __future__ import annotations

import enum
import math
import zlib
from collections import Counter, OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import numpy as np

from packetizers import bitpack, engine
from packetizers.packetizer import sub_unit_bounds
from packetizers.partition import PartitionError, build_partition, unit_count_for, unit_sizes_of
from packetizers.wire import (
    CRC_SIZE,
    FRAME_WIDE_SIZE,
    HEADER_SIZE,
    LAYOUT_OFFSET,
    MAGIC,
    PER_DATAGRAM_DTYPE,
    PER_DATAGRAM_STRUCT,
    UNIT_ID_SIZE,
    VERSION,
    Flags,
    Header,
    Layout,
    PartitionKind,
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
    TOO_LARGE = "too_large"  # frame exceeds max_frame_elements / max_frame_bytes / max_image_pixels
    UNIT_OUT_OF_RANGE = "unit_out_of_range"
    INCONSISTENT = "inconsistent"  # frame metadata differs from the frame's first datagram
    DUPLICATE = "duplicate"
    LATE = "late"  # its frame was already delivered or evicted
    RATE_LIMITED = "rate_limited"  # its source opened new frames faster than new_frames_per_second


@dataclass(frozen=True)
class ReassemblerLimits:
    max_frames_in_flight: int = 16
    max_frame_elements: int = 4 * 2**20
    max_frame_bytes: int = 32 * 2**20
    max_total_bytes: int = 48 * 2**20
    max_image_pixels: int = 4096 * 4096  # what a frame's header may claim: decoding costs per pixel
    frame_timeout: float = 0.5  # seconds of silence after a frame's latest datagram
    frame_deadline: float | None = None  # seconds after a frame's first datagram; later datagrams are late
    min_share: float = 0.0  # a frame with less of its elements received is discarded, not delivered
    new_frames_per_second: float | None = None  # per source (burst: as many); None: no limit
    remembered_frames: int = 4096  # delivered frame ids kept to reject late datagrams


class Delivery(str, enum.Enum):
    """Why a frame was handed over."""

    COMPLETE = "complete"  # every datagram arrived
    TIMEOUT = "timeout"  # frame_timeout of silence
    DEADLINE = "deadline"  # frame_deadline after its first datagram
    EVICTED = "evicted"  # pushed out by a newer frame (limits)
    FLUSHED = "flushed"  # the session ended


@dataclass(eq=False)
class Frame:
    """A reassembled (possibly partial) frame.

    A latent frame's values and masks are unpacked when first asked for, so the reassembler
    itself never builds anything frame-sized (a receiver asks from its decode worker)."""

    header: Header  # the first datagram's header: frame-wide fields are valid
    source: Hashable  # the sender's address as given to `receive` (None when unknown)
    datagrams_received: int
    first_arrival: float
    last_arrival: float
    share: float  # elements (or stream bytes) received / elements in the frame
    delivery: Delivery
    _state: _FrameState = field(repr=False)

    @property
    def complete(self) -> bool:
        return self.datagrams_received == self.header.datagram_count

    @property
    def datagrams_expected(self) -> int:
        return self.header.datagram_count

    @property
    def nbytes(self) -> int:
        """Memory the frame holds until it is unpacked (an upper bound, as the limits count it)."""
        return self._state.nbytes

    @property
    def spans(self) -> np.ndarray | None:
        """Bytes layout: (unit_count, 2) offset, length of each unit; -1 for units never seen."""
        return self._state.spans

    @cached_property
    def _unpacked(self) -> tuple[np.ndarray, np.ndarray]:
        state = self._state
        if state.stream is not None:
            return state.stream, state.claimed
        partition = build_partition(*_geometry(state.header))
        values, mask = _unpack_frame(state, partition.unit_offsets)
        return partition.from_units(values), partition.from_units(mask)

    @property
    def latent(self) -> np.ndarray:
        """Missing elements are 0; bytes layout: the uint8 stream."""
        return self._unpacked[0]

    @property
    def received(self) -> np.ndarray:
        """bool, latent-shaped."""
        return self._unpacked[1]

    @cached_property
    def unit_received(self) -> np.ndarray:
        """bool (unit_count,): every element of the unit arrived."""
        state = self._state
        if state.stream is not None:
            return _complete_units(state)
        whole = state.unit_parts == 1
        if state.slice_seen:
            units = np.fromiter(state.slice_seen, dtype=np.int64) // 65536
            slices = np.bincount(units, minlength=whole.size)
            whole |= (state.unit_parts > 1) & (slices == state.unit_parts)
        return whole

    @property
    def units_partial(self) -> int:
        """Units of which some, not all, elements arrived."""
        return int((self._state.unit_parts > 0).sum() - self.unit_received.sum())

    def segments(self) -> dict[int, bytes]:
        """Bytes layout: the completely received segments, by unit id."""
        if self.spans is None:
            raise ValueError("only a byte-stream frame has segments")
        segments = {}
        for unit in np.flatnonzero(self.unit_received).tolist():
            offset, length = self.spans[unit].tolist()
            segments[unit] = self.latent[offset : offset + length].tobytes()
        return segments


class _FrameState:
    """A frame being reassembled. A latent's payloads are kept packed until the frame's
    consumer asks for its values, when the whole frame is unpacked and scattered in a few
    vectorised steps; a byte stream's payloads are bytes already, written into the stream as
    they arrive."""

    __slots__ = ("key", "header", "header_bytes", "elements", "uniform_size", "spans", "stream", "claimed",
                 "unit_parts", "slice_seen", "seen", "whole_ids", "whole_id_counts", "whole_payloads", "slice_units",
                 "slice_index", "slice_count", "slice_payloads",
                 "count", "received_elements", "first", "last", "nbytes")

    def __init__(self, key: tuple, header: Header, header_bytes: bytes, elements: int, uniform_size: int,
                 nbytes: int, now: float) -> None:
        self.key = key  # (source, stream id, frame id)
        self.header = header
        self.header_bytes = header_bytes  # the frame-wide header bytes it is found by
        self.elements = elements  # latent elements, or stream bytes
        self.uniform_size = uniform_size  # every unit's element count; 0 when they differ or for a stream
        stream = header.layout == Layout.BYTES
        self.spans = np.full((header.unit_count, 2), -1, dtype=np.int64) if stream else None
        self.stream = np.zeros(header.dim0, dtype=np.uint8) if stream else None
        self.claimed = np.zeros(header.dim0, dtype=bool) if stream else None  # stream bytes received
        # how each unit arrives: 0 not yet, 1 whole, n > 1 as slices of n (one count per unit,
        # each slice once: no data is stored twice, so a frame holds at most its own size)
        self.unit_parts = np.zeros(header.unit_count, dtype=np.uint16)
        self.slice_seen: set[int] = set()  # unit * 65536 + sub index
        self.seen = np.zeros(header.datagram_count, dtype=bool)
        # payloads of whole units, with their unit ids: the ids of one or more payloads per
        # array (a batch adds one array), and how many ids each payload has
        self.whole_ids: list[np.ndarray] = []
        self.whole_id_counts: list[int] = []
        self.whole_payloads: list[bytes] = []
        # payloads of slices, and each one's unit, sub index and sub count
        self.slice_units: list[int] = []
        self.slice_index: list[int] = []
        self.slice_count: list[int] = []
        self.slice_payloads: list[bytes] = []
        self.count = 0
        self.received_elements = 0
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
    """`message_type`: the one message type this reassembler takes (data frames by default; a
    knowledge-base update receiver makes its own with MessageType.KB_UPDATE); others are
    rejected as unsupported_type."""

    def __init__(self, limits: ReassemblerLimits = ReassemblerLimits(), message_type: int = 0) -> None:
        self.limits = limits
        self.message_type = message_type
        self.rejected: Counter[str] = Counter()
        self.datagrams_accepted = 0
        self.frames_completed = 0
        self.frames_timed_out = 0
        self.frames_evicted = 0
        self.frames_discarded = 0  # less than min_share arrived: not delivered
        self._frames: OrderedDict[tuple, _FrameState] = OrderedDict()  # oldest first
        self._by_header: dict[tuple[Hashable, bytes], _FrameState] = {}  # (source, frame-wide header bytes)
        self._delivered: OrderedDict[tuple, None] = OrderedDict()  # (source, stream id, frame id)
        # Answers that need no parsing, so a flood of repeats costs a dict lookup each: the
        # frame-wide bytes of closed frames (late), and of headers rejected on those bytes alone.
        self._closed_headers: OrderedDict[tuple[Hashable, bytes], None] = OrderedDict()
        self._bad_headers: dict[bytes, RejectReason] = {}
        self._held: Counter[Hashable] = Counter()  # frames in flight per source
        self._new_frame_budget: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()  # source: (tokens, time)
        self._ready: list[Frame] = []
        self._total_bytes = 0

    # ---------------------------------------------------------------- input
    def receive(self, datagram: bytes, now: float, source: Hashable = None) -> RejectReason | None:
        reason = self._receive(datagram, now, source)
        if reason is not None:
            self.rejected[reason.value] += 1
        return reason

    def _receive(self, datagram: bytes, now: float, source: Hashable) -> RejectReason | None:
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
        wide = datagram[:FRAME_WIDE_SIZE]
        state = self._by_header.get((source, wide))
        if state is None:
            if (source, wide) in self._closed_headers:
                return RejectReason.LATE
            reason = self._bad_headers.get(wide)
            if reason is not None:
                return reason
            header = peek_header(datagram)
            reason = self._check_new_frame(header, source)
            if reason is not None:
                if reason in _HEADER_ONLY_REASONS:
                    if len(self._bad_headers) >= self.limits.remembered_frames:
                        self._bad_headers.clear()
                    self._bad_headers[wide] = reason
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
            elements = _element_count(header, state, unit_ids, sub_index, sub_count)
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
            if not self._may_open_frame(source, now):
                return RejectReason.RATE_LIMITED
            state = self._open_frame(source, wide, header, now)
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
                state.whole_ids.append(unit_ids.copy())  # a copy: the datagram itself is not kept
                state.whole_id_counts.append(id_count)
                state.whole_payloads.append(payload)
        else:
            state.unit_parts[unit_ids[0]] = sub_count
            state.slice_seen.add(int(unit_ids[0]) * 65536 + sub_index)
            if spans is None:
                state.slice_units.append(int(unit_ids[0]))
                state.slice_index.append(sub_index)
                state.slice_count.append(sub_count)
                state.slice_payloads.append(payload)
        state.seen[index] = True
        state.count += 1
        state.received_elements += elements
        state.last = now
        self.datagrams_accepted += 1
        if state.count == header.datagram_count:
            self._deliver(state, Delivery.COMPLETE)
        return None

    def receive_many(self, datagrams: Sequence[bytes], now: float,
                     source: Hashable = None) -> list[RejectReason | None]:
        """`receive` of each datagram in turn, all from `source`: the same answers, counts and
        frames.  A run of datagrams of a latent frame already open (the usual burst of one
        frame) is checked with numpy over the whole run and taken in one step when every
        datagram passes every check `receive` makes; otherwise, and for everything else,
        each datagram goes through `receive`."""
        reasons: list[RejectReason | None] = []
        at, total = 0, len(datagrams)
        while at < total:
            wide = datagrams[at][:FRAME_WIDE_SIZE]
            state = self._by_header.get((source, wide))
            end = at + 1
            if state is not None and state.stream is None:
                while end < total and datagrams[end][:FRAME_WIDE_SIZE] == wide:
                    end += 1
            if end - at > 1 and _take_run(self, state, datagrams[at:end], now):
                reasons += [None] * (end - at)
            else:
                reasons += [self.receive(datagram, now, source) for datagram in datagrams[at:end]]
            at = end
        return reasons

    def _check_new_frame(self, header: Header, source: Hashable) -> RejectReason | None:
        """Checks on the frame-wide fields, run once per frame (its first datagram)."""
        key = (source, header.stream_id, header.frame_id)
        if key in self._delivered:
            return RejectReason.LATE
        if key in self._frames:
            return RejectReason.INCONSISTENT  # same frame, different frame-wide header
        if header.msg_type != self.message_type:
            return RejectReason.UNSUPPORTED_TYPE
        if header.image_height * header.image_width > self.limits.max_image_pixels:
            return RejectReason.TOO_LARGE
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
            count = unit_count_for(*_geometry(header))
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

    # ---------------------------------------------------------------- frames
    def _open_frame(self, source: Hashable, header_bytes: bytes, header: Header, now: float) -> _FrameState:
        if header.layout == Layout.BYTES:
            elements, uniform = header.dim0, 0
        else:
            elements = math.prod(header.shape)
            uniform = _uniform_unit_size(header, elements)
        nbytes = frame_nbytes(header, elements)
        while self._frames and (
            len(self._frames) >= self.limits.max_frames_in_flight
            or self._total_bytes + nbytes > self.limits.max_total_bytes
        ):
            self.frames_evicted += 1
            self._deliver(self._eviction_victim(), Delivery.EVICTED)
        key = (source, header.stream_id, header.frame_id)
        state = _FrameState(key, header, header_bytes, elements, uniform, nbytes, now)
        self._frames[key] = state
        self._by_header[(source, header_bytes)] = state
        self._held[source] += 1
        self._total_bytes += nbytes
        return state

    def _may_open_frame(self, source: Hashable, now: float) -> bool:
        """Token bucket per source: `new_frames_per_second`, as many in a burst."""
        rate = self.limits.new_frames_per_second
        if rate is None:
            return True
        tokens, then = self._new_frame_budget.pop(source, (rate, now))
        tokens = min(rate, tokens + (now - then) * rate)
        self._new_frame_budget[source] = (tokens - 1, now) if tokens >= 1 else (tokens, now)
        if len(self._new_frame_budget) > self.limits.remembered_frames:
            self._new_frame_budget.popitem(last=False)
        return tokens >= 1

    def _eviction_victim(self) -> _FrameState:
        """The frame to push out: from the source holding the most frames, the one with the
        fewest datagrams received, the oldest of those."""
        most = max(self._held.values())
        victim = None
        for (source, _, _), state in self._frames.items():  # oldest first: the first of equals wins
            if self._held[source] == most and (victim is None or state.count < victim.count):
                victim = state
        return victim

    def _close(self, state: _FrameState) -> None:
        source = state.key[0]
        del self._frames[state.key]
        del self._by_header[(source, state.header_bytes)]
        self._held[source] -= 1
        if not self._held[source]:
            del self._held[source]
        self._total_bytes -= state.nbytes
        for remembered, key in ((self._delivered, state.key), (self._closed_headers, (source, state.header_bytes))):
            remembered[key] = None
            if len(remembered) > self.limits.remembered_frames:
                remembered.popitem(last=False)

    def _deliver(self, state: _FrameState, delivery: Delivery) -> None:
        self._close(state)
        share = state.received_elements / state.elements
        if delivery is not Delivery.COMPLETE and share < self.limits.min_share:
            self.frames_discarded += 1
            return
        if delivery is Delivery.COMPLETE:
            self.frames_completed += 1
        elif delivery in (Delivery.TIMEOUT, Delivery.DEADLINE, Delivery.FLUSHED):
            self.frames_timed_out += 1
        self._ready.append(Frame(state.header, state.key[0], state.count, state.first, state.last, share, delivery,
                                 state))

    # ---------------------------------------------------------------- time
    def _due(self, state: _FrameState) -> tuple[float, Delivery]:
        """When a pending frame is delivered at the latest, and why."""
        timeout = state.last + self.limits.frame_timeout
        deadline = self.limits.frame_deadline
        if deadline is not None and state.first + deadline <= timeout:
            return state.first + deadline, Delivery.DEADLINE
        return timeout, Delivery.TIMEOUT

    def poll(self, now: float) -> list[Frame]:
        """Frames completed since the last poll, then frames whose deadline has passed."""
        for state in list(self._frames.values()):
            due, why = self._due(state)
            if due <= now:
                self._deliver(state, why)
        ready, self._ready = self._ready, []
        return ready

    def next_deadline(self) -> float | None:
        if self._ready:  # delivered already: poll now
            return min(frame.last_arrival for frame in self._ready)
        if not self._frames:
            return None
        return min(self._due(state)[0] for state in self._frames.values())

    def flush(self) -> list[Frame]:
        """Deliver every pending frame now, complete or not (end of a session)."""
        for state in list(self._frames.values()):
            self._deliver(state, Delivery.FLUSHED)
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
            "frames_discarded": self.frames_discarded,
            "frames_in_flight": self.frames_in_flight,
            "bytes_in_flight": self.bytes_in_flight,
        }


class _Run(NamedTuple):
    """A run of datagrams that passed every check, as the frame takes it."""

    index: np.ndarray  # per datagram: its datagram_index
    id_count: np.ndarray  # per datagram: how many unit ids it carries
    sliced: np.ndarray  # per datagram: it carries a slice of one unit
    elements: int  # elements the run carries
    whole_ids: np.ndarray  # the ids of the datagrams carrying whole units, in run order
    slice_units: np.ndarray  # per sliced datagram, in run order: its unit, sub index and sub count
    slice_index: np.ndarray
    slice_count: np.ndarray

    @property
    def slice_keys(self) -> np.ndarray:
        return self.slice_units * 65536 + self.slice_index


def _take_run(reassembler: Reassembler, state: _FrameState, run: Sequence[bytes], now: float) -> bool:
    """Take a run of datagrams whose frame-wide bytes are those of `state`'s open latent frame,
    if each would be accepted by `receive` in turn: every check of `_receive`, over the run
    at once, including repeats within the run.  False, having changed nothing, when any
    datagram fails one (`receive` then says which and why)."""
    header = state.header
    lengths = np.fromiter(map(len, run), dtype=np.int64, count=len(run))
    if not state.uniform_size or lengths.min() < HEADER_SIZE + CRC_SIZE:
        return False
    crc32 = zlib.crc32
    computed = np.array([crc32(d[:-CRC_SIZE]) for d in run], dtype=np.uint32)
    if (computed != np.frombuffer(b"".join([d[-CRC_SIZE:] for d in run]), dtype=">u4")).any():
        return False
    if engine.compiled is not None:
        checked = engine.compiled.check_run(b"".join(run), lengths, header.datagram_count, header.unit_count,
                                            state.uniform_size, header.bit_width, state.seen, state.unit_parts)
        checked = None if checked is None else _Run(*checked)
    else:
        checked = _check_run(state, run, lengths)
    if checked is None or (checked.slice_units.size and not state.slice_seen.isdisjoint(checked.slice_keys.tolist())):
        return False
    # every check passed: take the run as `receive` would, datagram by datagram
    table_ends = (HEADER_SIZE + UNIT_ID_SIZE * checked.id_count).tolist()
    payloads = [d[end:-CRC_SIZE] for d, end in zip(run, table_ends)]
    sliced = checked.sliced.tolist()
    if checked.whole_ids.size:
        state.unit_parts[checked.whole_ids] = 1
        state.whole_ids.append(checked.whole_ids)
        state.whole_id_counts += checked.id_count[~checked.sliced].tolist()
        state.whole_payloads += [p for p, s in zip(payloads, sliced) if not s]
    if checked.slice_units.size:
        state.unit_parts[checked.slice_units] = checked.slice_count
        state.slice_seen.update(checked.slice_keys.tolist())
        state.slice_units += checked.slice_units.tolist()
        state.slice_index += checked.slice_index.tolist()
        state.slice_count += checked.slice_count.tolist()
        state.slice_payloads += [p for p, s in zip(payloads, sliced) if s]
    state.seen[checked.index] = True
    state.count += len(run)
    state.received_elements += checked.elements
    state.last = now
    reassembler.datagrams_accepted += len(run)
    if state.count == header.datagram_count:
        reassembler._deliver(state, Delivery.COMPLETE)
    return True


def _check_run(state: _FrameState, run: Sequence[bytes], lengths: np.ndarray) -> _Run | None:
    """`_take_run`'s checks after the CRCs, with numpy over the run (the compiled engine's
    `kernels.check_run` makes the same in one pass); None when any datagram fails one."""
    header = state.header
    count = len(run)
    tails = np.frombuffer(b"".join([d[FRAME_WIDE_SIZE:HEADER_SIZE] for d in run]), dtype=PER_DATAGRAM_DTYPE)
    index = tails["datagram_index"].astype(np.int64)
    sub_index = tails["sub_index"].astype(np.int64)
    sub_count = tails["sub_count"].astype(np.int64)
    id_count = tails["unit_count_here"].astype(np.int64)
    payload_len = tails["payload_len"].astype(np.int64)
    if (
        (lengths != HEADER_SIZE + UNIT_ID_SIZE * id_count + payload_len + CRC_SIZE).any()
        or (index >= header.datagram_count).any()
        or tails["reserved"].any()
        or (id_count == 0).any()
        or (sub_count == 0).any()
        or (sub_index >= sub_count).any()
        or ((sub_count > 1) & (id_count != 1)).any()
        or (id_count > header.unit_count).any()
    ):
        return None
    table_ends = (HEADER_SIZE + UNIT_ID_SIZE * id_count).tolist()
    ids = np.frombuffer(b"".join([d[HEADER_SIZE:end] for d, end in zip(run, table_ends)]), dtype=">u4")
    ids = ids.astype(np.int64)
    owner = np.repeat(np.arange(count), id_count)
    if ids.max() >= header.unit_count:
        return None
    same_datagram = owner[1:] == owner[:-1]
    if (same_datagram & (ids[1:] <= ids[:-1])).any():
        return None  # ids within a datagram are strictly ascending
    size = state.uniform_size
    sliced = sub_count > 1
    first, last = sub_unit_bounds(size, sub_index, sub_count)
    elements = np.where(sliced, last - first, size * id_count)
    if (sliced & (sub_count > size)).any():
        return None
    if (payload_len != (elements * header.bit_width + 7) // 8).any():
        return None
    # repeats: of what the frame holds, and within the run
    if state.seen[index].any() or np.bincount(index).max() > 1:
        return None
    whole_ids = ids[~sliced[owner]]
    slice_units = ids[sliced[owner]]
    slice_keys = slice_units * 65536 + sub_index[sliced]
    if state.unit_parts[whole_ids].any():
        return None
    # a unit at most once whole, never both whole and sliced, each slice once
    uses = np.bincount(whole_ids, minlength=header.unit_count)
    if (whole_ids.size and uses.max() > 1) or (slice_units.size and uses[slice_units].any()):
        return None
    parts = state.unit_parts[slice_units]
    if ((parts != 0) & (parts != sub_count[sliced])).any():
        return None
    if slice_keys.size:
        order = np.argsort(slice_keys, kind="stable")
        keys, units, cuts = slice_keys[order], slice_units[order], sub_count[sliced][order]
        # sorted by (unit, slice): a repeated key, or one unit cut into two numbers of slices
        if (keys[1:] == keys[:-1]).any() or ((units[1:] == units[:-1]) & (cuts[1:] != cuts[:-1])).any():
            return None
    return _Run(index, id_count, sliced, int(elements.sum()), whole_ids, slice_units, sub_index[sliced],
                sub_count[sliced])


# Rejections decided by a new frame's frame-wide bytes alone (not by what the receiver holds).
_HEADER_ONLY_REASONS = frozenset({RejectReason.BAD_HEADER, RejectReason.TOO_LARGE, RejectReason.UNSUPPORTED_TYPE})


def _geometry(header: Header) -> tuple:
    return (
        Layout(header.layout), header.shape, PartitionKind(header.partition),
        (header.block_h, header.block_w) if header.partition == PartitionKind.SPATIAL else (0, 0),
        (header.grid_h, header.grid_w) if header.layout == Layout.ND else (0, 0),
    )


def _uniform_unit_size(header: Header, elements: int) -> int:
    """Every unit's element count, or 0 when spatial edge blocks are smaller (arithmetic only)."""
    if header.partition == PartitionKind.SPATIAL:
        map_h, map_w = (header.dim1, header.dim2) if header.layout == Layout.CHW else (header.grid_h, header.grid_w)
        if map_h % header.block_h or map_w % header.block_w:
            return 0
    return elements // header.unit_count


def _element_count(header: Header, state: _FrameState | None, unit_ids: np.ndarray, sub_index: int,
                   sub_count: int) -> int | None:
    """Elements a latent datagram carries, or None for an impossible sub-unit (arithmetic only)."""
    if state is not None and state.uniform_size:
        size = state.uniform_size
        if sub_count == 1:
            return size * unit_ids.size
    else:
        sizes = unit_sizes_of(*_geometry(header), unit_ids)
        if sub_count == 1:
            return int(sizes.sum())
        size = int(sizes[0])
    if sub_count > size:
        return None
    start, end = sub_unit_bounds(size, sub_index, sub_count)
    return end - start


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


# Up to this many runs (units or slices received), a frame whose runs all start and end on
# whole bytes is unpacked in place: its payloads are put in unit order with zero bytes for the
# gaps and unpacked once, already where they belong.  Otherwise every element's position is
# computed and the values scattered.  Channel partition, 96 slices of 768 elements: 0.24 -> 0.1 ms.
_RUNS_UNPACKED_IN_PLACE = 256


def _unpack_frame(state: _FrameState, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit-order values and received mask of a frame, from its packed payloads.

    Each payload fills one or more runs of consecutive unit-order positions (a unit, or a
    slice of one)."""
    header = state.header
    bit_width, size = header.bit_width, int(offsets[-1])
    payloads = state.whole_payloads + state.slice_payloads
    run_starts, run_lengths = [], []
    if state.whole_payloads:
        all_ids = np.concatenate(state.whole_ids).astype(np.int64)
        run_starts.append(offsets[all_ids])
        run_lengths.append(offsets[all_ids + 1] - offsets[all_ids])
    if state.slice_payloads:
        units = np.array(state.slice_units, dtype=np.int64)
        first, last = sub_unit_bounds(offsets[units + 1] - offsets[units], np.array(state.slice_index, dtype=np.int64),
                                      np.array(state.slice_count, dtype=np.int64))
        run_starts.append(offsets[units] + first)
        run_lengths.append(last - first)
    dtype = bitpack.element_dtype(bit_width, header.signed)
    if not payloads:
        return np.zeros(size, dtype=dtype), np.zeros(size, dtype=bool)
    starts, lengths = np.concatenate(run_starts), np.concatenate(run_lengths)
    runs_per_payload = np.concatenate([np.array(state.whole_id_counts, dtype=np.int64),
                                       np.ones(len(state.slice_payloads), dtype=np.int64)])
    if engine.compiled is not None:  # each run unpacked straight into place
        return engine.compiled.unpack_runs(payloads, runs_per_payload, starts, lengths, bit_width, header.signed, size)
    payload_of_run = np.repeat(np.arange(len(payloads)), runs_per_payload)
    ends = np.cumsum(lengths)
    # where each run starts among its payload's elements
    within = (ends - lengths) - (ends - lengths)[np.cumsum(runs_per_payload) - runs_per_payload][payload_of_run]
    if starts.size <= _RUNS_UNPACKED_IN_PLACE and not ((starts * bit_width) % 8).any() and not (
            ((starts + lengths) * bit_width % 8).astype(bool) & (starts + lengths != size)).any():
        return _unpack_in_place(payloads, starts, lengths, payload_of_run, within, size, header)
    # the general way: payloads padded to whole 8-element groups, unpacked at once, scattered
    counts = np.bincount(payload_of_run, weights=lengths, minlength=len(payloads)).astype(np.int64)
    padded = -(-counts // 8) * 8
    unpacked = bitpack.unpack(b"".join(p.ljust(n * bit_width // 8, b"\0") for p, n in zip(payloads, padded.tolist())),
                              int(padded.sum()), bit_width, header.signed)
    sources = (np.cumsum(padded) - padded)[payload_of_run] + within
    taken = np.repeat(sources - (ends - lengths), lengths) + np.arange(int(ends[-1]))
    where = np.repeat(starts - sources, lengths) + taken
    values, received = np.zeros(size, dtype=dtype), np.zeros(size, dtype=bool)
    values[where] = unpacked[taken]
    received[where] = True
    return values, received


def _unpack_in_place(payloads: list[bytes], starts: np.ndarray, lengths: np.ndarray, payload_of_run: np.ndarray,
                     within: np.ndarray, size: int, header: Header) -> tuple[np.ndarray, np.ndarray]:
    """Values and mask from runs that start and end on whole bytes: each run's bytes cut from
    its payload, laid out in unit order with zero bytes for what is missing, unpacked once."""
    bits = header.bit_width
    order = np.argsort(starts)
    pieces, spans, received, at = [], [], [], 0
    for start, length, payload, offset in zip(starts[order].tolist(), lengths[order].tolist(),
                                              payload_of_run[order].tolist(), within[order].tolist()):
        if start > at:
            pieces.append(bytes((start - at) * bits // 8))
            spans.append(start - at)
            received.append(False)
        first = offset * bits // 8
        pieces.append(payloads[payload][first : first + (length * bits + 7) // 8])
        spans.append(length)
        received.append(True)
        at = start + length
    if at < size:
        spans.append(size - at)
        received.append(False)
    packed = b"".join(pieces).ljust(bitpack.packed_size(size, bits), b"\0")
    return bitpack.unpack(packed, size, bits, header.signed), np.repeat(received, spans)
