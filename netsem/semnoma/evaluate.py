"""Seed 004's figures: PSNR / SSIM against SNR for the near and the far user, per scheme,
AWGN and Rayleigh, on crops of photographs never trained on.

Schemes (`SCHEMES`): the OMA teacher (each user alone on its own resource: twice the channel
uses of the NOMA schemes in total, the interference-free bound the seed's teacher is), NOMA
with SIC without and with distillation, the distilled NOMA plus the refinement stage, and the
classic chain (JPEG / WebP + LDPC + QAM, superposed, SIC; `classic`) at the same channel uses.
The adaptive-module study (`ADAPTIVE`) puts the one model trained over 0-20 dB beside models
trained at one SNR each. Every scheme meets the very same channel realisations: the draws for
(channel, SNR, batch) come from one seeded generator per triple.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from netsem.metrics import psnr_db, ssim
from netsem.multiuser.data import crop_batch, eval_photos, to_tensor
from netsem.semnoma.channel import CHANNELS, NEAR_FAR, Uplink
from netsem.semnoma.classic import candidates, classic_point, to_numpy
from netsem.semnoma.scheme import oma, sic_decode, sic_residue, transmit_all
from netsem.semnoma.weights import load_model

SCHEMES = {
    "oma-teacher": "OMA teacher (interference-free, own resource)",
    "noma": "NOMA + SIC, no distillation",
    "noma-kd": "NOMA + SIC, distilled",
    "noma-kd-refined": "NOMA + SIC, distilled + refinement",
    "classic": "JPEG/WebP + LDPC + QAM, SIC",
}
ADAPTIVE = {
    "noma": "one adaptive model, trained 0-20 dB",
    "noma-snr5": "trained at 5 dB only",
    "noma-snr15": "trained at 15 dB only",
}
MODELS = {"oma-teacher": "teacher", "noma": "plain", "noma-kd": "student", "noma-snr5": "snr5", "noma-snr15": "snr15"}
USERS = ("near", "far")
EVAL_SEED = 20261206


@dataclass
class Point:
    scheme: str
    channel: str
    snr_db: float
    user: str
    psnr: float
    ssim: float
    size: int
    note: str = ""
    residue_db: float = float("nan")  # NOMA: what SIC left of this user's signal, dB below its power


def held_out_pairs(count: int, size: int, seed: int = EVAL_SEED) -> np.ndarray:
    """(count, 2, size, size, 3) uint8: pairs of crops of the evaluation photographs."""
    crops = crop_batch(eval_photos(), 2 * count, np.random.default_rng([seed, size]), size=size)
    return crops.reshape(count, 2, size, size, 3)


def _generator(channel: str, snr: float, size: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([EVAL_SEED, CHANNELS.index(channel),
                                                                     int(round(snr * 10)), size]).generate_state(1)[0]))


def _points(scheme, channel, snr, size, reference: np.ndarray, decoded: np.ndarray, note="",
            residue: torch.Tensor | None = None) -> list[Point]:
    out = []
    for k, user in enumerate(USERS):
        p = [psnr_db(a, b) for a, b in zip(reference[:, k], decoded[:, k])]
        s = [ssim(a, b) for a, b in zip(reference[:, k], decoded[:, k])]
        left = float("nan")
        if residue is not None and not torch.isnan(residue[:, k]).all():
            left = float(10 * torch.log10(residue[:, k].nanmean()))
        out.append(Point(scheme, channel, snr, user, float(np.mean(p)), float(np.mean(s)), size, note, left))
    return out


def noma(model, images: torch.Tensor, uplink: Uplink):
    """The NOMA scheme's decoded images and its SIC residue per user (`sic_residue`)."""
    sent = transmit_all(model, images, uplink.context())
    decoded = sic_decode(model, uplink.superpose(sent), uplink, images.shape[-2:])
    return decoded, sic_residue(decoded, sent, uplink.order())


