"""Seed 000's Figs. 4-6: PSNR and a perceptual metric (MS-SSIM) against SNR per channel, for
the proposed models, the private-only ablation and the classic chain, on the fixed test set.

Learned schemes: every test batch (G x K = 10 x 5 users of 32x32 crops of the evaluation
photographs) is encoded and grouped once per model (Algorithm 1 with the batch index as the
k-means seed, or batch order for the model trained without clustering), then sent over each
channel at each SNR with a generator seeded by (seed, batch, channel, SNR). Per point: the
mean over images of each image's PSNR (`netsem.metrics.psnr_db`, 8-bit) and MS-SSIM
(`msssim.ms_ssim`). The classic chain (`classic.py`) runs on the first `classic_images` test
images (its LDPC decoding costs ~1 ms per image and candidate).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from netsem.metrics import psnr_db
from netsem.multiuser.data import to_tensor, to_uint8
from netsem.multiuser.model import Gssma
from netsem.multiuser.msssim import ms_ssim
from netsem.multiuser.scheme import encode, reconstruct

LABELS = {
    "c0.2": "Proposed-C (0.2)", "c0.1": "Proposed-C (0.1)", "u0.2": "Proposed (0.2)", "u0.1": "Proposed (0.1)",
    "private": "Private-only", "classic": "WebP/JPEG + LDPC + QAM",
}


@dataclass
class Point:
    scheme: str
    channel: str
    snr_db: float
    psnr: float
    msssim: float
    images: int
    setting: str = ""  # classic: the chosen configuration


@torch.no_grad()
def evaluate_model(name: str, model: Gssma, batches: list[np.ndarray], channels: tuple[str, ...], snrs: list[float],
                   groups: int, seed: int = 0, log=print) -> list[Point]:
    scores = {(c, s): ([], []) for c in channels for s in snrs}
    for b, batch in enumerate(batches):
        images = to_tensor(batch)
        encoded = encode(model, images, images.shape[0], groups, cluster_seed=b)
        for ci, channel in enumerate(channels):
            for si, snr in enumerate(snrs):
                generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, b, ci, si]).generate_state(1)[0]))
                out = to_uint8(reconstruct(model, encoded, channel, snr, generator))
                psnrs, msssims = scores[(channel, snr)]
                psnrs += [psnr_db(a, o) for a, o in zip(batch, out)]
                msssims += list(ms_ssim(batch, out))
    points = [Point(name, c, s, float(np.mean(p)), float(np.mean(m)), len(p)) for (c, s), (p, m) in scores.items()]
    for p in points:
        log(f"  {name:8s} {p.channel:8s} {p.snr_db:5.1f} dB  {p.psnr:6.2f} dB  MS-SSIM {p.msssim:.4f}")
    return points


def write_csv(points: list[Point], path: Path, run: dict) -> None:
    """One row per point; every row carries the run's configuration and versions (JSON)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*asdict(points[0]).keys(), "run"])
        writer.writeheader()
        for p in points:
            writer.writerow({**asdict(p), "run": json.dumps(run, sort_keys=True)})


def read_csv(path: Path) -> list[Point]:
    with open(path, newline="") as f:
        return [Point(r["scheme"], r["channel"], float(r["snr_db"]), float(r["psnr"]), float(r["msssim"]),
                      int(r["images"]), r["setting"]) for r in csv.DictReader(f)]


def table(points: list[Point], channel: str, metric: str = "psnr") -> str:
    """A markdown table: SNR rows, scheme columns."""
    schemes = list(dict.fromkeys(p.scheme for p in points if p.channel == channel))
    snrs = sorted({p.snr_db for p in points if p.channel == channel})
    lines = ["| SNR dB | " + " | ".join(LABELS.get(s, s) for s in schemes) + " |",
             "|---|" + "---|" * len(schemes)]
    for snr in snrs:
        cells = []
        for s in schemes:
            p = next((p for p in points if p.scheme == s and p.channel == channel and p.snr_db == snr), None)
            cells.append("-" if p is None else (f"{p.psnr:.2f}" if metric == "psnr" else f"{p.msssim:.3f}"))
        lines.append(f"| {snr:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(points: list[Point], channel: str, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"c0.2": ("tab:red", "o", "-"), "c0.1": ("tab:orange", "s", "-"), "u0.2": ("tab:blue", "^", "--"),
              "u0.1": ("tab:cyan", "v", "--"), "private": ("tab:green", "D", ":"), "classic": ("black", "x", "-.")}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for scheme in dict.fromkeys(p.scheme for p in points if p.channel == channel):
        pts = sorted((p for p in points if p.scheme == scheme and p.channel == channel), key=lambda p: p.snr_db)
        color, marker, line = styles.get(scheme, (None, ".", "-"))
        for ax, values in zip(axes, ([p.psnr for p in pts], [p.msssim for p in pts])):
            ax.plot([p.snr_db for p in pts], values, color=color, marker=marker, linestyle=line, markersize=4,
                    label=LABELS.get(scheme, scheme))
    axes[0].set_ylabel("PSNR (dB)")
    axes[1].set_ylabel("MS-SSIM (3 scales, 32x32)")
    for ax in axes:
        ax.set_xlabel("SNR (dB)")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


CHANNEL_TITLES = {"awgn": "AWGN", "rician": "Rician (factor 1)", "rayleigh": "Rayleigh"}
