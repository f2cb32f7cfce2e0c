"""Integer packing at a declared bit width, MSB first, no byte wasted on a short symbol.

`n` elements of `bit_width` bits occupy exactly ceil(n * bit_width / 8) bytes; the last
byte is zero-padded. Signed values are stored two's complement in `bit_width` bits.
Widths 8 and 16 are plain byte copies. Widths below 8 pack 8 elements into `bit_width` bytes
with a dozen whole-array operations on uint64 words, merging neighbours in parallel lanes
(SWAR), and unpack the same way back.
Other widths pack through numpy's bit packing and unpack from the 3-byte window where each
element starts.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

MAX_BIT_WIDTH = 16


def packed_size(count: int, bit_width: int) -> int:
    return (count * bit_width + 7) // 8


def element_dtype(bit_width: int, signed: bool) -> np.dtype:
    """The smallest numpy dtype that holds `bit_width`-bit values."""
    if bit_width <= 8:
        return np.dtype(np.int8 if signed else np.uint8)
    return np.dtype(np.int16 if signed else np.uint16)


def check_range(values: np.ndarray, bit_width: int, signed: bool) -> None:
    """Raise ValueError when some value does not fit the declared width."""
    if not 1 <= bit_width <= MAX_BIT_WIDTH:
        raise ValueError(f"bit width must be 1..{MAX_BIT_WIDTH}, got {bit_width}")
    if values.size == 0:
        return
    low, high = (-(1 << (bit_width - 1)), (1 << (bit_width - 1)) - 1) if signed else (0, (1 << bit_width) - 1)
    vmin, vmax = int(values.min()), int(values.max())
    if vmin < low or vmax > high:
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"latent values span [{vmin}, {vmax}], outside {kind} {bit_width}-bit range [{low}, {high}]")


def pack(values: np.ndarray, bit_width: int) -> bytes:
    """Pack integer `values` (1-D, already range-checked) at `bit_width` bits each."""
    if bit_width < 8 and values.dtype.itemsize == 1:  # no wider copy: the low bits are the same
        return _pack_groups(values.view(np.uint8) & np.uint8((1 << bit_width) - 1), bit_width)
    raw = values.astype(np.int64, copy=False) & ((1 << bit_width) - 1)
    if bit_width == 8:
        return raw.astype(np.uint8).tobytes()
    if bit_width == 16:
        return raw.astype(">u2").tobytes()
    if bit_width < 8:
        return _pack_groups(raw.astype(np.uint8), bit_width)
    bits = np.unpackbits(raw.astype(">u2").view(np.uint8).reshape(-1, 2), axis=1)[:, 16 - bit_width :]
    return np.packbits(bits.ravel()).tobytes()


def _lanes(width: int, lane: int) -> np.uint64:
    """A 64-bit mask of the low `width` bits of every `lane`-bit lane."""
    word = (1 << width) - 1
    return np.uint64(sum(word << shift for shift in range(0, 64, lane)))


def _pack_groups(raw: np.ndarray, bit_width: int) -> bytes:
    """uint8 values below 2^bit_width (bit_width < 8), 8 to a little-endian uint64 word, merged
    pairwise in three steps (bytes -> 16-bit lanes -> 32 -> 64), each element shifted above
    its successor, so a word ends up holding its 8 elements MSB first in its low 8 b bits."""
    b, count = bit_width, raw.size
    groups = -(-count // 8)
    if count % 8:
        raw = np.concatenate([raw, np.zeros(groups * 8 - count, np.uint8)])
    w = raw.view("<u8")
    w = ((w & _lanes(8, 16)) << np.uint64(b)) | ((w >> np.uint64(8)) & _lanes(8, 16))
    w = ((w & _lanes(16, 32)) << np.uint64(2 * b)) | ((w >> np.uint64(16)) & _lanes(16, 32))
    w = ((w & _lanes(32, 64)) << np.uint64(4 * b)) | (w >> np.uint64(32))
    return w.astype(">u8").view(np.uint8).reshape(groups, 8)[:, 8 - b :].tobytes()[: packed_size(count, b)]


def _unpack_groups(buffer: np.ndarray, count: int, bit_width: int) -> np.ndarray:
    """`_pack_groups` undone: each group's bytes read as a big-endian word, split back in
    three steps (64 -> 32-bit lanes -> 16 -> bytes), the earlier element to the lower lane."""
    b = bit_width
    groups = -(-count // 8)
    words = np.zeros((groups, 8), np.uint8)
    data = buffer[: groups * b]
    full = data.size // b
    words[:full, 8 - b :] = data[: full * b].reshape(full, b)
    if full < groups:  # the last group's bytes, zero-padded
        words[full, 8 - b : 8 - b + data.size - full * b] = data[full * b :]
    w = words.view(">u8").reshape(-1).astype(np.uint64)
    w = (w >> np.uint64(4 * b)) | ((w & _lanes(4 * b, 64)) << np.uint64(32))
    w = ((w >> np.uint64(2 * b)) & _lanes(2 * b, 32)) | ((w & _lanes(2 * b, 32)) << np.uint64(16))
    w = ((w >> np.uint64(b)) & _lanes(b, 16)) | ((w & _lanes(b, 16)) << np.uint64(8))
    return w.astype("<u8").view(np.uint8)[:count]


_CACHED_POSITIONS = 1 << 17  # elements: caches stay small (8 x 1.5 MB) whatever peers send


def _bit_positions(count: int, bit_width: int) -> tuple[np.ndarray, np.ndarray]:
    """For element i: the byte where it starts, and how far right to shift the 24-bit window
    that starts there (an element of <= 16 bits at bit offset <= 7 fits in 3 bytes)."""
    if count <= _CACHED_POSITIONS:
        return _cached_bit_positions(count, bit_width)
    return _compute_bit_positions(count, bit_width)


def _compute_bit_positions(count: int, bit_width: int) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(count, dtype=np.int64) * bit_width
    return starts >> 3, (24 - bit_width - (starts & 7)).astype(np.uint32)


_cached_bit_positions = lru_cache(maxsize=8)(_compute_bit_positions)


def unpack(data: bytes | memoryview, count: int, bit_width: int, signed: bool) -> np.ndarray:
    """Inverse of `pack`: `count` elements as `element_dtype(bit_width, signed)`."""
    buffer = np.frombuffer(data, dtype=np.uint8, count=packed_size(count, bit_width))
    if bit_width == 8:
        raw = buffer.copy()
    elif bit_width == 16:
        raw = buffer.view(">u2").astype(np.uint16)
    elif bit_width < 8:
        raw = _unpack_groups(buffer, count, bit_width)
    else:
        wide = np.zeros(buffer.size + 2, dtype=np.uint32)
        wide[: buffer.size] = buffer
        windows = (wide[:-2] << 16) | (wide[1:-1] << 8) | wide[2:]
        first_byte, shift = _bit_positions(count, bit_width)
        raw = ((windows[first_byte] >> shift) & np.uint32((1 << bit_width) - 1)).astype(np.uint16)
    return as_signed(raw, bit_width) if signed else raw


def as_signed(raw: np.ndarray, bit_width: int) -> np.ndarray:
    """Unsigned `bit_width`-bit values (uint8 / uint16, as `element_dtype` sizes them) read as
    two's complement: the sign bit moved to the top of the type, shifted back arithmetically."""
    unused = raw.dtype.itemsize * 8 - bit_width
    signed_type = np.int8 if raw.dtype.itemsize == 1 else np.int16
    return (raw << raw.dtype.type(unused)).view(signed_type) >> signed_type(unused)
