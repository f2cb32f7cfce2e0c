"""Latent -> datagrams: partition into units, interleave, group under the MTU, pack.

Grouping is greedy over the (interleaved) unit order: units are added to the current
datagram while header + unit ids + packed payload + CRC fit the MTU. A unit that does not
fit an empty datagram on its own is split into `sub_count` sub-units along its element
order (see `partition.py`), one per datagram, balanced so their sizes differ by at most one
element. The grouping depends only on geometry, bit width, MTU and seed, so it is computed
once and cached; packetizing a frame is then one gather plus one pack per datagram.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from packetizers import bitpack
from packetizers.interleave import unit_order
from packetizers.partition import DEFAULT_BLOCK, Partition, partition_for
from packetizers.wire import (
    CRC_SIZE,
    DEFAULT_MTU,
    HEADER_SIZE,
    MAX_DATAGRAM,
    VERSION,
    Flags,
    Header,
    Layout,
    MessageType,
    PartitionKind,
    encode_datagram,
)

UNIT_ID_SIZE = 4
MAX_DATAGRAMS_PER_FRAME = 0xFFFF


@dataclass(frozen=True)
class LatentFrame:
    """A quantized latent plus everything a receiver needs to decode it."""

    latent: np.ndarray  # integers; chw: (C, H, W), nd: (N, D)
    layout: Layout
    bit_width: int
    signed: bool
    scale: float = 1.0
    codec_id: int = 0
    image_size: tuple[int, int] = (0, 0)  # (H, W) of the original image
    token_grid: tuple[int, int] = (0, 0)  # nd: (gh, gw) with gh * gw == N
    stream_id: int = 0
    importance: int = 0
    kb_version: int = 0


@dataclass(frozen=True)
class DatagramPlan:
    """Which units (or which slice of one unit) each datagram of a frame carries."""

    unit_ids: tuple[bytes, ...]  # per datagram, big-endian uint32 ids
    sub_index: tuple[int, ...]
    sub_count: tuple[int, ...]
    element_bounds: np.ndarray  # (datagrams + 1,): datagram k packs gathered[b[k]:b[k+1]]
    gather: np.ndarray  # unit-order element positions, datagram by datagram

    @property
    def datagram_count(self) -> int:
        return len(self.unit_ids)


def sub_unit_bounds(unit_size: int, sub_index: int, sub_count: int) -> tuple[int, int]:
    """Element range [start, end) of sub-unit `sub_index` of `sub_count` within its unit."""
    return unit_size * sub_index // sub_count, unit_size * (sub_index + 1) // sub_count


def min_mtu(bit_width: int) -> int:
    """The smallest MTU that still carries one element with its header."""
    return HEADER_SIZE + UNIT_ID_SIZE + bitpack.packed_size(1, bit_width) + CRC_SIZE


@lru_cache(maxsize=64)
def plan_datagrams(partition: Partition, bit_width: int, mtu: int, seed: int, interleave: bool) -> DatagramPlan:
    sizes = partition.unit_sizes()
    offsets = partition.unit_offsets

    def budget_bits(units: int) -> int:
        return (mtu - HEADER_SIZE - CRC_SIZE - UNIT_ID_SIZE * units) * 8

    max_sub_elements = budget_bits(1) // bit_width
    ids_per_datagram: list[list[int]] = []
    subs: list[tuple[int, int]] = []
    pieces: list[np.ndarray] = []
    current: list[int] = []
    current_elements = 0

    def flush() -> None:
        nonlocal current, current_elements
        if current:
            ids_per_datagram.append(current)
            subs.append((0, 1))
            pieces.append(np.concatenate([np.arange(offsets[u], offsets[u + 1]) for u in current]))
            current, current_elements = [], 0

    for unit in unit_order(partition.unit_count, seed, interleave).tolist():
        size = int(sizes[unit])
        if size * bit_width > budget_bits(1):
            flush()
            sub_count = -(-size // max_sub_elements)
            for sub in range(sub_count):
                start, end = sub_unit_bounds(size, sub, sub_count)
                ids_per_datagram.append([unit])
                subs.append((sub, sub_count))
                pieces.append(np.arange(offsets[unit] + start, offsets[unit] + end))
            continue
        if current and (current_elements + size) * bit_width > budget_bits(len(current) + 1):
            flush()
        current.append(unit)
        current_elements += size
    flush()
    if len(ids_per_datagram) > MAX_DATAGRAMS_PER_FRAME:
        raise ValueError(
            f"frame needs {len(ids_per_datagram)} datagrams, more than {MAX_DATAGRAMS_PER_FRAME}: raise --mtu"
        )
    bounds = np.zeros(len(pieces) + 1, dtype=np.int64)
    np.cumsum([p.size for p in pieces], out=bounds[1:])
    return DatagramPlan(
        unit_ids=tuple(np.asarray(ids, dtype=">u4").tobytes() for ids in ids_per_datagram),
        sub_index=tuple(s for s, _ in subs),
        sub_count=tuple(c for _, c in subs),
        element_bounds=bounds,
        gather=np.concatenate(pieces).astype(np.int64) if pieces else np.zeros(0, dtype=np.int64),
    )


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

    def partition_of(self, frame: LatentFrame) -> Partition:
        return partition_for(frame.layout, frame.latent.shape, self.partition_kind, self.block, frame.token_grid)

    def plan(self, frame: LatentFrame) -> DatagramPlan:
        if self.mtu < min_mtu(frame.bit_width):
            raise ValueError(f"--mtu {self.mtu} is too small: a datagram needs at least {min_mtu(frame.bit_width)} bytes")
        return plan_datagrams(self.partition_of(frame), frame.bit_width, self.mtu, self.seed, self.interleave)

    def packetize(self, frame: LatentFrame, frame_id: int) -> list[bytes]:
        bitpack.check_range(frame.latent, frame.bit_width, frame.signed)
        partition = self.partition_of(frame)
        plan = self.plan(frame)
        gathered = partition.to_units(frame.latent)[plan.gather]
        shape = tuple(frame.latent.shape) + (0,) * (3 - frame.latent.ndim)
        flags = (Flags.INTERLEAVED if self.interleave else Flags.NONE) | (Flags.SIGNED if frame.signed else Flags.NONE)
        template = dict(
            magic=b"NSEM", version=VERSION, msg_type=MessageType.DATA, flags=int(flags),
            partition=int(self.partition_kind), layout=int(frame.layout), bit_width=frame.bit_width,
            importance=frame.importance, reserved=0, stream_id=frame.stream_id, kb_version=frame.kb_version,
            codec_id=frame.codec_id, image_height=frame.image_size[0], image_width=frame.image_size[1],
            frame_id=frame_id, dim0=shape[0], dim1=shape[1], dim2=shape[2],
            grid_h=partition.grid[0], grid_w=partition.grid[1],
            block_h=partition.block[0], block_w=partition.block[1],
            unit_count=partition.unit_count, interleave_seed=self.seed, scale=float(frame.scale),
            datagram_count=plan.datagram_count,
        )
        datagrams = []
        bounds = plan.element_bounds
        for index in range(plan.datagram_count):
            payload = bitpack.pack(gathered[bounds[index] : bounds[index + 1]], frame.bit_width)
            ids = plan.unit_ids[index]
            header = Header(
                **template, datagram_index=index, sub_index=plan.sub_index[index], sub_count=plan.sub_count[index],
                unit_count_here=len(ids) // UNIT_ID_SIZE, payload_len=len(payload),
            )
            datagrams.append(encode_datagram(header, ids, payload))
        return datagrams
