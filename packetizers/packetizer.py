"""Latent (or byte stream) -> datagrams: partition into units, interleave, group under the MTU, pack.

Grouping is greedy over the (interleaved) unit order: units are added to the current
datagram while header + unit ids + packed payload + CRC fit the MTU. A unit that does not
fit an empty datagram on its own is split into `sub_count` sub-units along its element
order (see `partition.py`), one per datagram, balanced so their sizes differ by at most one
element. The grouping depends only on geometry, bit width, MTU and seed, so it is computed
once and cached; packetizing a frame is then one gather, one pack of the whole frame, and
per datagram a header, a slice and a CRC. A byte stream (`StreamFrame`, e.g. a JPEG) is
cut at the segments its encoder chose; its datagrams also carry each unit's span.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from packetizers import bitpack, engine
from packetizers.frames import LatentFrame, StreamFrame
from packetizers.interleave import unit_order
from packetizers.partition import DEFAULT_BLOCK, Partition, partition_for, segment_partition
from packetizers.wire import (
    CRC_SIZE,
    DEFAULT_MTU,
    FRAME_WIDE_STRUCT,
    HEADER_SIZE,
    MAGIC,
    MAX_DATAGRAM,
    PER_DATAGRAM_STRUCT,
    VERSION,
    Flags,
    Layout,
    MessageType,
    PartitionKind,
    unit_entry_size,
)

MAX_DATAGRAMS_PER_FRAME = 0xFFFF


@dataclass(frozen=True)
class DatagramPlan:
    """Which units (or which slice of one unit) each datagram of a frame carries.

    Each datagram's elements are laid out in `padded_gather` padded to a multiple of 8
    elements (padding points at one extra zero element), so packing the whole frame once
    leaves every datagram's payload starting on a byte boundary: datagram k's payload is
    packed[payload_start[k] : payload_start[k] + payload_len[k]].
    """

    unit_ids: tuple[bytes, ...]  # per datagram, ascending big-endian uint32 ids
    # per datagram, what follows its importance byte up to the payload: the rest of the
    # per-datagram header (index, slice, unit count, payload length), the unit ids and, for a
    # byte stream, the units' spans (the same for every frame of this plan)
    after_importance: tuple[bytes, ...]
    payload_start: tuple[int, ...]
    payload_len: tuple[int, ...]
    padded_gather: np.ndarray  # unit-order positions, datagram by datagram, padded
    # padded_gather as runs of consecutive positions: where each starts and how long it is
    gather_runs: tuple[np.ndarray, np.ndarray]
    importance: tuple[int, ...] = ()  # per datagram, its units' class (empty: the frame's)

    @property
    def datagram_count(self) -> int:
        return len(self.unit_ids)


def sub_unit_bounds(unit_size, sub_index, sub_count):
    """Element range [start, end) of sub-unit `sub_index` of `sub_count` within its unit (ints,
    or numpy arrays of them: elementwise)."""
    return unit_size * sub_index // sub_count, unit_size * (sub_index + 1) // sub_count


def padded_length(elements: int) -> int:
    """Elements after padding to the 8-element (whole-byte) boundary."""
    return -(-elements // 8) * 8


def min_mtu(bit_width: int, layout: Layout = Layout.CHW) -> int:
    """The smallest MTU that still carries one element with its header."""
    return HEADER_SIZE + unit_entry_size(layout) + bitpack.packed_size(1, bit_width) + CRC_SIZE


def build_plan(partition: Partition, bit_width: int, mtu: int, seed: int, interleave: bool,
               unit_class: tuple[int, ...] = ()) -> DatagramPlan:
    """`unit_class` (one importance class per unit, optional): units are sent most important
    class first (interleaved within a class) and a datagram never mixes classes."""
    sizes = partition.unit_sizes()
    offsets = partition.unit_offsets
    entry = unit_entry_size(partition.layout)

    def budget_bits(units: int) -> int:
        return (mtu - HEADER_SIZE - CRC_SIZE - entry * units) * 8

    max_sub_elements = budget_bits(1) // bit_width
    groups: list[tuple[list[int], int, int]] = []  # (unit ids, sub index, sub count)
    classes: list[int] = []
    current: list[int] = []
    current_elements = 0
    order = unit_order(partition.unit_count, seed, interleave)
    if unit_class:
        order = order[np.argsort(-np.asarray(unit_class)[order], kind="stable")]
    klass = lambda unit: unit_class[unit] if unit_class else 0  # noqa: E731
    for unit in order.tolist():
        size = int(sizes[unit])
        if current and klass(unit) != klass(current[0]):
            groups.append((sorted(current), 0, 1))
            classes.append(klass(current[0]))
            current, current_elements = [], 0
        if size * bit_width > budget_bits(1):
            sub_count = -(-size // max_sub_elements)
            groups.extend(([unit], sub, sub_count) for sub in range(sub_count))
            classes.extend([klass(unit)] * sub_count)
            continue
        if current and (current_elements + size) * bit_width > budget_bits(len(current) + 1):
            groups.append((sorted(current), 0, 1))
            classes.append(klass(current[0]))
            current, current_elements = [], 0
        current.append(unit)
        current_elements += size
    if current:
        groups.append((sorted(current), 0, 1))
        classes.append(klass(current[0]))
    if len(groups) > MAX_DATAGRAMS_PER_FRAME:
        raise ValueError(f"frame needs {len(groups)} datagrams, more than {MAX_DATAGRAMS_PER_FRAME}: raise --mtu")

    padding = partition.size  # index of the extra zero element
    pieces, starts, lengths = [], [], []
    padded_elements = 0
    for ids, sub, sub_count in groups:
        if sub_count > 1:
            start, end = sub_unit_bounds(int(sizes[ids[0]]), sub, sub_count)
            piece = np.arange(offsets[ids[0]] + start, offsets[ids[0]] + end)
        else:
            piece = np.concatenate([np.arange(offsets[u], offsets[u + 1]) for u in ids])
        pieces += [piece, np.full(padded_length(piece.size) - piece.size, padding)]
        starts.append(padded_elements * bit_width // 8)
        lengths.append(bitpack.packed_size(piece.size, bit_width))
        padded_elements += padded_length(piece.size)
    gather = np.concatenate(pieces).astype(np.int64) if pieces else np.zeros(0, dtype=np.int64)
    run_starts = np.flatnonzero(np.diff(gather, prepend=-2) != 1)
    spans = partition.layout == Layout.BYTES
    unit_ids = tuple(np.asarray(ids, dtype=">u4").tobytes() for ids, _, _ in groups)
    after_importance = tuple(
        PER_DATAGRAM_STRUCT.pack(0, 0, index, sub, count, len(ids), length)[1:] + id_bytes
        + (np.stack([offsets[ids], sizes[ids]], axis=1).astype(">u4").tobytes() if spans else b"")
        for index, ((ids, sub, count), length, id_bytes) in enumerate(zip(groups, lengths, unit_ids))
    )
    return DatagramPlan(
        unit_ids=unit_ids,
        after_importance=after_importance,
        payload_start=tuple(starts),
        payload_len=tuple(lengths),
        padded_gather=gather,
        gather_runs=(gather[run_starts], np.diff(run_starts, append=gather.size)),
        importance=tuple(classes) if unit_class else (),
    )


# Latent geometries repeat from frame to frame, so their plans are cached; a byte stream's
# segments are new every frame and are planned with `build_plan` directly.
plan_datagrams = lru_cache(maxsize=64)(build_plan)


class Packetizer:
    """Turns `LatentFrame`s into netsem datagrams; pure computation, no I/O.

    Deterministic: the same frame, options and seed give byte-identical datagrams.
    """

    def __init__(
        self,
        partition: PartitionKind = PartitionKind.CHANNEL,
        *,
        interleave: bool = True,
        seed: int = 0,
        mtu: int = DEFAULT_MTU,
        block: tuple[int, int] = DEFAULT_BLOCK,
    ) -> None:
        if not 0 <= seed <= 0xFFFFFFFF:
            raise ValueError(f"interleaving seed must fit 32 bits, got {seed}")
        if mtu > MAX_DATAGRAM:
            raise ValueError(f"--mtu {mtu} exceeds the largest UDP payload ({MAX_DATAGRAM} bytes)")
        self.partition_kind = PartitionKind(partition)
        self.interleave = interleave
        self.seed = seed
        self.mtu = mtu
        self.block = block

    def partition_of(self, frame: LatentFrame | StreamFrame) -> Partition:
        if isinstance(frame, StreamFrame):
            return segment_partition(frame.segment_offsets, len(frame.stream))
        if self.partition_kind == PartitionKind.SEGMENT:
            raise ValueError("the segment partition cuts byte streams (jpeg); a latent takes channel, token or spatial")
        return partition_for(frame.layout, frame.latent.shape, self.partition_kind, self.block, frame.token_grid)

    def plan(self, frame: LatentFrame | StreamFrame) -> DatagramPlan:
        stream = isinstance(frame, StreamFrame)
        bit_width, layout = (8, Layout.BYTES) if stream else (frame.bit_width, frame.layout)
        if self.mtu < min_mtu(bit_width, layout):
            raise ValueError(f"--mtu {self.mtu} is too small: a datagram needs at least {min_mtu(bit_width, layout)} bytes")
        if stream:
            return build_plan(self.partition_of(frame), bit_width, self.mtu, self.seed, self.interleave,
                              frame.segment_importance)
        return plan_datagrams(self.partition_of(frame), bit_width, self.mtu, self.seed, self.interleave)

    def packetize(self, frame: LatentFrame | StreamFrame, frame_id: int,
                  msg_type: MessageType = MessageType.DATA) -> list[bytes]:
        """The frame's datagrams. A byte stream is always cut at its own segments, whatever
        partition this packetizer was made for; `msg_type` marks what it is (a KB update
        travels as a byte stream of msg_type KB_UPDATE)."""
        partition = self.partition_of(frame)
        plan = self.plan(frame)
        if isinstance(frame, StreamFrame):
            elements = np.zeros(partition.size + 1, dtype=np.uint8)  # + the padding element
            elements[:-1] = np.frombuffer(frame.stream, dtype=np.uint8)
            bit_width, signed, scale, kind, layout = 8, False, 1.0, PartitionKind.SEGMENT, Layout.BYTES
            shape = (len(frame.stream), *frame.codec_params)
        else:
            bitpack.check_range(frame.latent, frame.bit_width, frame.signed)
            # in the latent's own integer type (one byte up to 8 bits: the gather moves less)
            elements = np.zeros(partition.size + 1, dtype=frame.latent.dtype)
            elements[:-1] = partition.to_units(frame.latent)
            bit_width, signed, scale, kind, layout = frame.bit_width, frame.signed, frame.scale, self.partition_kind, frame.layout
            shape = tuple(frame.latent.shape) + (0,) * (3 - frame.latent.ndim)
        if engine.compiled is None:
            packed = memoryview(bitpack.pack(elements[plan.padded_gather], bit_width))
        else:  # the gather and the packing in one compiled pass
            packed = memoryview(engine.compiled.pack_runs(elements, *plan.gather_runs, bit_width))
        flags = (Flags.INTERLEAVED if self.interleave else Flags.NONE) | (Flags.SIGNED if signed else Flags.NONE)
        frame_wide = FRAME_WIDE_STRUCT.pack(
            MAGIC, VERSION, int(msg_type), int(flags), int(kind), int(layout),
            bit_width, frame.stream_id, frame.kb_version, frame.codec_id,
            frame.image_size[0], frame.image_size[1], frame_id, shape[0], shape[1], shape[2],
            partition.grid[0], partition.grid[1], partition.block[0], partition.block[1],
            partition.unit_count, self.seed, float(scale), plan.datagram_count,
        )
        # per datagram: the frame-wide bytes (their CRC state computed once), its importance, the
        # plan's fixed bytes, its payload and the CRC-32 of all that
        wide_crc = zlib.crc32(frame_wide)
        importance = ([bytes((klass,)) for klass in plan.importance]
                      or [bytes((frame.importance,))] * plan.datagram_count)
        crc32, join = zlib.crc32, b"".join
        datagrams = []
        for klass, fixed, start, length in zip(importance, plan.after_importance, plan.payload_start,
                                               plan.payload_len):
            payload = packed[start : start + length]
            crc = crc32(payload, crc32(fixed, crc32(klass, wide_crc)))
            datagrams.append(join((frame_wide, klass, fixed, payload, crc.to_bytes(CRC_SIZE, "big"))))
        return datagrams
