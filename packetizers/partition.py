"""Feature partitions: which latent elements make up each transmission unit.

A partition fixes a *unit order* of the latent's elements: unit 0's elements, then unit 1's,
and so on. Packetizer and reassembler work on that 1-D vector; `to_units` / `from_units`
move between it and the latent.

| layout | kind    | unit                                   | elements of a unit, in order |
|--------|---------|----------------------------------------|------------------------------|
| chw    | channel | one channel c                          | latent[c] row-major (y, x)   |
| chw    | token   | one position p = y*W + x               | latent[:, y, x] by channel   |
| chw    | spatial | one block b = by*nbx + bx (bh x bw)    | latent[:, block] as (c, y, x)|
| nd     | channel | one token dimension d                  | latent[:, d] by token        |
| nd     | token   | one token n                            | latent[n, :] by dimension    |
| nd     | spatial | one block of the (gh, gw) token grid   | latent[tokens, :] as (t, d)  |
| bytes  | segment | one segment of the stream (sender-cut) | its bytes in stream order    |

Edge blocks are smaller when the map is not a multiple of the block size. A unit too big for
one datagram is split into sub-units along this element order (for a chw channel that is
row-major, so a sub-unit is a run of rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from packetizers.wire import Layout, PartitionKind

DEFAULT_BLOCK = (4, 4)


class PartitionError(ValueError):
    """A partition that cannot be built from the given layout, shape and options."""


@dataclass(frozen=True, eq=False)
class Partition:
    layout: Layout
    shape: tuple[int, ...]
    kind: PartitionKind
    block: tuple[int, int]  # (0, 0) unless spatial
    grid: tuple[int, int]  # nd token grid, (0, 0) when none
    unit_count: int
    unit_offsets: np.ndarray = field(repr=False)  # int64 (unit_count + 1,): unit u is [off[u], off[u+1])
    uniform_unit_size: int  # every unit's element count, or 0 when they differ (spatial edge blocks)
    _order: np.ndarray | None = field(repr=False)  # flat latent index of each unit-order element; None for transposes

    @property
    def size(self) -> int:
        return int(self.unit_offsets[-1])

    def unit_sizes(self) -> np.ndarray:
        return np.diff(self.unit_offsets)

    def to_units(self, latent: np.ndarray) -> np.ndarray:
        """The latent's elements in unit order (1-D)."""
        if latent.shape != self.shape:
            raise PartitionError(f"latent shape {latent.shape} does not match partition shape {self.shape}")
        if self._order is not None:
            return latent.reshape(-1)[self._order]
        if self._is_identity():
            return latent.reshape(-1)
        return np.ascontiguousarray(latent.reshape(self.shape[0], -1).T).reshape(-1)

    def from_units(self, vector: np.ndarray) -> np.ndarray:
        """Inverse of `to_units`: a latent-shaped array from a unit-order vector."""
        if self._order is not None:
            out = np.empty(self.size, dtype=vector.dtype)
            out[self._order] = vector
            return out.reshape(self.shape)
        if self._is_identity():
            return vector.reshape(self.shape)
        rows = self.shape[0]
        return np.ascontiguousarray(vector.reshape(-1, rows).T).reshape(self.shape)

    @property
    def nbytes(self) -> int:
        """Memory held by this partition's index arrays."""
        return self.unit_offsets.nbytes + (self._order.nbytes if self._order is not None else 0)

    def element_mask(self, unit_received: np.ndarray) -> np.ndarray:
        """Per-element received mask (latent-shaped bool) from a per-unit bool vector."""
        return self.from_units(np.repeat(unit_received.astype(bool), self.unit_sizes()))

    def _is_identity(self) -> bool:
        return (self.layout, self.kind) in (
            (Layout.CHW, PartitionKind.CHANNEL), (Layout.ND, PartitionKind.TOKEN), (Layout.BYTES, PartitionKind.SEGMENT)
        )


