"""Seeded random interleaving of transmission units (seed 003, §II-C).

Units are permuted by π before they are grouped into datagrams, so consecutive datagrams
carry units that are far apart in the latent and a burst of lost datagrams becomes losses
scattered over it. The receiver needs no π⁻¹ table: every datagram names its unit ids, so
placing each unit back at its id *is* π⁻¹. The seed travels in the header for the record.
"""

from __future__ import annotations

import numpy as np


def unit_order(unit_count: int, seed: int, interleave: bool) -> np.ndarray:
    """The order in which units are grouped: π (PCG64 seeded with `seed`) or 0..n-1."""
    if not interleave:
        return np.arange(unit_count, dtype=np.int64)
    return np.random.Generator(np.random.PCG64(seed)).permutation(unit_count).astype(np.int64)
