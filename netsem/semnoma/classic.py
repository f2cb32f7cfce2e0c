"""The classic chain on the same uplink: JPEG / WebP + CRC + 5G LDPC + QAM, superposed, SIC.

Each user's image is coded at the best quality whose file fits one transport block of the
budget (`netsem.experiments.phy_baseline`: the same search as seed 000's and seed 002's
baselines), padded to the budget, LDPC-coded and QAM-mapped onto the same L channel uses the
semantic users have (512 per 32x32 image); both users transmit at once over the very channel
realisations the learned schemes meet (`channel.Uplink`, same generator seeds). The base station
runs SIC on bits: the strongest user's LLRs treat the other as Gaussian noise (variance
(1 + |g_other|^2) / |g|^2 after equalisation); if its CRC holds, its codeword is re-modulated
and subtracted and the next user is decoded interference-free, otherwise the next user is
decoded with the interference left in. A failed CRC loses the image (mid-grey, as in the
other baselines); an image whose smallest file does not fit the budget is mid-grey too. Per
channel and SNR the best (modulation, rate, codec) per user is reported (the pair with the best
mean PSNR over all users: the far user, decoded after cancellation, may afford a denser
constellation than the near one, which meets the far user's interference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from netsem.experiments.phy_baseline import budget_bytes, decode_file, encode_at_budget
from netsem.metrics import psnr_db
from netsem.phy.crc import crc_bits
from netsem.phy.digital import DigitalPhy, transport_block
from netsem.phy.modem import qam_demap, qam_map
from netsem.phy.spec import parse_phy_spec
from netsem.semnoma.channel import Uplink

MODULATIONS = {"qpsk": 2, "16qam": 4, "64qam": 6}
RATES = ("1/3", "1/2", "2/3", "3/4")
CODECS = ("jpeg", "webp")


@dataclass
class Candidate:
    setting: str
    bits_per_symbol: int
    phy: DigitalPhy
    budget: int  # payload bytes per block (files padded to it)
    blocks: np.ndarray  # (N, K, C, Kb) information blocks (payload + CRC, padded)
    clean: np.ndarray  # (N, K, H, W, 3) decoded files, mid-grey where nothing fits
    fits: np.ndarray  # (N, K) bool


def candidates(images: np.ndarray, symbols: int) -> list[Candidate]:
    """images (N, K, H, W, 3) uint8: every (modulation, rate, codec) where some image fits."""
    out = []
    grey = np.full(images.shape[2:], 128, np.uint8)
    for name, m in MODULATIONS.items():
        for rate in RATES:
            phy = DigitalPhy(parse_phy_spec(f"siso awgn snr 10dB ldpc {rate} {name}"), np.random.default_rng(0))
            budget = budget_bytes(phy, symbols)
            if budget <= 0:
                continue
            for codec in CODECS:
                files = [[encode_at_budget(image, codec, budget) for image in pair] for pair in images]
                fits = np.array([[f is not None for f in pair] for pair in files])
                if not fits.any():
                    continue
                blocks = np.stack([np.stack([transport_block((f[0] if f else b"").ljust(budget, b"\0")) for f in pair])
                                   for pair in files])
                clean = np.stack([np.stack([decode_file(f[0], grey.shape) if f else grey for f in pair])
                                  for pair in files])
                out.append(Candidate(f"{codec} + {name} LDPC {rate} ({budget} B)", m, phy, budget, blocks, clean, fits))
    return out


def _symbols(bits_per_symbol: int, codewords: np.ndarray, uses: int) -> np.ndarray:
    bits = codewords.reshape(codewords.shape[0], -1)
    pad = (-bits.shape[1]) % bits_per_symbol
    bits = np.concatenate([bits, np.zeros((bits.shape[0], pad), np.uint8)], axis=1)
    mapped = np.stack([qam_map(row, bits_per_symbol) for row in bits])
    if mapped.shape[1] > uses:
        raise ValueError("a block does not fit the channel uses")
    return np.concatenate([mapped, np.zeros((bits.shape[0], uses - mapped.shape[1]), complex)], axis=1)


class _Coded:
    """One user's candidate, LDPC-coded and mapped for every image."""

    def __init__(self, candidate: Candidate, user: int, uses: int) -> None:
        n, _, c, kb = candidate.blocks.shape
        self.code = candidate.phy.codes.get(kb, candidate.phy.codeword_length(kb))
        words = self.code.encode(candidate.blocks[:, user].reshape(-1, kb)).reshape(n, -1)
        self.c, self.kb, self.m = c, kb, candidate.bits_per_symbol
        self.coded_bits = words.shape[1]
        self.x = _symbols(self.m, words, uses)
        self.checked = 8 * candidate.budget + 24  # payload + CRC24A; the rest of the c x kb bits is padding

    def decode(self, estimate: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
        """Whose CRC holds, (N,) bool, for equalised symbols (N, L) with noise variances (N,)."""
        n = estimate.shape[0]
        llr = np.stack([qam_demap(estimate[i], noise_var[i], self.m)[:self.coded_bits] for i in range(n)])
        bits, _ = self.code.decode(llr.reshape(n * self.c, -1))
        bits = bits.reshape(n, self.c * self.kb)
        return np.array([not crc_bits(bits[i][:self.checked]).any() for i in range(n)])


def transmit(chosen: list[Candidate] | Candidate, uplink: Uplink, coded: list[_Coded] | None = None) -> np.ndarray:
    """(N, K) bool: whose block the base station decoded (CRC held) after SIC. `chosen`: one
    candidate per user (or one for all)."""
    users = uplink.users
    uses = uplink.noise.shape[1]
    if coded is None:
        chosen = chosen if isinstance(chosen, list) else [chosen] * users
        coded = [_Coded(cand, k, uses) for k, cand in enumerate(chosen)]
    n = coded[0].x.shape[0]
    x = np.stack([c.x for c in coded], axis=1)  # (N, K, L)
    g = uplink.gains.numpy().astype(complex)
    residual = (g[:, :, None] * x).sum(1) + uplink.noise.numpy()
    order = uplink.order().numpy()
    ok = np.zeros((n, users), bool)
    rows = np.arange(n)
    for j in range(users):
        user = order[:, j]
        gain = g[rows, user]
        later = order[:, j + 1:]
        interference = (np.abs(g[rows[:, None], later]) ** 2).sum(1) if later.size else np.zeros(n)
        estimate = residual / gain[:, None]
        noise_var = (1 + interference) / np.abs(gain) ** 2
        passed = np.zeros(n, bool)
        for k in range(users):  # each image's user at this position, decoded with its own code
            mine = user == k
            if mine.any():
                passed[mine] = coded[k].decode(estimate[mine], noise_var[mine])
        ok[rows, user] = passed
        if j < users - 1:  # cancel what decoded; a failed user's interference stays
            residual = residual - gain[:, None] * x[rows, user] * passed[:, None]
    return ok


def classic_point(images: np.ndarray, pool: list[Candidate], uplink_for) -> tuple[np.ndarray, str]:
    """Best (candidate per user) for one channel and SNR: the (N, K, H, W, 3) images the base
    station shows and the settings. `uplink_for()` draws the channel (the same realisation for
    every combination). Combinations are tried best error-free bound first and the search stops
    when no remaining one can beat the best found (the same choice as trying them all)."""
    import itertools

    n, users = images.shape[:2]
    grey = np.full(images.shape[2:], 128, np.uint8)
    flat = images.reshape(n * users, *grey.shape)

    def psnr_of(shown: np.ndarray) -> np.ndarray:
        return np.array([psnr_db(a, b) for a, b in zip(flat, shown.reshape(n * users, *grey.shape))]).reshape(n, users)

    grey_psnr = psnr_of(np.broadcast_to(grey, images.shape))
    clean = [psnr_of(np.where(c.fits[:, :, None, None, None], c.clean, grey)) for c in pool]
    bound = {combo: float(np.mean([np.maximum(clean[i][:, k], grey_psnr[:, k]).mean() for k, i in enumerate(combo)]))
             for combo in itertools.product(range(len(pool)), repeat=users)}
    uses = uplink_for().noise.shape[1]
    coded: dict[tuple[int, int], _Coded] = {}
    best, best_psnr, best_setting = None, -1.0, ""
    for combo in sorted(bound, key=lambda c: -bound[c]):
        if bound[combo] <= best_psnr:
            break
        parts = [coded.setdefault((i, k), _Coded(pool[i], k, uses)) for k, i in enumerate(combo)]
        fits = np.stack([pool[i].fits[:, k] for k, i in enumerate(combo)], 1)
        ok = transmit([pool[i] for i in combo], uplink_for(), parts) & fits
        shown = np.stack([np.where(ok[:, k, None, None, None], pool[i].clean[:, k], grey)
                          for k, i in enumerate(combo)], 1)
        psnr = float(np.where(ok, np.stack([clean[i][:, k] for k, i in enumerate(combo)], 1), grey_psnr).mean())
        if psnr > best_psnr:
            best, best_psnr = shown, psnr
            best_setting = " | ".join(f"user {k}: {pool[i].setting}" for k, i in enumerate(combo))
    return best, best_setting


def to_numpy(images: torch.Tensor) -> np.ndarray:
    """(N, K, 3, H, W) float -> (N, K, H, W, 3) uint8."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).numpy()
