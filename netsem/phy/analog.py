"""The analog, differentiable PHY (torch): channels acting on real-valued feature symbols.

A codec's real features x [B, 2n] are paired into n complex symbols (consecutive pairs:
x[2i] + j x[2i+1]), normalised to unit average power per sample, sent over the same channels
as the digital face (AWGN, Rayleigh / Rician block fading, Nt x Nr MIMO with SVD precoding +
water-filling or equal power, ZF / LMMSE detection, CSI error CN(0, s2)), and unpaired back
into [B, 2n]. Every operation on x is differentiable; the channel draws are not (no grad).

`AnalogChannel(spec)` reads the same spec grammar as the digital stage (`ldpc`, modulation
and decoder words are ignored). Per sample one channel draw (block fading). SNR is total
transmit power over noise power per receive antenna. With ZF the output is the unbiased
estimate; with LMMSE it is the (biased) MMSE estimate, the MSE-optimal linear one. Eigenmodes
that water-filling switches off carry their symbols at zero power: those come out as 0.

NOMA (2 users, power-domain superposition, successive interference cancellation):
`noma_downlink` (one transmitter, two receivers; the near / strong user cancels the far
user's signal first) and `noma_uplink` (two transmitters, one receiver that decodes the
stronger user first). SIC uses a hard QAM decision (`sic="hard"`), perfect cancellation
(`"genie"`), or any callable (e.g. a learned decoder + re-encoder) giving the estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from netsem.phy.modem import qam_points
from netsem.phy.spec import PhySpec, parse_phy_spec


def real_to_complex(x: torch.Tensor) -> torch.Tensor:
    """[..., 2n] real -> [..., n] complex (pairs of consecutive values)."""
    if x.shape[-1] % 2:
        raise ValueError("real_to_complex needs an even number of features (pad first)")
    pairs = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2).to(torch.float32)
    return torch.complex(pairs[..., 0], pairs[..., 1])


def complex_to_real(z: torch.Tensor) -> torch.Tensor:
    return torch.stack([z.real, z.imag], dim=-1).reshape(*z.shape[:-1], 2 * z.shape[-1])


def normalize_power(z: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """Scale each sample (last dim) to average symbol power `power`."""
    mean = z.abs().pow(2).mean(dim=-1, keepdim=True).clamp_min(1e-12)
    return z * torch.sqrt(power / mean)


def _cn(shape, generator, variance=1.0) -> torch.Tensor:
    re = torch.randn(shape, generator=generator)
    im = torch.randn(shape, generator=generator)
    return torch.complex(re, im) * (variance / 2) ** 0.5


def draw_channel(batch: int, nr: int, nt: int, channel: str, k_factor: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    if channel == "awgn":
        return torch.eye(nr, nt, dtype=torch.complex64).expand(batch, nr, nt).clone()
    nlos = _cn((batch, nr, nt), generator)
    if channel == "rayleigh":
        return nlos
    k = k_factor
    return (k / (k + 1)) ** 0.5 * torch.ones(batch, nr, nt, dtype=torch.complex64) + (1 / (k + 1)) ** 0.5 * nlos


def waterfill(gains: torch.Tensor, total_power: float = 1.0) -> torch.Tensor:
    """Water-filling over the last dim (gains lambda_i / N0), batched; returns powers."""
    g, order = torch.sort(gains, dim=-1, descending=True)
    inv = 1.0 / g.clamp_min(1e-30)
    s = g.shape[-1]
    counts = torch.arange(1, s + 1, dtype=inv.dtype)
    mu = (total_power + torch.cumsum(inv, dim=-1)) / counts  # water level if the top j modes are on
    feasible = mu - inv > 0  # mode j on under level mu_j
    active = feasible.to(torch.int64).cumprod(dim=-1).sum(dim=-1, keepdim=True).clamp_min(1)
    level = torch.gather(mu, -1, active - 1)
    p_sorted = (level - inv).clamp_min(0) * (torch.arange(s) < active).to(inv.dtype)
    return torch.zeros_like(p_sorted).scatter(-1, order, p_sorted)


class AnalogChannel:
    """Differentiable channel for real feature vectors [B, 2n]; see the module docstring."""

    def __init__(self, spec: PhySpec | str, generator: torch.Generator | None = None) -> None:
        self.spec = parse_phy_spec(spec) if isinstance(spec, str) else spec
        self.generator = generator

    def __call__(self, x: torch.Tensor, snr_db: float | None = None) -> torch.Tensor:
        spec = self.spec
        n0 = 10 ** (-(spec.snr_db if snr_db is None else snr_db) / 10)
        z = normalize_power(real_to_complex(x))
        batch, n = z.shape
        nt, nr = spec.nt, spec.nr
        with torch.no_grad():
            h = draw_channel(batch, nr, nt, spec.channel, spec.k_factor, self.generator)
            h_est = h + _cn(h.shape, self.generator, spec.csi_error) if spec.csi_error > 0 else h
            if spec.precoder == "svd":
                _, sv, vh = torch.linalg.svd(h_est)
                streams = min(nt, nr)
                lam = sv[:, :streams].pow(2)
                if spec.power == "waterfill":
                    p = waterfill(lam / n0)
                else:
                    p = torch.full_like(lam, 1.0 / streams)
                f = vh.conj().transpose(-1, -2)[:, :, :streams] * p.sqrt().to(torch.complex64)[:, None, :]
            else:
                streams = nt
                f = torch.eye(nt, dtype=torch.complex64).expand(batch, nt, nt) / nt**0.5
            g = h_est @ f  # effective estimated channel [B, Nr, S]
            n_eff = n0 + spec.csi_error * f.abs().pow(2).sum(dim=(-1, -2))
            if spec.detector == "zf":
                w = torch.linalg.pinv(g)
            else:
                gh = g.conj().transpose(-1, -2)
                eye = torch.eye(streams, dtype=torch.complex64)
                w = torch.linalg.solve(gh @ g + n_eff[:, None, None].to(torch.complex64) * eye, gh)
        slots = -(-n // streams)
        pad = slots * streams - n
        zp = torch.nn.functional.pad(torch.view_as_real(z), (0, 0, 0, pad))
        s = torch.view_as_complex(zp.contiguous()).reshape(batch, slots, streams).transpose(1, 2)  # [B, S, L]
        noise = _cn((batch, nr, slots), self.generator, n0)
        y = h @ (f @ s) + noise
        est = (w @ y).transpose(1, 2).reshape(batch, slots * streams)[:, :n]
        return complex_to_real(est)


# -- NOMA ------------------------------------------------------------------------------------

def qam_slice(z: torch.Tensor, bits_per_symbol: int = 2) -> torch.Tensor:
    """Nearest Gray-QAM point (hard decision), no gradient."""
    points = torch.as_tensor(qam_points(bits_per_symbol).copy(), dtype=torch.complex64)
    with torch.no_grad():
        idx = (z.detach()[..., None] - points).abs().argmin(dim=-1)
    return points[idx]


SicEstimate = str | Callable[[torch.Tensor], torch.Tensor]


def _cancel(r: torch.Tensor, truth: torch.Tensor, amplitude: float, sic: SicEstimate, m: int) -> torch.Tensor:
    if sic == "genie":
        return truth
    if sic == "hard":
        return qam_slice(r / amplitude, m)
    if callable(sic):
        return sic(r / amplitude)
    raise ValueError(f"unknown SIC estimate {sic!r} (hard, genie or a callable)")


@dataclass
class NomaOutput:
    far: torch.Tensor  # the far (weak) user's estimate of its own symbols, at its receiver
    near: torch.Tensor  # the near (strong) user's estimate of its own symbols after SIC
    near_sees_far: torch.Tensor  # what the near user cancelled (its estimate of the far signal)


def noma_downlink(s_far: torch.Tensor, s_near: torch.Tensor, *, far_power: float, snr_far_db: float,
                  snr_near_db: float, channel: str = "awgn", sic: SicEstimate = "hard", bits_per_symbol: int = 2,
                  generator: torch.Generator | None = None) -> NomaOutput:
    """x = sqrt(a) s_far + sqrt(1 - a) s_near (unit-power complex symbols, a = far_power > 1/2).

    Each user sees y = h x + n (h per sample, known to that receiver). The far user detects
    its symbols treating the near user's as noise; the near user first estimates the far
    user's symbols (`sic`), subtracts them, then detects its own.
    """
    if not 0.5 < far_power < 1:
        raise ValueError("far_power must lie in (0.5, 1): the far user gets the larger share")
    a_far, a_near = far_power**0.5, (1 - far_power) ** 0.5
    x = a_far * s_far + a_near * s_near
    batch = x.shape[0]

    def receive(snr_db: float) -> torch.Tensor:
        h = draw_channel(batch, 1, 1, channel, generator=generator)[:, 0, :]  # [B, 1]
        n0 = 10 ** (-snr_db / 10)
        y = h * x + _cn(x.shape, generator, n0)
        return y / h  # coherent equalisation

    r_far = receive(snr_far_db)
    r_near = receive(snr_near_db)
    far_hat = _cancel(r_near, s_far, a_far, sic, bits_per_symbol)
    near = (r_near - a_far * far_hat) / a_near
    return NomaOutput(far=r_far / a_far, near=near, near_sees_far=far_hat)


def noma_uplink(s_strong: torch.Tensor, s_weak: torch.Tensor, *, snr_strong_db: float, snr_weak_db: float,
                channel: str = "awgn", sic: SicEstimate = "hard", bits_per_symbol: int = 2,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two users transmit at once: y = h1 sqrt(P1) s_strong + h2 sqrt(P2) s_weak + CN(0, 1),
    P_i = 10^(snr_i / 10). The receiver (knowing h1, h2) detects the strong user treating the
    weak one as noise (MMSE-scaled), cancels it, then detects the weak user. Returns both
    unbiased estimates."""
    batch = s_strong.shape[0]
    h1 = draw_channel(batch, 1, 1, channel, generator=generator)[:, 0, :]
    h2 = draw_channel(batch, 1, 1, channel, generator=generator)[:, 0, :]
    g1, g2 = h1 * 10 ** (snr_strong_db / 20), h2 * 10 ** (snr_weak_db / 20)
    y = g1 * s_strong + g2 * s_weak + _cn(s_strong.shape, generator, 1.0)
    strong = y / g1
    strong_hat = _cancel(y / g1 * 1.0, s_strong, 1.0, sic, bits_per_symbol)
    weak = (y - g1 * strong_hat) / g2
    return strong, weak
