"""The PHY spec grammar, shared by `--phy "..."`, `--stage "phy ..."` and Python.

A spec is a list of words in any order; every word is optional except `snr`:

    mimo NtxNr | siso          antennas (default mimo 2x2; siso = mimo 1x1)
    awgn | rayleigh | rician K  channel (default rayleigh); K is the Rician K-factor, linear
                                (`rician 3`) or in dB (`rician 5dB`); fading is block fading,
                                one channel draw per datagram (per sample in the analog face)
    snr X[dB]                   average SNR per receive antenna = total transmit power / noise
                                power (E|h|^2 = 1), -10 .. 40 dB
    ldpc R | uncoded            5G NR LDPC at code rate R (`1/2`, `2/3`, `0.75`; 0.2 .. 0.95;
                                default 1/2), or no FEC (CRC only)
    qpsk | 16qam | 64qam        modulation (default qpsk; `qam16`, `16-qam` also accepted)
    precoder svd | none         SVD precoding with CSI at the transmitter (default svd when
                                Nt > 1) or none (Nt streams at power 1/Nt each)
    power waterfill | equal     power over the SVD eigenmodes (default waterfill); modes that
                                water-filling switches off carry no symbols (rank adaptation)
    detector lmmse | zf         linear detector at the receiver (default lmmse)
    csi-error S2                channel-estimate error variance: both ends see H + CN(0, S2)
                                (0 .. 1, default 0; seed 002 uses 0.1)
    iterations N                LDPC belief-propagation iterations (1 .. 100, default 20)
    decoder layered | bp | sionna
                                LDPC decoder: layered normalized min-sum (numba), batched
                                (default; BLER checked against bp on the same LLRs), the `ldpc`
                                package's compiled product-sum BP (validated against Sionna's)
                                or Sionna's LDPC5GDecoder

Example: `mimo 2x2 rayleigh snr 6dB ldpc 1/2 qpsk precoder svd detector lmmse csi-error 0.1`.
A bad word, a value out of range or an unsupported combination raises `PhySpecError` with a
one-line message naming the word. Numbers are plain decimals in ASCII digits (`6`, `-3.5`,
`1e-2`, or `A/B` where a rate is expected); no other exception escapes, whatever the text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from fractions import Fraction

SNR_RANGE_DB = (-10.0, 40.0)
RATE_RANGE = (0.2, 0.95)
MAX_ANTENNAS = 8
K_FACTOR_MAX = 1000.0  # linear; 30 dB
# No PHY value is longer; refusing longer ones first keeps parsing instant and messages short.
MAX_VALUE_LENGTH = 100

# What the grammar calls a number. Python's float() would also take '١٢', '1_0', 'infinity'
# and surrounding spaces, none of which a user means as an SNR.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

MODULATIONS = {"qpsk": 2, "4qam": 2, "qam4": 2, "16qam": 4, "qam16": 4, "16-qam": 4, "64qam": 6, "qam64": 6, "64-qam": 6}
MODULATION_NAMES = {2: "qpsk", 4: "16qam", 6: "64qam"}


class PhySpecError(ValueError):
    """A PHY spec that cannot be used; the message is one line naming the offending word."""


@dataclass(frozen=True)
class PhySpec:
    snr_db: float
    nt: int = 2
    nr: int = 2
    channel: str = "rayleigh"  # awgn | rayleigh | rician
    k_factor: float = 0.0  # linear Rician K
    code_rate: float | None = 0.5  # None = uncoded
    bits_per_symbol: int = 2
    precoder: str = "svd"  # svd | none
    power: str = "waterfill"  # waterfill | equal
    detector: str = "lmmse"  # lmmse | zf
    csi_error: float = 0.0
    iterations: int = 20
    decoder: str = "layered"  # layered | bp | sionna

    @property
    def modulation(self) -> str:
        return MODULATION_NAMES[self.bits_per_symbol]

    @property
    def snr_linear(self) -> float:
        return 10.0 ** (self.snr_db / 10.0)

    @property
    def noise_variance(self) -> float:
        return 1.0 / self.snr_linear

    def with_snr(self, snr_db: float) -> PhySpec:
        check_snr(snr_db, f"snr {snr_db}")
        return replace(self, snr_db=float(snr_db))

    def describe(self) -> str:
        """The canonical spec text (parses back to an equal spec)."""
        words = ["siso" if (self.nt, self.nr) == (1, 1) else f"mimo {self.nt}x{self.nr}"]
        if self.channel == "rician":
            words.append(f"rician {self.k_factor:g}")
        else:
            words.append(self.channel)
        words.append(f"snr {self.snr_db:g}dB")
        words.append("uncoded" if self.code_rate is None else f"ldpc {_rate_text(self.code_rate)}")
        words.append(self.modulation)
        if self.nt > 1:
            words += ["precoder", self.precoder]
            if self.precoder == "svd":
                words += ["power", self.power]
        words += ["detector", self.detector]
        if self.csi_error:
            words += ["csi-error", f"{self.csi_error:g}"]
        if self.code_rate is not None:
            words += ["iterations", str(self.iterations), "decoder", self.decoder]
        return " ".join(words)


def _rate_text(rate: float) -> str:
    frac = Fraction(rate).limit_denominator(16)
    return f"{frac.numerator}/{frac.denominator}" if abs(float(frac) - rate) < 1e-9 else f"{rate:g}"


def check_snr(snr_db: float, word: str) -> None:
    lo, hi = SNR_RANGE_DB
    if not (math.isfinite(snr_db) and lo <= snr_db <= hi):
        raise PhySpecError(f"{word!r}: SNR must lie in {lo:g} .. {hi:g} dB")


def _number(text: str, word: str) -> float:
    """A decimal, or a fraction A/B of two decimals; finite, and never -0.0."""
    parts = text.split("/", 1)
    if not all(_DECIMAL.fullmatch(part) for part in parts):
        raise PhySpecError(f"{word!r}: {text!r} is not a number")
    numbers = [float(part) for part in parts]
    if len(numbers) == 2 and numbers[1] == 0:
        raise PhySpecError(f"{word!r}: {text!r} divides by zero")
    value = numbers[0] / numbers[1] if len(numbers) == 2 else numbers[0]
    if not math.isfinite(value):
        raise PhySpecError(f"{word!r}: {text!r} is not a finite number")
    return value + 0.0  # turns -0.0 into 0.0


def _db_or_linear(text: str, word: str, *, default_db: bool) -> tuple[float, bool]:
    """(value, is_db) from '6dB', '6 dB' already joined, or '6'."""
    low = text.lower()
    if low.endswith("db"):
        return _number(text[:-2], word), True
    return _number(text, word), default_db


KEYWORDS = ("mimo", "siso", "awgn", "rayleigh", "rician", "snr", "ldpc", "uncoded", "precoder", "power",
            "detector", "csi-error", "iterations", "decoder", *MODULATIONS)


def choice(keyword: str, value: str, options: tuple[str, ...], aliases: dict[str, str] | None = None) -> str:
    """`value` (lower-cased, aliases resolved) if it is one of `options`, else a one-line error."""
    resolved = (aliases or {}).get(value.lower(), value.lower())
    if resolved not in options:
        raise PhySpecError(f"'{keyword} {resolved}': choose {' or '.join(options)}")
    return resolved


def parse_phy_spec(text: str) -> PhySpec:
    """Parse the grammar above; raises PhySpecError (one line) on any problem."""
    tokens = text.replace(",", " ").split()
    # "6 dB" -> "6dB"
    merged: list[str] = []
    for token in tokens:
        if token.lower() == "db" and merged:
            merged[-1] += "dB"
        else:
            merged.append(token)
    tokens = merged
    if not tokens:
        raise PhySpecError("empty PHY spec (at least 'snr X')")
    seen: set[str] = set()
    values: dict = {}
    i = 0

    def take(word: str) -> str:
        nonlocal i
        if i + 1 >= len(tokens):
            raise PhySpecError(f"{word!r} needs a value")
        i += 1
        value = tokens[i]
        if len(value) > MAX_VALUE_LENGTH:
            raise PhySpecError(
                f"'{word} {value[:20]}...': a value of {len(value)} characters (at most {MAX_VALUE_LENGTH})"
            )
        return value

    def once(key: str, word: str) -> None:
        if key in seen:
            raise PhySpecError(f"{word!r}: {key} given twice")
        seen.add(key)

    while i < len(tokens):
        word = tokens[i]
        low = word.lower()
        if low == "mimo":
            once("antennas", word)
            value = take(word)
            m = re.fullmatch(r"([0-9]+)[xX×]([0-9]+)", value)
            if not m:
                raise PhySpecError(f"'mimo {value}': antennas must be NtxNr, e.g. 2x2")
            nt, nr = int(m.group(1)), int(m.group(2))
            if not (1 <= nt <= MAX_ANTENNAS and 1 <= nr <= MAX_ANTENNAS):
                raise PhySpecError(f"'mimo {value}': 1 .. {MAX_ANTENNAS} antennas per side")
            values["nt"], values["nr"] = nt, nr
        elif low == "siso":
            once("antennas", word)
            values["nt"], values["nr"] = 1, 1
        elif low in ("awgn", "rayleigh"):
            once("channel", word)
            values["channel"] = low
        elif low == "rician":
            once("channel", word)
            value = take(word)
            k, is_db = _db_or_linear(value, f"rician {value}", default_db=False)
            if is_db:  # 10 ** (K / 10) overflows from about 3083 dB; anything above 30 dB is refused anyway
                k = 10 ** (k / 10) if k <= 10 * math.log10(K_FACTOR_MAX) else math.inf
            if not (0 <= k <= K_FACTOR_MAX):
                raise PhySpecError(f"'rician {value}': K-factor must lie in 0 .. 1000 (linear) or -inf .. 30 dB")
            values["channel"], values["k_factor"] = "rician", k
        elif low == "snr":
            once("snr", word)
            value = take(word)
            snr, _ = _db_or_linear(value, f"snr {value}", default_db=True)
            check_snr(snr, f"snr {value}")
            values["snr_db"] = snr
        elif low == "ldpc":
            once("coding", word)
            value = take(word)
            rate = _number(value, f"ldpc {value}")
            lo, hi = RATE_RANGE
            if not (lo <= rate <= hi):
                raise PhySpecError(f"'ldpc {value}': code rate must lie in {lo:g} .. {hi:g}")
            values["code_rate"] = rate
        elif low == "uncoded":
            once("coding", word)
            values["code_rate"] = None
        elif low in MODULATIONS:
            once("modulation", word)
            values["bits_per_symbol"] = MODULATIONS[low]
        elif low == "precoder":
            once("precoder", word)
            values["precoder"] = choice(low, take(word), ("svd", "none"))
        elif low == "power":
            once("power", word)
            values["power"] = choice(low, take(word), ("waterfill", "equal"),
                                     {"waterfilling": "waterfill", "water-filling": "waterfill"})
        elif low == "detector":
            once("detector", word)
            values["detector"] = choice(low, take(word), ("lmmse", "zf"), {"mmse": "lmmse"})
        elif low in ("csi-error", "csi_error"):
            once("csi-error", word)
            value = take(word)
            err = _number(value, f"csi-error {value}")
            if not (0 <= err <= 1):
                raise PhySpecError(f"'csi-error {value}': error variance must lie in 0 .. 1")
            values["csi_error"] = err
        elif low == "iterations":
            once("iterations", word)
            value = take(word)
            if not re.fullmatch("[0-9]+", value) or not (1 <= int(value) <= 100):
                raise PhySpecError(f"'iterations {value}': an integer in 1 .. 100")
            values["iterations"] = int(value)
        elif low == "decoder":
            once("decoder", word)
            values["decoder"] = choice(low, take(word), ("layered", "bp", "sionna"))
        else:
            shown = repr(word) if len(word) <= MAX_VALUE_LENGTH else f"{word[:20]!r}... ({len(word)} characters)"
            raise PhySpecError(f"unknown PHY word {shown} (known: {', '.join(sorted(set(KEYWORDS)))})")
        i += 1

    if "snr_db" not in values:
        raise PhySpecError("PHY spec needs 'snr X' (e.g. snr 6dB)")
    nt, nr = values.get("nt", 2), values.get("nr", 2)
    if nt == 1 and "precoder" not in values:
        values["precoder"] = "none"
    precoder = values.get("precoder", "svd")
    if "power" in values and precoder != "svd":
        raise PhySpecError(f"'power {values['power']}' needs 'precoder svd' (power allocation is over SVD eigenmodes)")
    if precoder == "svd" and nt == 1:
        raise PhySpecError("'precoder svd' needs more than one transmit antenna")
    if precoder == "none" and nt > nr:
        raise PhySpecError(f"'precoder none' with mimo {nt}x{nr}: more streams than receive antennas; use precoder svd")
    if values.get("channel") == "awgn" and nt != nr:
        raise PhySpecError(f"'awgn' with mimo {nt}x{nr}: the AWGN channel is H = I, which needs Nt = Nr")
    if values.get("code_rate", 0.5) is None and ("iterations" in values or "decoder" in values):
        raise PhySpecError("'uncoded' cannot take 'iterations' or 'decoder'")
    return PhySpec(**values)


def stage_options_to_spec(options: dict[str, str]) -> str:
    """`--stage "phy snr=6dB mimo=2x2 channel=rayleigh ldpc=1/2 mod=qpsk ..."` -> spec text.

    `spec=...` may carry a whole spec with '+' or '_' for spaces: `spec=mimo_2x2_snr_6dB`.
    """
    words: list[str] = []
    for key, value in options.items():
        if key == "spec":
            words += value.replace("+", " ").replace("_", " ").split()
        elif key in ("channel", "mod", "modulation"):
            words.append(value)
        elif key in ("uncoded", "siso"):
            words.append(key)
        else:
            words += [key, value]
    return " ".join(words)
