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
channel and SNR the best (modulation, rate, codec) over the mean PSNR of all users is reported,
one setting for every user, as seed 000's classic curves do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from netsem.experiments.phy_baseline import budget_bytes, decode_file, encode_at_budget
from netsem.metrics import psnr_db
from netsem.phy.crc import crc_bits
from netsem.phy.digital import DigitalPhy, segment
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
    blocks: np.ndarray  # (N, K, C, Kb) information blocks (payload + CRC, padded)
    clean: np.ndarray  # (N, K, H, W, 3) decoded files, mid-grey where nothing fits
    fits: np.ndarray  # (N, K) bool


def _information_block(data: bytes, budget: int) -> np.ndarray:
    c, k = segment(8 * budget)
    bits = np.unpackbits(np.frombuffer(data + bytes(budget - len(data)), dtype=np.uint8))
    padded = np.zeros(c * k, dtype=np.uint8)
    padded[:bits.size] = bits
    padded[bits.size:bits.size + 24] = crc_bits(bits)
    return padded.reshape(c, k)


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
                blocks = np.stack([np.stack([_information_block(f[0] if f else b"", budget) for f in pair])
                                   for pair in files])
                clean = np.stack([np.stack([decode_file(f[0], grey.shape) if f else grey for f in pair])
                                  for pair in files])
                out.append(Candidate(f"{codec} + {name} LDPC {rate} ({budget} B)", m, phy, blocks, clean, fits))
    return out


def _symbols(candidate: Candidate, codewords: np.ndarray, uses: int) -> np.ndarray:
    bits = codewords.reshape(codewords.shape[0], -1)
    m = candidate.bits_per_symbol
    pad = (-bits.shape[1]) % m
    bits = np.concatenate([bits, np.zeros((bits.shape[0], pad), np.uint8)], axis=1)
    mapped = np.stack([qam_map(row, m) for row in bits])
    return np.concatenate([mapped, np.zeros((bits.shape[0], uses - mapped.shape[1]), complex)], axis=1)


def transmit(candidate: Candidate, uplink: Uplink) -> np.ndarray:
    """(N, K) bool: whose block the base station decoded (CRC held) after SIC."""
    n, users, c, kb = candidate.blocks.shape
    code = candidate.phy.codes.get(kb, candidate.phy.codeword_length(kb))
    words = code.encode(candidate.blocks.reshape(-1, kb)).reshape(n, users, c, -1)
    coded_bits = c * words.shape[-1]
    uses = uplink.noise.shape[1]
    if -(-coded_bits // candidate.bits_per_symbol) > uses:
        raise ValueError("a block does not fit the channel uses")
    x = np.stack([_symbols(candidate, words[:, k], uses) for k in range(users)], axis=1)  # (N, K, L)
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
        llr = np.stack([qam_demap(estimate[i], noise_var[i], candidate.bits_per_symbol)[:coded_bits]
                        for i in range(n)]).reshape(n * c, -1)
        bits, _ = code.decode(llr)
        bits = bits.reshape(n, c * kb)
        passed = np.array([not crc_bits(bits[i][:_payload_bits(candidate, kb, c)]).any() for i in range(n)])
        ok[rows, user] = passed
        if j < users - 1:  # cancel what decoded; a failed user's interference stays
            sent = x[rows, user] * passed[:, None]
            residual = residual - gain[:, None] * sent
    return ok


def _payload_bits(candidate: Candidate, kb: int, c: int) -> int:
    """Payload + CRC bits of the transport block (the rest of the c x kb bits is padding)."""
    total = c * kb
    budget_bits = next(b for b in range(total - 24, 0, -8) if segment(b) == (c, kb))
    return budget_bits + 24


def classic_point(images: np.ndarray, pool: list[Candidate], uplink_for) -> tuple[np.ndarray, str]:
    """Best candidate for one channel and SNR: the (N, K, H, W, 3) images the base station
    shows and its setting. `uplink_for()` draws the channel (the same realisation for every
    candidate)."""
    grey = np.full(images.shape[2:], 128, np.uint8)
    best, best_psnr, best_setting = None, -1.0, ""
    for cand in pool:
        ok = transmit(cand, uplink_for()) & cand.fits
        shown = np.where(ok[:, :, None, None, None], cand.clean, grey)
        psnr = float(np.mean([psnr_db(a, b) for a, b in zip(images.reshape(-1, *grey.shape), shown.reshape(-1, *grey.shape))]))
        if psnr > best_psnr:
            best, best_psnr, best_setting = shown, psnr, cand.setting
    return best, best_setting


def to_numpy(images: torch.Tensor) -> np.ndarray:
    """(N, K, 3, H, W) float -> (N, K, H, W, 3) uint8."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).numpy()
