"""Fuzz the spec parsers a user types into: netem words, PHY specs and `--stage` options.

Specs are built from each grammar's own keywords (netem's, with tc's prefixes; the PHY words
and their choices) followed by hostile number words: huge exponents (`1e400`), `-0`, hex and
octal, digit strings past Python's 4300-digit int() limit, nan/inf spellings, every unit
suffix, empty words, non-ASCII digits (`١٢`, `²`, `１２`), percent signs, fractions with a
zero denominator, control characters. Each spec must give a parsed spec or the parser's own
error (`NetemSpecError`, `PhySpecError`, or the `ValueError` of `parse_stage_option`); any other
exception is a bug. The slowest spec is reported too: long words must be refused at once.

    python tools/fuzz_specs.py                  # 200 000 specs through each parser
    python tools/fuzz_specs.py -n 1000000 --seed 3

Prints the counts by outcome; exit status 1 when another exception escaped.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from emulator.grammar import CORRECT_WORD, KEYWORDS, NetemSpecError, parse_netem
from emulator.stages import parse_stage_option
from netsem.phy.spec import KEYWORDS as PHY_KEYWORDS
from netsem.phy.spec import PhySpecError, parse_phy_spec, stage_options_to_spec

NETEM_KEYWORDS = tuple(name for name, _ in KEYWORDS)
NETEM_SUBWORDS = ("random", "state", "gemodel", CORRECT_WORD, "distribution", "packets", "bytes", "help", "burst", "payload",
                  "frame", "frame-checksum", "in-order", "link-trace", "packet-trace", "once", "stretch")
DISTRIBUTIONS = ("normal", "pareto", "paretonormal", "uniform", "nosuch")
PHY_CHOICES = {
    "precoder": ("svd", "none"), "power": ("waterfill", "equal", "water-filling"),
    "detector": ("lmmse", "zf", "mmse"), "decoder": ("bp", "sionna"),
}
PHY_NUMBER_WORDS = ("rician", "snr", "ldpc", "csi-error", "iterations")

SUFFIXES = (
    "s", "sec", "secs", "ms", "msec", "msecs", "us", "usec", "usecs", "ns", "nsec", "nsecs", "MS",
    "%", "%%", "bit", "kbit", "Mbit", "gibit", "tbit", "TIBIT", "bps", "Mbps", "KiBps", "TBps",
    "k", "kb", "m", "g", "gbit", "b", "dB", "db", "/2", "/0", "x2", "parsecs", "M", "\x00", "١",
)
ODD_WORDS = (
    "-0", "+0", "0", "-0.0", "0.", ".", "-", "+", "e", "1e", "1e+", "1.2.3", "0x", "0x10", "0X1f",
    "0xffffffffffffffffffff", "010", "08", "0b1", "1_000", "nan", "NaN", "-nan", "inf", "-inf", "+inf",
    "Infinity", "infinity", "INF", "1e309", "-1e309", "1e400", "-1e400", "1e-400", "4294967295",
    "4294967296", "2147483647", "2147483648", "-2147483648", "-2147483649", "18446744073709551615",
    "18446744073709551616", "9223372036854775807", "9223372036854775808", "9.3e18", "%", "50%%", "%50",
    "101%", "100%", "100.0000001", "1/2", "1/0", "0/0", "1e400/1e400", "1/1e-400", "2x2", "0x0", "9x9",
    "99999999999999999999x2", "", " ", "\n1", "1\n", "\x00", "1\x00", "١٢", "٣", "²", "½", "１２", "߁",
    "1١", "৫ms", "Ⅻ",
)
LONG_LENGTHS = (20, 99, 100, 101, 255, 256, 4300, 4301, 5000, 20000)


def ordinary_number(rng: random.Random) -> str:
    """A number a user might type: mostly within the ranges of the fields."""
    return rng.choice((str(rng.randint(0, 100)), f"{rng.uniform(0, 50):.{rng.randint(0, 3)}f}"))


def number_word(rng: random.Random) -> str:
    """One number word: an ordinary one, a huge exponent, an odd spelling or a long digit run."""
    kind = rng.random()
    if kind < 0.5:
        word = ordinary_number(rng)
    elif kind < 0.65:
        exponent = rng.choice((rng.randint(0, 30), rng.randint(290, 330), rng.randint(4000, 10**6)))
        mantissa = rng.choice(("", "-", "+")) + rng.choice(("1", "9.9", "0", ".5"))
        word = f"{mantissa}e{rng.choice(('', '-', '+'))}{exponent}"
    elif kind < 0.92:
        word = rng.choice(ODD_WORDS)
    else:
        word = rng.choice(("1", "9", "0", "0x", "-")) + rng.choice("0123456789") * rng.choice(LONG_LENGTHS)
    if rng.random() < 0.3:
        suffix = rng.choice(SUFFIXES)
        word += suffix.upper() if rng.random() < 0.1 else suffix
    return word


def netem_spec(rng: random.Random) -> list[str] | str:
    """netem words from tc's keywords (or their prefixes) and hostile numbers; a list or one string.

    One spec in five has only ordinary numbers, so that the paths of valid specs are taken too.
    """
    number_word = _number_source(rng)
    words: list[str] = []
    for keyword in rng.sample(NETEM_KEYWORDS, rng.randint(1, 4)):
        words.append(keyword[: rng.randint(1, len(keyword))] if rng.random() < 0.2 else keyword)
        if keyword in ("loss", "drop") and rng.random() < 0.7:
            words.append(rng.choice(("random", "state", "gemodel")))
        elif keyword == "distribution" or (keyword == "slot" and rng.random() < 0.3):
            words += (["distribution"] if keyword == "slot" else []) + [rng.choice(DISTRIBUTIONS)]
        words += [number_word(rng) for _ in range(rng.choice((0, 1, 1, 1, 2, 2, 3, 5)))]
        if rng.random() < 0.15:
            words.append(rng.choice(NETEM_SUBWORDS))
            words += [number_word(rng) for _ in range(rng.randint(0, 2))]
    return words if rng.random() < 0.5 else " ".join(words)


def phy_spec(rng: random.Random) -> str:
    """A PHY spec from its keywords, choices and hostile numbers (usually with an `snr`)."""
    number_word = _number_source(rng)
    words: list[str] = []
    for keyword in rng.sample(PHY_KEYWORDS, rng.randint(1, 5)):
        words.append(keyword.upper() if rng.random() < 0.05 else keyword)
        if keyword == "mimo":
            words.append(f"{number_word(rng)}x{number_word(rng)}" if rng.random() < 0.5 else number_word(rng))
        elif keyword in PHY_CHOICES:
            words.append(rng.choice((*PHY_CHOICES[keyword], number_word(rng))))
        elif keyword in PHY_NUMBER_WORDS:
            words.append(number_word(rng))
            if rng.random() < 0.1:
                words.append("dB")
    if rng.random() < 0.8 and "snr" not in words:
        words += ["snr", number_word(rng)]
    return rng.choice((" ", ", ", "  ")).join(words)


def _number_source(rng: random.Random) -> Callable[[random.Random], str]:
    return ordinary_number if rng.random() < 0.2 else number_word


def stage_option(rng: random.Random) -> str:
    """`--stage "phy key=value ..."` text, keys from the PHY words plus the stage-only ones."""
    keys = (*PHY_KEYWORDS, "spec", "channel", "mod")
    pairs = [f"{rng.choice(keys)}={number_word(rng)}" for _ in range(rng.randint(0, 5))]
    return " ".join(["phy", *pairs])


class StageOptionError(Exception):
    """`parse_stage_option`'s ValueError, told apart from a ValueError escaping the PHY parser."""


