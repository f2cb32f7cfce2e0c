"""Bursty loss described as people describe it: a mean loss rate and a mean burst length.

`loss burst L B` becomes netem's simple Gilbert model. In `loss gemodel p r 100% 0%` every
packet sent in Bad is lost and none in Good; Bad lasts a geometric number of packets with
mean 1 / r, so a burst (a run of consecutive losses) has mean length B = 1 / r, and the chain
spends p / (p + r) of the packets in Bad, the loss rate L. Hence

    r = 1 / B,    p = r L / (1 - L),

possible when p <= 1, i.e. L <= B / (B + 1). The same chain in the 4-state model is
`loss state p r` (p13 = p, p31 = r). The functions below also give the figures any
simple-Gilbert or 4-state configuration achieves, exactly, from the u32 values netem holds.
"""

from __future__ import annotations

from emulator.units import U32_MAX, probability_to_u32


def gilbert_parameters(mean_loss: float, mean_burst: float) -> tuple[float, float]:
    """(p, r) of `loss gemodel p r` for a mean loss rate (0..1) and a mean burst length (packets)."""
    if mean_burst < 1:
        raise ValueError(f"a mean burst of {mean_burst:g} packets: a burst is at least 1 packet")
    if not 0 <= mean_loss < 1:
        raise ValueError("the mean loss must lie in [0%, 100%)")
    r = 1.0 / mean_burst
    p = r * mean_loss / (1.0 - mean_loss)
    if p > 1:
        most = mean_burst / (mean_burst + 1)
        raise ValueError(f"a mean loss of {mean_loss:.4%} needs bursts longer than {mean_burst:g} packets "
                         f"(with bursts of {mean_burst:g}, at most {most:.4%})")
    return p, r


def quantized(fraction: float) -> float:
    """The probability netem actually holds for `fraction` (a u32 with 100% = 0xFFFFFFFF)."""
    return probability_to_u32(fraction) / U32_MAX


def gilbert_figures(p: float, r: float) -> tuple[float, float]:
    """(mean loss, mean burst length) that netem's simple Gilbert chain with p, r achieves."""
    p, r = quantized(p), quantized(r)
    return (p / (p + r) if p + r else 0.0), (1 / r if r else float("inf"))


def percent_word(fraction: float) -> str:
    """A probability as a tc word that parses back to the same u32 (10 significant digits)."""
    return f"{quantized(fraction) * 100:.10g}%"
