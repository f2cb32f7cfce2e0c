"""Gray-labelled QAM (3GPP TS 38.211 §5.1) and exact LLR demapping, in numpy.

Labels: constellation index i carries bits b0 b1 ... (b0 = most significant bit of i), the
same ordering as Sionna's `Constellation("qam", m)` (a test checks the points agree).
LLRs follow Sionna's sign: LLR = log P(b=1 | y) / P(b=0 | y).
"""

from __future__ import annotations

from functools import cache

import numpy as np


@cache
def qam_points(bits_per_symbol: int) -> np.ndarray:
    """Unit-average-energy Gray QAM points, index = bits read MSB first."""
    m = bits_per_symbol
    if m not in (2, 4, 6):
        raise ValueError(f"unsupported bits per symbol {m}")
    idx = np.arange(2**m)
    bits = (idx[:, None] >> (m - 1 - np.arange(m))[None, :]) & 1
    s = 1 - 2 * bits.astype(float)  # bit 0 -> +1
    if m == 2:
        re, im, norm = s[:, 0], s[:, 1], np.sqrt(2)
    elif m == 4:
        re, im, norm = s[:, 0] * (2 - s[:, 2]), s[:, 1] * (2 - s[:, 3]), np.sqrt(10)
    else:
        re = s[:, 0] * (4 - s[:, 2] * (2 - s[:, 4]))
        im = s[:, 1] * (4 - s[:, 3] * (2 - s[:, 5]))
        norm = np.sqrt(42)
    points = (re + 1j * im) / norm
    points.setflags(write=False)
    return points


@cache
def _bit_table(bits_per_symbol: int) -> np.ndarray:
    m = bits_per_symbol
    idx = np.arange(2**m)
    table = ((idx[:, None] >> (m - 1 - np.arange(m))[None, :]) & 1).astype(bool)
    table.setflags(write=False)
    return table


def qam_map(bits: np.ndarray, bits_per_symbol: int) -> np.ndarray:
    """Bits (length a multiple of m) -> complex symbols."""
    m = bits_per_symbol
    b = np.asarray(bits, dtype=np.int64).reshape(-1, m)
    idx = b @ (1 << (m - 1 - np.arange(m)))
    return qam_points(m)[idx]


@cache
def _pam(bits_per_symbol: int) -> tuple[np.ndarray, np.ndarray]:
    """The in-phase axis of the constellation: its distinct levels and, per level, the bits
    b0, b2, b4 ... it carries (the quadrature axis carries b1, b3, b5 ... on the same levels)."""
    m = bits_per_symbol
    points, table = qam_points(m), _bit_table(m)
    levels, first = np.unique(points.real, return_index=True)
    return levels, table[first][:, 0::2]


def qam_demap(symbols: np.ndarray, noise_var: np.ndarray | float, bits_per_symbol: int) -> np.ndarray:
    """Exact (log-sum-exp) bit LLRs, log P(1)/P(0), for y = s + CN(0, noise_var).

    Gray QAM is the product of two Gray PAMs (in-phase: bits 0, 2, 4; quadrature: 1, 3, 5) and
    circular noise factorises the same way, so each bit's exact LLR needs only its own axis:
    the other axis's sum appears in numerator and denominator alike. QPSK is then linear.
    """
    m = bits_per_symbol
    y = np.asarray(symbols).reshape(-1)
    nv = np.maximum(np.broadcast_to(np.asarray(noise_var, dtype=float), y.shape).reshape(-1), 1e-12)
    llr = np.empty((y.size, m))
    if m == 2:
        scale = -2 * np.sqrt(2) / nv  # levels +-1/sqrt(2): LLR = -4 a y / N0 per axis
        np.multiply(y.real, scale, out=llr[:, 0])
        np.multiply(y.imag, scale, out=llr[:, 1])
        return llr.reshape(-1)
    levels, table = _pam(m)
    for axis, values in enumerate((y.real, y.imag)):
        metric = -(values[:, None] - levels[None, :]) ** 2 / nv[:, None]  # [N, levels]
        for b in range(m // 2):
            one, zero = metric[:, table[:, b]], metric[:, ~table[:, b]]
            llr[:, 2 * b + axis] = _logsumexp(one) - _logsumexp(zero)
    return llr.reshape(-1)


def _logsumexp(a: np.ndarray) -> np.ndarray:
    top = a.max(axis=1)
    return top + np.log(np.exp(a - top[:, None]).sum(axis=1))


def hard_bits(llr: np.ndarray) -> np.ndarray:
    return (np.asarray(llr) > 0).astype(np.uint8)
