"""The netem tables entry by entry against an independent port of iproute2's generators.

The port below follows NETEM.md §3 and the C programs' arithmetic with numpy (sequential
accumulation of x, C's rint = numpy's rint, C's truncating division, glibc's erf through
math.erf), sharing no code with `emulator.distributions`. The comparison is exact.
"""

from __future__ import annotations

import math

import numpy as np

from emulator.distributions import normal_table, pareto_table, paretonormal_table

SCALE = 8192


def reference_normal_unclamped() -> np.ndarray:
    steps = np.full(401_100, 0.00005)
    steps[0] = -10.0
    xs = np.add.accumulate(steps)  # x += .00005, one rounding per step as in the C loop
    xs = xs[xs < 10.05]
    phi = 0.5 + 0.5 * np.array([math.erf(x / math.sqrt(2.0)) for x in xs])
    index = np.rint(16384 * phi).astype(np.int64)
    reversed_index = index[::-1]
    positions, first = np.unique(reversed_index, return_index=True)  # the last x to land on an index wins
    fine = np.zeros(16385)
    fine[positions] = xs[::-1][first]
    return np.rint(fine[0:16384:4] * SCALE).astype(np.int64)


def reference_pareto(i: np.ndarray) -> np.ndarray:
    value = (1.0 / np.power(i / 65536.0, 1.0 / 3.0) - 1.5) * ((4.0 / 3.0) * SCALE)
    return np.rint(np.minimum(value, 32767.0)).astype(np.int64)


def test_normal_table_entry_by_entry():
    expected = np.clip(reference_normal_unclamped(), -32768, 32767)
    assert len(normal_table()) == 4096
    assert list(normal_table()) == expected.tolist()


def test_pareto_table_entry_by_entry():
    expected = reference_pareto(np.arange(65536, 0, -16, dtype=np.float64))
    assert list(pareto_table()) == expected.tolist()


def test_paretonormal_table_entry_by_entry():
    normal = reference_normal_unclamped()  # not clamped before mixing
    pareto = reference_pareto(65536.0 - 4 * np.arange(0, 16384, 4, dtype=np.float64))
    mixed = np.fix((normal + 3 * pareto) / 4).astype(np.int64)  # C division truncates toward zero
    expected = np.clip(mixed, -32768, 32767)
    assert normal.min() < -32768  # the unclamped normal value does reach the mix
    assert list(paretonormal_table()) == expected.tolist()
