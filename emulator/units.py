"""netem's value syntax: times, percentages, rates, sizes and C-style integers.

The rules follow iproute2 (`get_time64`, `parse_percent`/`get_percent`, `get_rate64`,
`get_size`, `get_u32`/`get_s32`), because researchers paste `tc netem` lines and expect the
same numbers. Each parser returns the value or raises `ValueError`; the grammar turns that
into a `NetemSpecError` naming the field and the word.
"""

from __future__ import annotations

import re

U32_MAX = 0xFFFFFFFF
S32_MIN, S32_MAX = -(2**31), 2**31 - 1

# The part of a word that C's strtod consumes (decimal forms only; hex floats, "inf" and
# "nan" are rejected on purpose: they are never what a user means by a delay or a rate).
_FLOAT_PREFIX = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

_TIME_UNITS_NS = {
    "s": 1e9, "sec": 1e9, "secs": 1e9,
    "ms": 1e6, "msec": 1e6, "msecs": 1e6,
    "us": 1e3, "usec": 1e3, "usecs": 1e3,
    "ns": 1.0, "nsec": 1.0, "nsecs": 1.0,
}

# get_rate64's suffixes, compared case-insensitively; values are bits per unit.
_RATE_UNITS_BITS = {
    "bit": 1.0, "kibit": 1024.0, "kbit": 1e3, "mibit": 1024.0**2, "mbit": 1e6,
    "gibit": 1024.0**3, "gbit": 1e9, "tibit": 1024.0**4, "tbit": 1e12,
    "bps": 8.0, "kibps": 8 * 1024.0, "kbps": 8e3, "mibps": 8 * 1024.0**2, "mbps": 8e6,
    "gibps": 8 * 1024.0**3, "gbps": 8e9, "tibps": 8 * 1024.0**4, "tbps": 8e12,
}

_SIZE_UNITS = {
    "b": 1.0, "k": 1024.0, "kb": 1024.0, "kbit": 1024.0 / 8,
    "m": 1024.0**2, "mb": 1024.0**2, "mbit": 1024.0**2 / 8,
    "g": 1024.0**3, "gb": 1024.0**3, "gbit": 1024.0**3 / 8,
}


def split_number(word: str) -> tuple[float, str]:
    """Split `word` like strtod: the leading decimal number and the rest (the unit)."""
    match = _FLOAT_PREFIX.match(word)
    if match is None:
        raise ValueError(f"{word!r} does not start with a number")
    return float(match.group()), word[match.end():]


def starts_with_digit(word: str) -> bool:
    """tc's NEXT_IS_NUMBER: an optional number is taken only if it starts with a digit."""
    return bool(word) and word[0].isdigit()


def _scaled(word: str, units: dict[str, float], kind: str) -> float:
    """The number in `word` times the factor of its unit suffix (none: factor 1)."""
    value, unit = split_number(word)
    if unit:
        scale = units.get(unit.lower())
        if scale is None:
            raise ValueError(f"unknown {kind} unit {unit!r}")
        value *= scale
    return value


def parse_time_ns(word: str) -> int:
    """A time as iproute2 >= 6.9 reads it; a bare number is nanoseconds. Negative is an error."""
    value = _scaled(word, _TIME_UNITS_NS, "time")
    if value < 0:
        raise ValueError("negative time")
    return int(value)


def parse_percent(word: str) -> float:
    """A probability as `parse_percent`: "10%" or "10" both mean 0.10; must lie in [0, 1]."""
    value, suffix = split_number(word)
    if suffix not in ("", "%"):
        raise ValueError(f"bad percent suffix {suffix!r}")
    fraction = value / 100.0
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("percent outside 0..100")
    return fraction


def probability_to_u32(fraction: float) -> int:
    """netem carries probabilities as u32 with 100% = 0xFFFFFFFF (`set_percent`: rint)."""
    return int(round(fraction * U32_MAX))


def parse_rate_bytes_per_s(word: str) -> int:
    """A rate as `get_rate64`: bits/s unless a unit says otherwise (`Mbps` is megaBYTES/s)."""
    if "%" in word:
        raise ValueError("a rate in % of the device speed needs a network device; give an absolute rate")
    value = _scaled(word, _RATE_UNITS_BITS, "rate")
    if value < 0:
        raise ValueError("negative rate")
    return int(value / 8)


def parse_size(word: str) -> int:
    """A size as `get_size` (used by `limit`): "1k" is 1024. Must fit a u32."""
    value = _scaled(word, _SIZE_UNITS, "size")
    if value < 0 or value > U32_MAX:
        raise ValueError("size out of range")
    return int(value)


def parse_c_integer(word: str, *, low: int, high: int) -> int:
    """An integer as strtol/strtoul with base 0: "0x10" is hex, "010" is octal."""
    match = re.fullmatch(r"([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", word)
    if match is None:
        raise ValueError(f"{word!r} is not an integer")
    sign, digits = match.groups()
    if digits[:2].lower() == "0x":
        value = int(digits[2:], 16)
    elif digits.startswith("0") and len(digits) > 1:
        value = int(digits[1:], 8)
    else:
        value = int(digits, 10)
    if sign == "-":
        value = -value
    if not low <= value <= high:
        raise ValueError(f"{word!r} out of range")
    return value
