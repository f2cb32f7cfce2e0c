"""Integer packing at a declared bit width, MSB first, no byte wasted on a short symbol.

`n` elements of `bit_width` bits occupy exactly ceil(n * bit_width / 8) bytes; the last
byte is zero-padded. Signed values are stored two's complement in `bit_width` bits.
Widths 8 and 16 are plain byte copies; widths below 8 pack 8 elements into `bit_width`
bytes through one uint64 word per group (vectorised, no per-bit expansion); other widths
go through numpy's bit (un)packing.
"""

from __future__ import annotations

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


def unpack(data: bytes | memoryview, count: int, bit_width: int, signed: bool) -> np.ndarray:
    """Inverse of `pack`: `count` elements as `element_dtype(bit_width, signed)`."""
    buffer = np.frombuffer(data, dtype=np.uint8, count=packed_size(count, bit_width))
    if bit_width == 8:
        raw = buffer.astype(np.int64)
    elif bit_width == 16:
        raw = buffer.view(">u2").astype(np.int64)
    elif bit_width < 8:
        groups = -(-count // 8)
        padded = np.zeros((groups, 8), dtype=np.uint8)
        flat = np.zeros(groups * bit_width, dtype=np.uint8)
        flat[: buffer.size] = buffer
        padded[:, 8 - bit_width :] = flat.reshape(groups, bit_width)
        words = padded.view(">u8").astype(np.uint64).reshape(groups)
        mask = np.uint64((1 << bit_width) - 1)
        out = np.empty((groups, 8), dtype=np.uint64)
        for i in range(8):
            out[:, i] = (words >> np.uint64(bit_width * (7 - i))) & mask
        raw = out.reshape(-1)[:count].astype(np.int64)
    else:
        bits = np.unpackbits(buffer)[: count * bit_width].reshape(count, bit_width)
        full = np.zeros((count, 16), dtype=np.uint8)
        full[:, 16 - bit_width :] = bits
        raw = np.packbits(full, axis=1).view(">u2").reshape(count).astype(np.int64)
    if signed:
        raw = np.where(raw >= (1 << (bit_width - 1)), raw - (1 << bit_width), raw)
    return raw.astype(element_dtype(bit_width, signed))
