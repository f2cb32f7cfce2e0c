"""`netsem plot`: PSNR / SSIM against loss (seed 003 Fig. 10) and per-image ΔPSNR (Fig. 9)."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np


def _series_label(row: dict) -> str:
    interleave = "" if row["interleave"] in (True, "True") else ", no interleave"
    return f"{row['codec']} / {row['partition']}{interleave}"


def _x(row: dict) -> float:
    """Configured Bernoulli loss if the spec is one, else the measured datagram loss."""
    loss = row.get("loss_percent")
    return float(loss) if loss is not None and not (isinstance(loss, float) and math.isnan(loss)) \
        else 100 * float(row["datagram_loss"])


def plot_quality_vs_loss(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, dict[float, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        psnr = float(row["psnr_db"])
        if math.isfinite(psnr):
            series[_series_label(row)][_x(row)].append((psnr, float(row["ssim"])))
    figure, (psnr_axis, ssim_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, points in sorted(series.items()):
        xs = sorted(points)
        for axis, column in ((psnr_axis, 0), (ssim_axis, 1)):
            values = [np.array([p[column] for p in points[x]]) for x in xs]
            axis.errorbar(xs, [v.mean() for v in values], yerr=[v.std() for v in values],
                          marker="o", capsize=3, label=label)
    psnr_axis.set(xlabel="packet loss (%)", ylabel="PSNR (dB)", title="PSNR vs loss")
    ssim_axis.set(xlabel="packet loss (%)", ylabel="SSIM", title="SSIM vs loss")
    for axis in (psnr_axis, ssim_axis):
        axis.grid(alpha=0.3)
    psnr_axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_delta_per_image(rows: list[dict], path: Path, loss_percent: float) -> None:
    """Mean ΔPSNR (received - lossless) per image at one loss rate, one bar group per series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    deltas: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if abs(_x(row) - loss_percent) < 1e-9 and math.isfinite(float(row["delta_psnr_db"])):
            deltas[_series_label(row)][row["image"]].append(float(row["delta_psnr_db"]))
    if not deltas:
        raise ValueError(f"no finite results at {loss_percent:g} % loss to plot")
    images = sorted({image for per_image in deltas.values() for image in per_image})
    width = 0.8 / len(deltas)
    figure, axis = plt.subplots(figsize=(max(6, 1.2 * len(images)) + 2, 4))
    for index, (label, per_image) in enumerate(sorted(deltas.items())):
        means = [np.mean(per_image.get(image, [np.nan])) for image in images]
        stds = [np.std(per_image.get(image, [np.nan])) for image in images]
        axis.bar(np.arange(len(images)) + index * width, means, width, yerr=stds, capsize=2, label=label)
    axis.set_xticks(np.arange(len(images)) + 0.4 - width / 2, images, rotation=20, ha="right", fontsize=8)
    axis.set(ylabel="ΔPSNR (dB)", title=f"per-image ΔPSNR at {loss_percent:g} % loss")
    axis.axhline(0, color="black", linewidth=0.8)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, not over them
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