def unit_count_for(
    layout: Layout, shape: tuple[int, ...], kind: PartitionKind, block: tuple[int, int], grid: tuple[int, int]
) -> int:
    """How many units a partition has, computed without allocating anything.

    Raises PartitionError for inconsistent geometry, so a header can be validated cheaply.
    """
    if layout == Layout.CHW:
        if len(shape) != 3 or min(shape) < 1:
            raise PartitionError(f"chw latent needs 3 positive dims, got {shape}")
        channels, height, width = shape
        if kind == PartitionKind.CHANNEL:
            return channels
        if kind == PartitionKind.TOKEN:
            return height * width
        map_h, map_w = height, width
    elif layout == Layout.ND:
        if len(shape) != 2 or min(shape) < 1:
            raise PartitionError(f"nd latent needs 2 positive dims, got {shape}")
        tokens, dims = shape
        if kind == PartitionKind.CHANNEL:
            return dims
        if kind == PartitionKind.TOKEN:
            return tokens
        if grid[0] * grid[1] != tokens or min(grid) < 1:
            raise PartitionError(f"spatial partition of {tokens} tokens needs a token grid gh x gw = {tokens}, got {grid}")
        map_h, map_w = grid
    else:
        raise PartitionError(f"unknown layout {layout!r}")
    if kind != PartitionKind.SPATIAL:
        raise PartitionError(f"unknown partition kind {kind!r}")
    if min(block) < 1:
        raise PartitionError(f"spatial block must be positive, got {block}")
    return -(-map_h // block[0]) * -(-map_w // block[1])


def unit_sizes_of(
    layout: Layout,
    shape: tuple[int, ...],
    kind: PartitionKind,
    block: tuple[int, int],
    grid: tuple[int, int],
    unit_ids: np.ndarray,
) -> np.ndarray:
    """Element counts of the given (valid) units, by arithmetic alone: nothing frame-sized
    is allocated, so a receiver can check a datagram before it commits memory to its frame."""
    ids = unit_ids.astype(np.int64)
    if kind != PartitionKind.SPATIAL:
        per_unit = (int(np.prod(shape)) // unit_count_for(layout, shape, kind, block, grid))
        return np.full(ids.size, per_unit, dtype=np.int64)
    map_h, map_w, depth = (shape[1], shape[2], shape[0]) if layout == Layout.CHW else (grid[0], grid[1], shape[1])
    blocks_x = -(-map_w // block[1])
    rows = np.minimum(block[0], map_h - (ids // blocks_x) * block[0])
    cols = np.minimum(block[1], map_w - (ids % blocks_x) * block[1])
    return depth * rows * cols


def build_partition(
    layout: Layout,
    shape: tuple[int, ...],
    kind: PartitionKind,
    block: tuple[int, int] = DEFAULT_BLOCK,
    grid: tuple[int, int] = (0, 0),
) -> Partition:
    """Build (and cache) the partition of a latent of `shape`.

    `block` only matters for spatial partitions; `grid` only for nd spatial partitions.
    """
    layout, kind = Layout(layout), PartitionKind(kind)
    shape = tuple(int(d) for d in shape)
    block = tuple(int(b) for b in block) if kind == PartitionKind.SPATIAL else (0, 0)
    grid = tuple(int(g) for g in grid) if layout == Layout.ND else (0, 0)
    count = unit_count_for(layout, shape, kind, block, grid)
    order = None
    if kind == PartitionKind.SPATIAL:
        order, sizes = _spatial_order(layout, shape, block, grid)
    elif (layout, kind) in ((Layout.CHW, PartitionKind.CHANNEL), (Layout.ND, PartitionKind.TOKEN)):
        sizes = np.full(count, int(np.prod(shape)) // count, dtype=np.int64)
    else:
        sizes = np.full(count, shape[0], dtype=np.int64)
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    uniform = int(sizes[0]) if (sizes == sizes[0]).all() else 0
    return Partition(layout, shape, kind, block, grid, count, offsets, uniform, order)


def segment_partition(offsets: tuple[int, ...], length: int) -> Partition:
    """The partition of a `length`-byte stream into segments starting at `offsets`.

    Unlike the latent partitions it is not a function of the header: the sender cuts the
    stream where its format allows (JPEG restart markers) and every datagram carries its
    segments' spans.
    """
    bounds = np.asarray((*offsets, length), dtype=np.int64)
    if bounds.size < 2 or bounds[0] != 0 or (np.diff(bounds) < 1).any():
        raise PartitionError(f"segment offsets must start at 0 and increase within {length} bytes")
    return Partition(Layout.BYTES, (int(length),), PartitionKind.SEGMENT, (0, 0), (0, 0), bounds.size - 1, bounds, 0, None)


# Sender-side cache (trusted geometries). A receiver calls `build_partition` directly and
# keeps partitions only as long as its frames, so a peer cannot pin memory through here.
partition_for = lru_cache(maxsize=16)(build_partition)


def _spatial_order(
    layout: Layout, shape: tuple[int, ...], block: tuple[int, int], grid: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Flat latent indices in spatial-unit order, and each block's element count.

    Arithmetic only (no loop over blocks): a header from a peer may ask for millions of
    1x1 blocks, and building their order must cost no more than one pass over the elements.
    Element (d, y, x) of block (by, bx) sits at the block's offset plus its rank within the
    block: chw ranks (c, y, x) row-major, nd ranks (token, dim).
    """
    if layout == Layout.CHW:
        depth, height, width = shape
    else:
        (height, width), depth = grid, shape[1]
    block_h, block_w = block
    blocks_y, blocks_x = -(-height // block_h), -(-width // block_w)
    ids = np.arange(blocks_y * blocks_x, dtype=np.int64)
    sizes = unit_sizes_of(layout, shape, PartitionKind.SPATIAL, block, grid, ids)
    starts = np.cumsum(sizes) - sizes
    y, x = np.arange(height, dtype=np.int64), np.arange(width, dtype=np.int64)
    rows = np.minimum(block_h, height - (y // block_h) * block_h)  # height of the block holding row y
    cols = np.minimum(block_w, width - (x // block_w) * block_w)
    block_of = (y // block_h)[:, None] * blocks_x + (x // block_w)[None, :]  # (H, W)
    in_block = (y % block_h)[:, None] * cols[None, :] + (x % block_w)[None, :]  # position's rank in its block
    area = rows[:, None] * cols[None, :]  # positions in the block holding (y, x)
    d = np.arange(depth, dtype=np.int64)[:, None, None]
    if layout == Layout.CHW:  # rank (c, y, x): channel-major within the block
        position = starts[block_of][None] + d * area[None] + in_block[None]  # (C, H, W), latent order
    else:  # rank (token, dim); latent order (token = y * W + x, dim)
        position = (starts[block_of] + in_block * depth)[:, :, None] + d.reshape(1, 1, -1)
    index_dtype = np.int32 if position.size < 2**31 else np.int64
    order = np.empty(position.size, dtype=index_dtype)
    order[position.reshape(-1)] = np.arange(position.size, dtype=index_dtype)
    return order, sizes
