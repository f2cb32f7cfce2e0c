"""Integer packing at a declared bit width, MSB first, no byte wasted on a short symbol.

`n` elements of `bit_width` bits occupy exactly ceil(n * bit_width / 8) bytes; the last
byte is zero-padded. Signed values are stored two's complement in `bit_width` bits.
Widths 8 and 16 are plain byte copies; widths below 8 pack 8 elements into `bit_width`
bytes through one uint64 word per group (vectorised, no per-bit expansion); other widths
go through numpy's bit packing. Unpacking reads each element from the 3-byte window where it
starts, for every width but 8 and 16.
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
    raw = values.astype(np.int64, copy=False) & ((1 << bit_width) - 1)
    if bit_width == 8:
        return raw.astype(np.uint8).tobytes()
    if bit_width == 16:
        return raw.astype(">u2").tobytes()
    if bit_width < 8:
        groups = -(-raw.size // 8)
        padded = np.zeros(groups * 8, dtype=np.uint64)
        padded[: raw.size] = raw
        padded = padded.reshape(groups, 8)
        words = np.zeros(groups, dtype=np.uint64)
        for i in range(8):
            words |= padded[:, i] << np.uint64(bit_width * (7 - i))
        # each word holds 8*bit_width significant bits in its low bytes
        as_bytes = words.astype(">u8").view(np.uint8).reshape(groups, 8)[:, 8 - bit_width :]
        return as_bytes.tobytes()[: packed_size(raw.size, bit_width)]
    bits = np.unpackbits(raw.astype(">u2").view(np.uint8).reshape(-1, 2), axis=1)[:, 16 - bit_width :]
    return np.packbits(bits.ravel()).tobytes()


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
        raw = buffer
    elif bit_width == 16:
        raw = buffer.view(">u2")
    else:
        wide = np.zeros(buffer.size + 2, dtype=np.uint32)
        wide[: buffer.size] = buffer
        windows = (wide[:-2] << 16) | (wide[1:-1] << 8) | wide[2:]
        first_byte, shift = _bit_positions(count, bit_width)
        raw = (windows[first_byte] >> shift) & np.uint32((1 << bit_width) - 1)
    if signed:
        raw = raw.astype(np.int32)
        raw = np.where(raw >= (1 << (bit_width - 1)), raw - (1 << bit_width), raw)
    return raw.astype(element_dtype(bit_width, signed))
