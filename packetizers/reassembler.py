"""Datagrams -> latent frames with a received-mask; sans-I/O.

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
from collections import Counter, OrderedDict
from dataclasses import dataclass

import numpy as np

from packetizers import bitpack
from packetizers.packetizer import UNIT_ID_SIZE, sub_unit_bounds
from packetizers.partition import Partition, PartitionError, build_partition, unit_count_for
from packetizers.wire import (
    CRC_SIZE,
    HEADER_SIZE,
    MAGIC,
    VERSION,
    Flags,
    Header,
    Layout,
    MessageType,
    PartitionKind,
    crc_ok,
    peek_header,
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
    latent: np.ndarray  # missing elements are 0
    received: np.ndarray  # bool, latent-shaped
    unit_received: np.ndarray  # bool (unit_count,): every element of the unit arrived
    datagrams_received: int
    first_arrival: float
    last_arrival: float

    @property
    def datagrams_expected(self) -> int:
        return self.header.datagram_count

    @property
    def complete(self) -> bool:
        return self.datagrams_received == self.header.datagram_count


class _FrameState:
    __slots__ = ("header", "frame_key", "partition", "values", "received", "seen", "count", "first", "last", "nbytes")

    def __init__(self, header: Header, partition: Partition, nbytes: int, now: float) -> None:
        self.header = header
        self.frame_key = header.frame_key()
        self.partition = partition
        self.values = np.zeros(partition.size, dtype=bitpack.element_dtype(header.bit_width, header.signed))
        self.received = np.zeros(partition.size, dtype=bool)
        self.seen = np.zeros(header.datagram_count, dtype=bool)
        self.count = 0
        self.first = self.last = now
        self.nbytes = nbytes


def frame_nbytes(header: Header, elements: int) -> int:
    """Memory a frame will hold: values + mask + partition indices + datagram bitmap."""
    itemsize = 1 if header.bit_width <= 8 else 2
    index_bytes = 4 * elements if header.partition == PartitionKind.SPATIAL else 0
    return elements * (itemsize + 1) + index_bytes + 8 * (header.unit_count + 1) + header.datagram_count


class Reassembler:
    def __init__(self, limits: ReassemblerLimits = ReassemblerLimits()) -> None:
        self.limits = limits
        self.rejected: Counter[str] = Counter()
        self.datagrams_accepted = 0
        self.frames_completed = 0
        self.frames_timed_out = 0
        self.frames_evicted = 0
        self._frames: OrderedDict[tuple[int, int], _FrameState] = OrderedDict()
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
        if len(datagram) < HEADER_SIZE + CRC_SIZE:
            return RejectReason.BAD_MAGIC if datagram[:4] != MAGIC[: len(datagram[:4])] else RejectReason.TRUNCATED
        header = peek_header(datagram)
        if header is None:
            return RejectReason.BAD_MAGIC
        if header.version != VERSION:
            return RejectReason.BAD_VERSION
        declared = HEADER_SIZE + UNIT_ID_SIZE * header.unit_count_here + header.payload_len + CRC_SIZE
        if not crc_ok(datagram):
            return RejectReason.TRUNCATED if len(datagram) < declared else RejectReason.BAD_CRC
        if header.msg_type != MessageType.DATA:
            return RejectReason.UNSUPPORTED_TYPE
        if len(datagram) != declared:
            return RejectReason.TRUNCATED if len(datagram) < declared else RejectReason.BAD_LENGTH
        reason = self._check_header(header)
        if reason is not None:
            return reason
        key = (header.stream_id, header.frame_id)
        if key in self._delivered:
            return RejectReason.LATE
        state = self._frames.get(key)
        if state is not None and state.frame_key != header.frame_key():
            return RejectReason.INCONSISTENT
        unit_ids = np.frombuffer(datagram, dtype=">u4", count=header.unit_count_here, offset=HEADER_SIZE)
        if int(unit_ids.max()) >= header.unit_count:
            return RejectReason.UNIT_OUT_OF_RANGE
        if unit_ids.size > 1 and np.unique(unit_ids).size != unit_ids.size:
            return RejectReason.BAD_HEADER
        if state is None:
            reason = self._check_frame_size(header)
            if reason is not None:
                return reason
            partition = self._partition(header)
        else:
            partition = state.partition
        positions = self._positions(partition, header, unit_ids)
        if positions is None:
            return RejectReason.BAD_HEADER
        if bitpack.packed_size(positions.size, header.bit_width) != header.payload_len:
            return RejectReason.BAD_LENGTH
        if state is not None and (state.seen[header.datagram_index] or state.received[positions].any()):
            return RejectReason.DUPLICATE
        if state is None:
            state = self._open_frame(key, header, partition, now)
        payload = memoryview(datagram)[HEADER_SIZE + UNIT_ID_SIZE * header.unit_count_here : -CRC_SIZE]
        state.values[positions] = bitpack.unpack(payload, positions.size, header.bit_width, header.signed)
        state.received[positions] = True
        state.seen[header.datagram_index] = True
        state.count += 1
        state.last = now
        self.datagrams_accepted += 1
        if state.count == header.datagram_count:
            self._deliver(key, timed_out=False)
        return None

    def _check_header(self, header: Header) -> RejectReason | None:
        if (
            header.layout not in (Layout.CHW, Layout.ND)
            or header.partition not in (PartitionKind.CHANNEL, PartitionKind.TOKEN, PartitionKind.SPATIAL)
            or not 1 <= header.bit_width <= bitpack.MAX_BIT_WIDTH
            or header.flags & ~int(Flags.INTERLEAVED | Flags.SIGNED)
            or header.datagram_index >= header.datagram_count
            or header.unit_count_here == 0
            or header.sub_count == 0
            or header.sub_index >= header.sub_count
            or (header.sub_count > 1 and header.unit_count_here != 1)
            or header.unit_count_here > header.unit_count
        ):
            return RejectReason.BAD_HEADER
        shape = header.shape
        if header.layout == Layout.ND and header.dim2 != 0:
            return RejectReason.BAD_HEADER
        elements = 1
        for dim in shape:
            elements *= dim
        if elements > self.limits.max_frame_elements:
            return RejectReason.TOO_LARGE
        try:
            count = unit_count_for(
                Layout(header.layout), shape, PartitionKind(header.partition),
                (header.block_h, header.block_w), (header.grid_h, header.grid_w),
            )
        except PartitionError:
            return RejectReason.BAD_HEADER
        if count != header.unit_count:
            return RejectReason.BAD_HEADER
        return None

    def _check_frame_size(self, header: Header) -> RejectReason | None:
        elements = 1
        for dim in header.shape:
            elements *= dim
        if frame_nbytes(header, elements) > self.limits.max_frame_bytes:
            return RejectReason.TOO_LARGE
        return None

    def _partition(self, header: Header) -> Partition:
        for state in self._frames.values():  # frames of one stream share their geometry
            partition = state.partition
            if (partition.layout, partition.shape, partition.kind, partition.block, partition.grid) == (
                header.layout, header.shape, header.partition,
                (header.block_h, header.block_w) if header.partition == PartitionKind.SPATIAL else (0, 0),
                (header.grid_h, header.grid_w) if header.layout == Layout.ND else (0, 0),
            ):
                return partition
        return build_partition(
            Layout(header.layout), header.shape, PartitionKind(header.partition),
            (header.block_h, header.block_w), (header.grid_h, header.grid_w),
        )

    @staticmethod
    def _positions(partition: Partition, header: Header, unit_ids: np.ndarray) -> np.ndarray | None:
        """Unit-order positions of this datagram's elements, or None if the sub-unit is impossible."""
        offsets = partition.unit_offsets
        if header.sub_count > 1:
            unit = int(unit_ids[0])
            size = int(offsets[unit + 1] - offsets[unit])
            if header.sub_count > size:
                return None
            start, end = sub_unit_bounds(size, header.sub_index, header.sub_count)
            return np.arange(offsets[unit] + start, offsets[unit] + end)
        ids = unit_ids.astype(np.int64)
        if partition.uniform_unit_size:
            return (offsets[ids][:, None] + np.arange(partition.uniform_unit_size)).reshape(-1)
        return np.concatenate([np.arange(offsets[u], offsets[u + 1]) for u in ids.tolist()])

    # ---------------------------------------------------------------- frames
    def _open_frame(self, key: tuple[int, int], header: Header, partition: Partition, now: float) -> _FrameState:
        elements = partition.size
        nbytes = frame_nbytes(header, elements)
        while self._frames and (
            len(self._frames) >= self.limits.max_frames_in_flight
            or self._total_bytes + nbytes > self.limits.max_total_bytes
        ):
            oldest = next(iter(self._frames))
            self._drop(oldest)
            self.frames_evicted += 1
        state = _FrameState(header, partition, nbytes, now)
        self._frames[key] = state
        self._total_bytes += nbytes
        return state

    def _drop(self, key: tuple[int, int]) -> _FrameState:
        state = self._frames.pop(key)
        self._total_bytes -= state.nbytes
        self._delivered[key] = None
        while len(self._delivered) > self.limits.remembered_frames:
            self._delivered.popitem(last=False)
        return state

    def _deliver(self, key: tuple[int, int], *, timed_out: bool) -> None:
        state = self._drop(key)
        partition = state.partition
        unit_received = np.logical_and.reduceat(state.received, partition.unit_offsets[:-1])
        self._ready.append(
            Frame(
                header=state.header,
                latent=partition.from_units(state.values),
                received=partition.from_units(state.received),
                unit_received=unit_received,
                datagrams_received=state.count,
                first_arrival=state.first,
                last_arrival=state.last,
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
