"""netem's value syntax: times, percentages, rates, sizes and C-style integers.

The rules follow iproute2 (`get_time64`, `parse_percent`/`get_percent`, `get_rate64`,
`get_size`, `get_u32`/`get_s32`/`get_u64`), because researchers paste `tc netem` lines and
expect the same numbers. Each parser returns the value or raises `ValueError`; the grammar
turns that into a `NetemSpecError` naming the field and the word.

Every value must fit the kernel field it travels in. Where tc rejects an out-of-range value we
reject it too; where tc converts a double to an integer that cannot hold it (C leaves that
undefined: the kernel gets garbage), we reject it as well, with the field's limit.
"""

from __future__ import annotations

import re

U32_MAX = 0xFFFFFFFF
U64_MAX = 2**64 - 1
S32_MIN, S32_MAX = -(2**31), 2**31 - 1
S64_MAX = 2**63 - 1

# No sensible number is this long; refusing longer words first keeps parsing instant and
# avoids Python's 4300-digit int() limit, whose message would puzzle a netem user.
MAX_NUMBER_LENGTH = 100

# The part of a word that C's strtod consumes (decimal forms only, ASCII digits as in the C
# locale; hex floats, "inf" and "nan" are rejected on purpose: they are never what a user
# means by a delay or a rate).
_FLOAT_PREFIX = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

_ASCII_DIGITS = frozenset("0123456789")

# strtol/strtoul with base 0 ("0x10" is hex, "010" octal) and with base 10.
_C_INTEGER = {
    0: re.compile(r"([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)"),
    10: re.compile(r"([+-]?)([0-9]+)"),
}

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


def _check_length(word: str) -> None:
    if len(word) > MAX_NUMBER_LENGTH:
        raise ValueError(f"a number of {len(word)} characters; at most {MAX_NUMBER_LENGTH}")


def split_number(word: str) -> tuple[float, str]:
    """Split `word` like strtod: the leading decimal number and the rest (the unit).

    The number may be +-inf when its exponent is too large (strtod's HUGE_VAL); callers
    check it against the range of their field.
    """
    _check_length(word)
    match = _FLOAT_PREFIX.match(word)
    if match is None:
        raise ValueError(f"{word!r} does not start with a number")
    return float(match.group()), word[match.end():]


def starts_with_digit(word: str) -> bool:
    """tc's NEXT_IS_NUMBER: an optional number is taken only if it starts with a digit.

    C's isdigit() knows only 0-9; str.isdigit() would also take '١' or '²'.
    """
    return word[:1] in _ASCII_DIGITS


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
    """A time as iproute2 >= 6.9 reads it; a bare number is nanoseconds. Negative is an error.

    netem's times are s64 nanoseconds (about 292 years); larger ones are refused.
    """
    value = _scaled(word, _TIME_UNITS_NS, "time")
    if value < 0:
        raise ValueError("negative time")
    if value > S64_MAX:
        raise ValueError(f"above {S64_MAX} ns, the most a 64-bit time holds (about 292 years)")
    return int(value)


def parse_percent(word: str) -> float:
    """A probability as `parse_percent`: "10%" or "10" both mean 0.10; must lie in [0, 1]."""
    value, suffix = split_number(word)
    if suffix not in ("", "%"):
        raise ValueError(f"bad percent suffix {suffix!r}")
    fraction = value / 100.0
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("percent outside 0..100")
    return fraction + 0.0  # "-0" is accepted, as by tc; + 0.0 stores it as 0.0, not -0.0


def parse_positive_decimal(word: str) -> float:
    """A plain decimal number above 0 (no unit), e.g. a mean burst length or a stretch factor."""
    value, rest = split_number(word)
    if rest:
        raise ValueError(f"unexpected {rest!r} after the number")
    if not 0 < value < 1e12:
        raise ValueError("must be a number above 0 (and below 1e12)")
    return value


def probability_to_u32(fraction: float) -> int:
    """netem carries probabilities as u32 with 100% = 0xFFFFFFFF (`set_percent`: rint)."""
    return int(round(fraction * U32_MAX))


def parse_rate_bytes_per_s(word: str) -> int:
    """A rate as `get_rate64`: bits/s unless a unit says otherwise (`Mbps` is megaBYTES/s).

    The kernel gets a u64 of bytes/s (TCA_NETEM_RATE64); larger rates are refused.
    """
    if "%" in word:
        raise ValueError("a rate in % of the device speed needs a network device; give an absolute rate")
    value = _scaled(word, _RATE_UNITS_BITS, "rate")
    if value < 0:
        raise ValueError("negative rate")
    if value / 8 > U64_MAX:
        raise ValueError(f"above {U64_MAX} bytes/s, the most netem's 64-bit rate holds")
    return int(value / 8)


def parse_size(word: str) -> int:
    """A size as `get_size` (used by `limit`): "1k" is 1024. Must fit a u32."""
    value = _scaled(word, _SIZE_UNITS, "size")
    if value < 0 or value > U32_MAX:
        raise ValueError(f"size out of range 0..{U32_MAX}")
    return int(value)


def parse_c_integer(word: str, *, low: int, high: int, base: int = 0) -> int:
    """An integer as strtol/strtoul: base 0 reads "0x10" as hex and "010" as octal; base 10 only decimal."""
    _check_length(word)
    match = _C_INTEGER[base].fullmatch(word)
    if match is None:
        raise ValueError(f"{word!r} is not an integer")
    sign, digits = match.groups()
    if base == 0 and digits[:2].lower() == "0x":
        value = int(digits[2:], 16)
    elif base == 0 and digits.startswith("0") and len(digits) > 1:
        value = int(digits[1:], 8)
    else:
        value = int(digits, 10)
    if sign == "-":
        value = -value
    if not low <= value <= high:
        raise ValueError(f"out of range {low}..{high}")
    return value
