"""Linear algebra over GF(2) for the LDPC encoder, on numpy arrays of 0/1."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def inverse(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a square 0/1 matrix over GF(2) (Gauss-Jordan on bit-packed rows); ValueError if singular."""
    size = matrix.shape[0]
    # rows of [matrix | identity], 64 columns to a word
    augmented = np.concatenate([np.asarray(matrix, dtype=np.uint8) & 1, np.eye(size, dtype=np.uint8)], axis=1)
    words = np.packbits(augmented, axis=1, bitorder="little")
    pad = (-words.shape[1]) % 8
    rows = np.ascontiguousarray(np.pad(words, ((0, 0), (0, pad)))).view(np.uint64)
    for col in range(size):
        word, bit = divmod(col, 64)
        has = (rows[:, word] >> np.uint64(bit)) & np.uint64(1)
        candidates = np.flatnonzero(has[col:]) + col
        if candidates.size == 0:
            raise ValueError("matrix is singular over GF(2)")
        pivot = candidates[0]
        if pivot != col:
            rows[[col, pivot]] = rows[[pivot, col]]
        has[[col, pivot]] = has[[pivot, col]]
        others = np.flatnonzero(has)
        others = others[others != col]
        rows[others] ^= rows[col]
    bits = np.unpackbits(rows.view(np.uint8), axis=1, bitorder="little")
    return bits[:, size:2 * size].copy()


class SparseProduct:
    """y = A x over GF(2) for a fixed sparse 0/1 matrix A and many vectors x at once.

    The vectors travel bit-packed across the batch (`pack`: [n, C] 0/1 -> [n, ceil(C / 8)]
    uint8), so one row of A costs a gather and an XOR of a few bytes, whatever C is.
    """

    def __init__(self, matrix: sp.spmatrix) -> None:
        csr = sp.csr_matrix(matrix)
        csr.eliminate_zeros()
        csr.sort_indices()
        self.shape = csr.shape
        self._cols = csr.indices.astype(np.intp)
        lengths = np.diff(csr.indptr)
        self._starts = csr.indptr[:-1][lengths > 0].astype(np.intp)
        self._nonempty = np.flatnonzero(lengths > 0)

    def __call__(self, packed: np.ndarray) -> np.ndarray:
        out = np.zeros((self.shape[0], packed.shape[1]), dtype=np.uint8)
        if self._cols.size:
            out[self._nonempty] = np.bitwise_xor.reduceat(packed[self._cols], self._starts, axis=0)
        return out


def pack(bits: np.ndarray) -> np.ndarray:
    """[n, C] 0/1 -> [n, ceil(C / 8)] uint8, the batch axis bit-packed."""
    return np.packbits(bits, axis=1)


def unpack(packed: np.ndarray, count: int) -> np.ndarray:
    return np.unpackbits(packed, axis=1, count=count)
