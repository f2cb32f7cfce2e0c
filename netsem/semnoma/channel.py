"""The uplink: K users' symbols superposed on the same resource, one base station.

    y = sum_k g_k s_k + n,   g_k = h_k sqrt(a_k P),   n ~ CN(0, 1),   P = 10^(SNR / 10)

s_k: user k's unit-power complex symbols (L per image); a_k: its power coefficient (the
shares of the received power budget, default near 0.8 / far 0.2, summing to 1); h_k: its
channel, 1 for AWGN or one CN(0, 1) block-fading draw per image for Rayleigh, known to the
base station (perfect CSI). SNR is the received SNR of all users together on AWGN, so user k
alone sees SNR + 10 log10 a_k (+ its fading gain).

Successive interference cancellation (`Uplink.order`): per image the users are decoded from
the strongest received power |g_k|^2 down. At its turn user k's estimate is the MMSE-scaled
r_k = conj(g_k) y' / (|g_k|^2 + 1 + I_k), where y' is y with the earlier users' re-encoded
estimates subtracted and I_k = sum of |g_j|^2 over the users still to come (the interference
it meets). `context` gives every user (SNR_k, 10 log10(1 + I_k), |h_k|^2 in dB): what the
adaptive modules see. OMA (the teacher's channel, `orthogonal`): each user alone on its own
resource, same g_k and noise, I_k = 0.

Draws come from a torch.Generator: the fading first (if any), then the noise, in that order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from netsem.semnoma.config import CHANNELS, NEAR_FAR, check_air  # noqa: F401  (CHANNELS, NEAR_FAR: re-exported)



def _cn(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    re = torch.randn(shape, generator=generator)
    im = torch.randn(shape, generator=generator)
    return torch.complex(re, im) * 0.5**0.5


@dataclass
class Uplink:
    """One channel realisation for a batch of B images per user."""

    fading: torch.Tensor  # h (B, K) complex
    gains: torch.Tensor  # g (B, K) complex
    noise: torch.Tensor  # n (B, L) complex, CN(0, 1)

    @classmethod
    def draw(cls, snr_db: torch.Tensor, symbols: int, channel: str, powers: tuple[float, ...] = NEAR_FAR,
             generator: torch.Generator | None = None) -> Uplink:
        """`snr_db` (B,): one SNR per image (its users share it)."""
        check_air(channel, powers)
        batch, users = snr_db.shape[0], len(powers)
        if channel == "awgn":
            h = torch.ones(batch, users, dtype=torch.complex64)
        else:
            h = _cn((batch, users), generator)
        amplitude = (torch.as_tensor(powers, dtype=torch.float32)[None, :] * 10 ** (snr_db[:, None] / 10)).sqrt()
        return cls(h, h * amplitude, _cn((batch, symbols), generator))

    @property
    def users(self) -> int:
        return self.gains.shape[1]

    def order(self) -> torch.Tensor:
        """(B, K): user indices in SIC order (strongest received power first)."""
        return torch.argsort(self.gains.abs(), dim=1, descending=True, stable=True)

    def interference(self) -> torch.Tensor:
        """I_k (B, K): received power of the users decoded after k."""
        power = self.gains.abs().pow(2)
        order = self.order()
        sorted_power = power.gather(1, order)
        after = sorted_power.flip(1).cumsum(1).flip(1) - sorted_power  # sum over later positions
        return torch.zeros_like(power).scatter(1, order, after)

    def context(self, orthogonal: bool = False) -> torch.Tensor:
        """(B, K, 3) adaptive-module inputs, see the module docstring."""
        power = self.gains.abs().pow(2)
        interference = torch.zeros_like(power) if orthogonal else self.interference()
        return torch.stack([10 * torch.log10(power.clamp_min(1e-6)) / 20,
                            10 * torch.log10(1 + interference) / 20,
                            10 * torch.log10(self.fading.abs().pow(2).clamp_min(1e-6)) / 10], dim=2)

    def superpose(self, symbols: torch.Tensor) -> torch.Tensor:
        """(B, K, L) complex -> y (B, L)."""
        return (self.gains[:, :, None] * symbols).sum(1) + self.noise

    def orthogonal(self, symbols: torch.Tensor) -> torch.Tensor:
        """OMA: each user's MMSE estimate on its own resource (same g_k and noise), (B, K, L)."""
        g = self.gains[:, :, None]
        return g.conj() * (g * symbols + self.noise[:, None, :]) / (g.abs().pow(2) + 1)


def mmse(received: torch.Tensor, gain: torch.Tensor, interference: torch.Tensor) -> torch.Tensor:
    """conj(g) y / (|g|^2 + 1 + I) per image: gain, interference (B,), received (B, L)."""
    g = gain[:, None]
    return g.conj() * received / (g.abs().pow(2) + 1 + interference[:, None])

