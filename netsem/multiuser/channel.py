"""The downlink each user sees: seed 000's AWGN, Rician and Rayleigh single-antenna channels,
from the analog PHY face (`netsem.phy.analog`).

The transmitter normalises the common and the private features separately to unit average
power per complex symbol (`transmit`). User k receives its group's common feature and its own
private one through its own channel: one block-fading draw h_k per image (the analog face's
`draw_channel`: h ~ CN(0, 1) for Rayleigh; sqrt(r / (r + 1)) + sqrt(1 / (r + 1)) CN(0, 1) for
Rician factor r), its own noise CN(0, N0) with N0 = 10^(-SNR / 10), and LMMSE equalisation with
perfect CSI at the receiver: exactly `AnalogChannel("siso <channel> snr X detector lmmse")`
on unit-power input (tested: identical outputs for the same generator). It is written out here
without the analog face's own power normalisation because a receiver on the network applies
it to what arrived, where lost symbols are holes that must not change the others' power.

Different groups and users use orthogonal resources (each stream its own symbols). The seed's
(4)-(5) write every group's and every user's signal superposed in the same symbol with no power
allocation or interference cancellation; we do not model that interference.

Rician: the seed's figure says mu = 1, but with its own definition mu = sqrt(r / (r + 1)) that
is r = infinity, i.e. no fading (the AWGN figure); we read it as Rician factor r = 1
(mu = sigma = 1 / sqrt(2)).
"""

from __future__ import annotations

import torch

from netsem.phy.analog import (
    complex_to_real,
    draw_channel,
    normalize_power,
    real_to_complex,
)

CHANNELS = ("awgn", "rician", "rayleigh")
RICIAN_FACTOR = 1.0


def phy_spec_text(channel: str, snr_db: float) -> str:
    """The analog face's spec for the same channel (for reports and the equivalence test)."""
    word = f"rician {RICIAN_FACTOR:g}" if channel == "rician" else channel
    return f"siso {word} snr {snr_db:g}dB detector lmmse"


def transmit(features: torch.Tensor) -> torch.Tensor:
    """Real features (N, 2L) -> the transmitted symbols, unit average power per complex symbol."""
    return complex_to_real(normalize_power(real_to_complex(features)))


def receive(symbols: torch.Tensor, channel: str, snr_db: float, generator: torch.Generator | None = None,
            erased: torch.Tensor | None = None) -> torch.Tensor:
    """What each row's receiver estimates of its transmitted symbols (N, 2L), one channel draw
    per row. `erased` (N, L) bool marks symbols that never arrived: they come out as 0."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r} (choose {', '.join(CHANNELS)})")
    z = real_to_complex(symbols)
    batch, n = z.shape
    n0 = 10 ** (-snr_db / 10)
    with torch.no_grad():
        h = draw_channel(batch, 1, 1, channel, RICIAN_FACTOR, generator)[:, 0, 0]
        noise = torch.complex(torch.randn((batch, 1, n), generator=generator),
                              torch.randn((batch, 1, n), generator=generator))[:, 0, :] * (n0 / 2) ** 0.5
        w = h.conj() / (h.abs().pow(2) + n0)
    estimate = w[:, None] * (h[:, None] * z + noise)
    if erased is not None:
        estimate = torch.where(erased, torch.zeros((), dtype=estimate.dtype), estimate)
    return complex_to_real(estimate)