@torch.no_grad()
def evaluate(schemes: list[str], channels: list[str], snrs: list[float], *, count: int = 64, size: int = 32,
             log=print) -> list[Point]:
    images = held_out_pairs(count, size)
    tensor = to_tensor(images.reshape(-1, size, size, 3)).reshape(count, 2, 3, size, size)
    symbols = size * size // 2
    models = {name: load_model(MODELS[name])[0] for name in schemes if name in MODELS}
    refiner = load_model("refiner")[0] if "noma-kd-refined" in schemes else None
    student = models.get("noma-kd") or (load_model("student")[0] if refiner is not None else None)
    pool = candidates(images, symbols) if "classic" in schemes else []
    points: list[Point] = []
    for channel in channels:
        for snr in snrs:
            def uplink() -> Uplink:
                return Uplink.draw(torch.full((count,), float(snr)), symbols, channel, NEAR_FAR,
                                   _generator(channel, snr, size))
            for scheme in schemes:
                note = ""
                if scheme == "classic":
                    shown, note = classic_point(images, pool, uplink)
                    points += _points(scheme, channel, snr, size, images, shown, note)
                    continue
                residue = None
                if scheme == "oma-teacher":
                    out = oma(models[scheme], tensor, uplink()).images
                elif scheme == "noma-kd-refined":
                    decoded, residue = noma(student, tensor, uplink())
                    out = refiner(decoded.images.flatten(0, 1), decoded.context.flatten(0, 1)).reshape(tensor.shape)
                else:
                    decoded, residue = noma(models[scheme], tensor, uplink())
                    out = decoded.images
                points += _points(scheme, channel, snr, size, images, to_numpy(out), residue=residue)
            log("  " + channel + f" {snr:5.1f} dB  " + "  ".join(
                f"{p.scheme}/{p.user} {p.psnr:.2f}" for p in points if p.channel == channel and p.snr_db == snr))
    return points


def table(points: list[Point], schemes: list[str], metric: str = "psnr") -> str:
    snrs = sorted({p.snr_db for p in points})
    lines = []
    for channel in dict.fromkeys(p.channel for p in points):
        lines += [f"\n{channel.upper()} ({metric.upper()}, {points[0].size}x{points[0].size}), SNR (dB):", "",
                  "| scheme | user | " + " | ".join(f"{s:g}" for s in snrs) + " |",
                  "|---|---|" + "---|" * len(snrs)]
        for scheme in schemes:
            for user in USERS:
                row = {p.snr_db: getattr(p, metric) for p in points
                       if p.channel == channel and p.scheme == scheme and p.user == user}
                if row:
                    digits = 2 if metric == "psnr" else 3
                    cells = " | ".join(f"{row.get(s, float('nan')):.{digits}f}" for s in snrs)
                    lines.append(f"| {scheme} | {user} | {cells} |")
    return "\n".join(lines)


def write(points: list[Point], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "points.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(points[0])))
        writer.writeheader()
        writer.writerows(asdict(p) for p in points)
    (out / "points.json").write_text(json.dumps([asdict(p) for p in points], indent=1))


def plot(points: list[Point], schemes: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ADAPTIVE if set(schemes) <= set(ADAPTIVE) else SCHEMES
    channels = list(dict.fromkeys(p.channel for p in points))
    fig, axes = plt.subplots(len(channels), 2, figsize=(10, 3.6 * len(channels)), squeeze=False)
    for r, channel in enumerate(channels):
        for c, user in enumerate(USERS):
            ax = axes[r][c]
            for scheme in schemes:
                pts = sorted((p.snr_db, p.psnr) for p in points
                             if p.scheme == scheme and p.channel == channel and p.user == user)
                if pts:
                    ax.plot(*zip(*pts), marker="o", label=labels.get(scheme, scheme))
            ax.set_title(f"{channel.upper()}, {user} user")
            ax.set_xlabel("SNR (dB, both users' received power on AWGN)")
            ax.set_ylabel("PSNR (dB)")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
