"""netem's delay distribution tables, generated from their definitions.

iproute2 ships `normal.dist`, `pareto.dist` and `paretonormal.dist`, produced by the small C
programs in `netem/`. We regenerate the same 4096-entry tables here (inverse CDFs scaled by
NETEM_DIST_SCALE = 8192, clamped to s16) instead of copying their numbers, so the tables are
checkable against their definition. Other names are read from `NAME.dist` files the way
`tc` does (`$TC_LIB_DIR` or `/usr/lib/tc`), so custom `maketable` output works too.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

DIST_SCALE = 8192  # NETEM_DIST_SCALE
DIST_MAX = 16384  # NETEM_DIST_MAX: the most entries the kernel accepts
_S16_MIN, _S16_MAX = -32768, 32767
_FINE_TABLE = 16384  # the generators' internal resolution; every 4th entry is emitted
_PARETO_SHAPE = 3.0


def _clamp_s16(value: int) -> int:
    return max(_S16_MIN, min(_S16_MAX, value))


def _normal_quantiles() -> list[float]:
    """normal.c: for x in [-10, 10) step 5e-5, fine[rint(16384 * Phi(x))] = x (the last x wins)."""
    fine = [0.0] * (_FINE_TABLE + 1)
    steps = int(round(20.05 / 0.00005))
    for k in range(steps + 1):
        x = -10.0 + k * 0.00005
        if x >= 10.05:
            break
        index = int(round(_FINE_TABLE * (0.5 + 0.5 * math.erf(x / math.sqrt(2.0)))))
        fine[index] = x
    return fine


@functools.cache
def normal_table() -> tuple[int, ...]:
    """The standard normal inverse CDF at 4096 points, scaled by 8192 (mean ~0, sd ~1)."""
    fine = _normal_quantiles()
    return tuple(_clamp_s16(int(round(fine[i] * DIST_SCALE))) for i in range(0, _FINE_TABLE, 4))


def _pareto_values() -> list[float]:
    """pareto.c: shape 3 quantiles (i/65536)^(-1/3), shifted by -1.5, scaled by 4/3 * 8192."""
    values = []
    for i in range(65536, 0, -16):
        value = (1.0 / (i / 65536.0) ** (1.0 / _PARETO_SHAPE) - 1.5) * (4.0 / 3.0) * DIST_SCALE
        values.append(min(value, float(_S16_MAX)))
    return values


@functools.cache
def pareto_table() -> tuple[int, ...]:
    """Pareto (shape 3) table; its clipping makes the sd about 0.82, not 1."""
    return tuple(_clamp_s16(int(round(v))) for v in _pareto_values())


@functools.cache
def paretonormal_table() -> tuple[int, ...]:
    """paretonormal.c: entry k = (normal_k + 3 * pareto_k) / 4 with C truncating division.

    This mixes quantile functions 25/75 rather than probabilities (see NETEM.md §3).
    """
    normal = normal_table()
    pareto = [int(v) for v in _pareto_values()]  # the C program truncates here
    mixed = []
    for n, p in zip(normal, pareto):
        total = n + 3 * p
        mixed.append(_clamp_s16(int(total / 4)))  # C division truncates toward zero
    return tuple(mixed)


BUILTIN_TABLES = {
    "normal": normal_table,
    "pareto": pareto_table,
    "paretonormal": paretonormal_table,
}


def load_table(name: str) -> tuple[int, ...] | None:
    """The table for `distribution NAME`; None means netem's built-in uniform (no table).

    `uniform` is accepted as "no table". (tc itself looks for a `uniform.dist` file, which
    iproute2 does not ship, so there `distribution uniform` fails; leaving the option out
    gives the same uniform jitter.) Raises ValueError with tc's wording when nothing is found.
    """
    if name == "uniform":
        return None
    if name in BUILTIN_TABLES:
        return BUILTIN_TABLES[name]()
    directory = Path(os.environ.get("TC_LIB_DIR", "/usr/lib/tc"))
    path = directory / f"{name}.dist"
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
                values.append(_clamp_s16(int(word, 0)))
            except ValueError:
                raise ValueError(f"{path}: {word!r} is not an integer") from None
            if len(values) > DIST_MAX:
                raise ValueError(f"{path}: too much data (more than {DIST_MAX} values)")
    if not values:
        raise ValueError(f"{path}: no values")
    return tuple(values)