def _parse_stage(text: str) -> None:
    try:
        _, options = parse_stage_option(text)
    except ValueError as error:
        raise StageOptionError(str(error)) from None
    parse_phy_spec(stage_options_to_spec(options))


@dataclass(frozen=True)
class Target:
    name: str
    make: Callable[[random.Random], object]
    parse: Callable[[object], object]
    expected: tuple[type[Exception], ...]  # the parser's own, clear errors


TARGETS = (
    Target("parse_netem", netem_spec, parse_netem, (NetemSpecError,)),
    Target("parse_phy_spec", phy_spec, parse_phy_spec, (PhySpecError,)),
    Target("--stage phy", stage_option, _parse_stage, (PhySpecError, StageOptionError)),
)


@dataclass
class FuzzResult:
    outcomes: dict[str, Counter] = field(default_factory=dict)  # target -> "parsed" / error type -> count
    escaped: Counter = field(default_factory=Counter)  # "target: Type" -> count
    examples: dict[str, str] = field(default_factory=dict)  # "target: Type" -> first input and message
    slowest_s: float = 0.0
    slowest_input: str = ""

    @property
    def ok(self) -> bool:
        return not self.escaped


def fuzz(count: int, seed: int, targets: tuple[Target, ...] = TARGETS) -> FuzzResult:
    """`count` specs through each target; deterministic for a seed."""
    result = FuzzResult()
    for name in DISTRIBUTIONS[:3]:  # the built-in tables are generated on first use: not while timing
        parse_netem(f"delay 1ms 1ms distribution {name}")
    for target in targets:
        rng = random.Random(f"{seed}/{target.name}")
        outcomes = result.outcomes.setdefault(target.name, Counter())
        for _ in range(count):
            spec = target.make(rng)
            start = time.perf_counter()
            try:
                target.parse(spec)
                outcomes["parsed"] += 1
            except target.expected as error:
                outcomes[type(error).__name__] += 1
            except Exception as error:  # every other exception is what this tool looks for
                key = f"{target.name}: {type(error).__name__}"
                outcomes[f"ESCAPED {type(error).__name__}"] += 1
                result.escaped[key] += 1
                result.examples.setdefault(key, f"{_shown(spec)} -> {error}")
            elapsed = time.perf_counter() - start
            if elapsed > result.slowest_s:
                result.slowest_s, result.slowest_input = elapsed, f"{target.name}: {_shown(spec)}"
    return result


def _shown(spec: object) -> str:
    text = repr(spec)
    return text if len(text) <= 120 else f"{text[:120]}... ({len(text)} characters)"


def report(result: FuzzResult) -> str:
    lines = []
    for name, outcomes in result.outcomes.items():
        counts = ", ".join(f"{outcome} {n}" for outcome, n in outcomes.most_common())
        lines.append(f"{name:>15}: {sum(outcomes.values())} specs: {counts}")
    lines.append(f"slowest spec: {result.slowest_s * 1e3:.2f} ms ({result.slowest_input})")
    for key, n in result.escaped.most_common():
        lines.append(f"ESCAPED {key} x{n}, e.g. {result.examples[key]}")
    lines.append("ok: every spec parsed or gave its parser's error" if result.ok else "FAILED: exceptions escaped")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=200_000, help="specs per parser (default 200 000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = fuzz(args.count, args.seed)
    print(report(result))
    print(f"{time.perf_counter() - start:.1f} s")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
