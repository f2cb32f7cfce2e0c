"""netem's delay distribution tables, generated exactly as iproute2's generators do.

iproute2 ships `normal.dist`, `pareto.dist` and `paretonormal.dist`, printed by the small C
programs in its `netem/` directory. We run the same arithmetic here instead of copying their
numbers: the same IEEE double operations in the same order (the normal generator's `x +=
.00005` accumulates its rounding, and that decides some entries), C's `rint` (round half to
even: Python's `round`), glibc's `erf` and `pow` (Python's `math.erf` and `**` call them),
C's truncating integer division. Other names are read from `NAME.dist` files the way `tc`
does (`$TC_LIB_DIR` or `/usr/lib/tc`), so custom `maketable` output works too.

Not generated: `experimental.dist`, which iproute2 builds with `maketable` from a data file
(`experimental.dat`) that is not part of this repository; put the file in `$TC_LIB_DIR` to
use it. There is no `uniform.dist` in iproute2 (see `load_table`).
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

DIST_SCALE = 8192  # NETEM_DIST_SCALE (TABLEFACTOR in the generators)
DIST_MAX = 16384  # NETEM_DIST_MAX: the most entries the kernel accepts
UNIFORM = "uniform"
_SHRT_MIN, _SHRT_MAX = -32768, 32767
_TABLESIZE = 16384  # the generators' internal resolution; every 4th entry is printed
_PARETO_SHAPE = 3.0  # `static const double a = 3.0`


def _clamp_short(value: int) -> int:
    return max(_SHRT_MIN, min(_SHRT_MAX, value))


def _c_division(numerator: int, denominator: int) -> int:
    """C's integer division: the quotient truncated toward zero."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


@functools.cache
def _normal_fine_table() -> tuple[float, ...]:
    """normal.c's loop: `for (x = -10.0; x < 10.05; x += .00005) table[rint(16384 * normal(x))] = x`,
    with normal(x) = .5 + .5 * erf((x - 0) / (sqrt(2.0) * 1)); the last x to land on an index wins."""
    table = [0.0] * (_TABLESIZE + 1)
    root2 = math.sqrt(2.0) * 1.0
    x = -10.0
    while x < 10.05:
        table[int(round(_TABLESIZE * (0.5 + 0.5 * math.erf((x - 0.0) / root2))))] = x
        x += 0.00005
    return tuple(table)


def _normal_value(index: int) -> int:
    """`(int) rint(table[i] * TABLEFACTOR)`, not yet clamped."""
    return int(round(_normal_fine_table()[index] * DIST_SCALE))


@functools.cache
def normal_table() -> tuple[int, ...]:
    """normal.c: every 4th entry of the inverse normal CDF, rint(x * 8192) clamped to a short."""
    return tuple(_clamp_short(_normal_value(i)) for i in range(0, _TABLESIZE, 4))


def _pareto_value(i: int) -> int:
    """pareto.c's body for its loop variable i (65536, 65520, ..., 16): (int) rint(dvalue)."""
    dvalue = float(i) / 65536.0
    dvalue = 1.0 / dvalue ** (1.0 / _PARETO_SHAPE)
    dvalue -= 1.5
    dvalue *= (4.0 / 3.0) * float(DIST_SCALE)
    if dvalue > 32767:
        dvalue = 32767.0
    return int(round(dvalue))


@functools.cache
def pareto_table() -> tuple[int, ...]:
    """pareto.c: shape-3 quantiles for i = 65536 down to 16 in steps of 16; its clipping makes the sd ~0.82."""
    return tuple(_pareto_value(i) for i in range(65536, 0, -16))


@functools.cache
def paretonormal_table() -> tuple[int, ...]:
    """paretonormal.c: (normvalue + 3 * parvalue) / 4 in C integer division, clamped to a short.

    normvalue is rint(x * 8192) of the normal generator, *not* clamped (its first entry is
    below -32768); parvalue is pareto.c's value for 65536 - 4 i, rounded with rint. This mixes
    quantile functions 25/75 rather than probabilities (see NETEM.md §3).
    """
    return tuple(
        _clamp_short(_c_division(_normal_value(i) + 3 * _pareto_value(65536 - 4 * i), 4))
        for i in range(0, _TABLESIZE, 4)
    )


BUILTIN_TABLES = {
    "normal": normal_table,
    "pareto": pareto_table,
    "paretonormal": paretonormal_table,
}


def table_file(name: str) -> Path:
    """Where tc looks for `distribution NAME`: $TC_LIB_DIR or /usr/lib/tc, then NAME.dist."""
    return Path(os.environ.get("TC_LIB_DIR", "/usr/lib/tc")) / f"{name}.dist"


def load_table(name: str) -> tuple[int, ...] | None:
    """The table for `distribution NAME`; None means netem's built-in uniform (no table).

    tc reads every name, `uniform` included, from a NAME.dist file; iproute2 ships no
    `uniform.dist`, so there `distribution uniform` fails. Here a `uniform.dist` file is read
    like any other, and without one `uniform` is a netsem extension meaning "no table", the
    uniform jitter netem uses when `distribution` is left out. Raises ValueError with tc's
    wording when nothing is found.
    """
    if name in BUILTIN_TABLES:
        return BUILTIN_TABLES[name]()
    path = table_file(name)
    if name == UNIFORM and not path.exists():
        return None
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"No distribution data for {name} ({path}: {error.strerror})") from None
    return _parse_dist_file(text, path)


def _parse_dist_file(text: str, path: Path) -> tuple[int, ...]:
    values: list[int] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        for word in stripped.split():
            try:
                values.append(_clamp_short(int(word, 0)))
            except ValueError:
                raise ValueError(f"{path}: {word!r} is not an integer") from None
            if len(values) > DIST_MAX:
                raise ValueError(f"{path}: too much data (more than {DIST_MAX} values)")
    if not values:
        raise ValueError(f"{path}: no values")
    return tuple(values)
