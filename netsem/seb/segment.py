"""A `seb` frame's segments: Seb indices of some 32x32 regions, each segment decodable alone.

    byte 0        importance class of the segment's regions (0 = rest, 1 = important)
    bytes 1..B    region bitmap, B = ceil(R / 8): bit r (most significant first) set when
                  region r (row-major over the padded image's R regions) is in this segment
    then bits     per listed region, ascending: 1 flag bit (1 = fine), then
                    fine:   4 patches (row-major) x G slices x 8-bit fine Seb index
                    coarse: G slices x 6-bit coarse Seb index
                  zero bits to the byte boundary

A receiver places every segment it gets without the others (a lost segment costs its regions,
nothing else). `parse_segment` checks everything a peer could get wrong: the bitmap's length
and spare bits, the exact bit count, a class above 1; index values are checked against the
knowledge base by the codec (a Seb index outside it is a frame error, not garbage).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netsem.seb.kb import INDEX_BITS

FINE_BITS, COARSE_BITS = INDEX_BITS
CLASSES = 2


class SegmentError(ValueError):
    """A segment that does not parse (one-line message)."""


def bitmap_bytes(regions: int) -> int:
    return -(-regions // 8)


def region_bits(fine: bool, groups: int) -> int:
    return 1 + (4 * groups * FINE_BITS if fine else groups * COARSE_BITS)


def segment_bytes(regions: int, fine_flags: np.ndarray, groups: int) -> int:
    bits = int(sum(region_bits(bool(f), groups) for f in fine_flags))
    return 1 + bitmap_bytes(regions) + -(-bits // 8)


def _bits(values: np.ndarray, width: int) -> np.ndarray:
    """Unsigned values -> their `width` low bits each, most significant first, as a 0/1 array."""
    v = np.asarray(values, dtype=">u2").reshape(-1)
    return np.unpackbits(v.view(np.uint8)).reshape(-1, 16)[:, 16 - width:].reshape(-1)


def _values(bits: np.ndarray, width: int) -> np.ndarray:
    b = bits.reshape(-1, width).astype(np.uint16)
    return (b << np.arange(width - 1, -1, -1, dtype=np.uint16)).sum(axis=1).astype(np.int64)


@dataclass(frozen=True)
class Segment:
    klass: int
    regions: np.ndarray  # (n,) ascending region indices
    fine: np.ndarray  # (n,) bool
    fine_index: np.ndarray  # (n_fine, 4, G) fine Seb indices of the fine regions, in order
    coarse_index: np.ndarray  # (n_coarse, G)


def pack_segment(klass: int, total_regions: int, regions: np.ndarray, fine: np.ndarray,
                 fine_index: np.ndarray, coarse_index: np.ndarray) -> bytes:
    """One segment; `regions` ascending, `fine_index` (n_fine, 4, G), `coarse_index` (n_coarse, G)."""
    bitmap = np.zeros(bitmap_bytes(total_regions) * 8, np.uint8)
    bitmap[regions] = 1
    pieces, fi, ci = [], 0, 0
    for is_fine in fine:
        pieces.append(np.array([1 if is_fine else 0], np.uint8))
        if is_fine:
            pieces.append(_bits(fine_index[fi], FINE_BITS))
            fi += 1
        else:
            pieces.append(_bits(coarse_index[ci], COARSE_BITS))
            ci += 1
    bits = np.concatenate(pieces) if pieces else np.zeros(0, np.uint8)
    return bytes([klass]) + np.packbits(bitmap).tobytes() + np.packbits(bits).tobytes()


def parse_segment(data: bytes, total_regions: int, groups: int) -> Segment:
    head = 1 + bitmap_bytes(total_regions)
    if len(data) <= head:
        raise SegmentError(f"segment of {len(data)} bytes is shorter than its {head}-byte head")
    klass = data[0]
    if klass >= CLASSES:
        raise SegmentError(f"importance class {klass} (expected 0..{CLASSES - 1})")
    bitmap = np.unpackbits(np.frombuffer(data, np.uint8, head - 1, 1))
    if bitmap[total_regions:].any():
        raise SegmentError(f"region bitmap names a region past the image's {total_regions}")
    regions = np.flatnonzero(bitmap)
    if regions.size == 0:
        raise SegmentError("segment lists no region")
    bits = np.unpackbits(np.frombuffer(data, np.uint8, offset=head))
    at, fine, fine_index, coarse_index = 0, [], [], []
    for _ in regions:
        if at >= bits.size:
            raise SegmentError(f"segment ends inside its {regions.size} regions")
        is_fine = bool(bits[at])
        at += 1
        width, count = (FINE_BITS, 4 * groups) if is_fine else (COARSE_BITS, groups)
        if at + width * count > bits.size:
            raise SegmentError(f"segment ends inside its {regions.size} regions")
        values = _values(bits[at:at + width * count], width)
        at += width * count
        fine.append(is_fine)
        (fine_index.append(values.reshape(4, groups)) if is_fine else coarse_index.append(values))
    if bits.size - at >= 8 or bits[at:].any():
        raise SegmentError(f"{bits.size - at} bits left after the last region")
    return Segment(klass, regions, np.array(fine, bool),
                   np.array(fine_index, np.int64).reshape(-1, 4, groups), np.array(coarse_index, np.int64).reshape(-1, groups))
