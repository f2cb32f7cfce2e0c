"""3GPP TS 38.212 CRC24A (gCRC24A = 0x864CFB, zero initial value, no final XOR), vectorised.

The CRC is linear over GF(2): bit j from the end of an N-bit message contributes
x^(j + 24) mod g(x), so the CRC of many messages is one product of their reversed bits with
a table of those residues (grown on demand, shared by all lengths). A zero-initial CRC without
final XOR leaves remainder zero on a message followed by its own CRC: that is the check.
"""

from __future__ import annotations

import numpy as np

POLY = 0x864CFB
BITS = 24


class _Residues:
    """Row j: the bits (MSB first) of x^(j + 24) mod g(x), as float32 for BLAS."""

    def __init__(self) -> None:
        self.rows = np.zeros((0, BITS), dtype=np.float32)
        self.next = POLY  # x^24 mod g(x): g without its x^24 term

    def first(self, length: int) -> np.ndarray:
        have = self.rows.shape[0]
        if have < length:
            size = max(length, 2 * have, 1024)
            residues = np.empty(size - have, dtype=np.int64)
            r = self.next
            for j in range(size - have):
                residues[j] = r
                r = ((r << 1) ^ POLY if r & 0x800000 else r << 1) & 0xFFFFFF
            self.next = r
            new = ((residues[:, None] >> np.arange(BITS - 1, -1, -1)) & 1).astype(np.float32)
            self.rows = np.concatenate([self.rows, new])
        return self.rows[:length]


_RESIDUES = _Residues()


def crc_bits(bits: np.ndarray) -> np.ndarray:
    """CRC24A of messages given as 0/1 bits [..., N] (MSB first) -> [..., 24] uint8 (MSB first)."""
    bits = np.asarray(bits)
    reversed_bits = np.ascontiguousarray(bits[..., ::-1], dtype=np.float32)
    # exact in float32: at most N ones are summed
    return ((reversed_bits @ _RESIDUES.first(bits.shape[-1])) % 2).astype(np.uint8)


def crc24a(data: bytes) -> bytes:
    """CRC24A of a byte string, 3 bytes, MSB first."""
    return np.packbits(crc_bits(np.unpackbits(np.frombuffer(data, dtype=np.uint8)))).tobytes()
