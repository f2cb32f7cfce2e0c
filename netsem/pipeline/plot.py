"""`netsem plot`: a sweep's quality against the parameter it swept, and per-image ΔPSNR.

A figure says what it shows. The x-axis is a configured parameter, never what a run
happened to achieve: the SNR, the configured loss (a Bernoulli P, or a loss model's
stationary mean), or else each netem spec as a category. A point is the mean over the images x
seeds of one configuration, its bar ± 1 standard deviation, and the figure says over how many;
settings shared by every point are in the title, a classic codec's quality (matched or asked)
in the legend; runs that delivered nothing are counted in a panel of their own.
"""

from __future__ import annotations

import math
import textwrap
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from emulator.grammar import parse_netem
from netsem.pipeline.frames import CLASSIC_CODECS
from netsem.pipeline.sweep import loss_only

# What makes two rows the same configuration apart from the x-axis, the image and the seed.
SERIES_COLUMNS = ("codec", "partition", "interleave", "mtu", "netem", "preset", "loss_model", "phy", "snr_db",
                  "transport", "jpeg_setting", "refine", "skip_channels", "bpp_target",
                  "expect_loss")


@dataclass(frozen=True)
class Axis:
    column: str  # snr_db, loss_percent or netem
    label: str
    unit: str  # after a value in titles ('dB', '%'); '' for a category

    @property
    def categorical(self) -> bool:
        return self.column == "netem"


def choose_axis(rows: list[dict]) -> Axis:
    """SNR if every run has one and there are several; else the configured loss if every netem
    spec is a loss clause alone (or nothing) with a known mean and there are several; else
    each netem spec."""
    snrs = {row["snr_db"] for row in rows}
    if None not in snrs and len(snrs) > 1:
        return Axis("snr_db", "SNR per receive antenna (dB)", "dB")
    specs = {row["netem"] for row in rows}
    losses = {row["loss_percent"] for row in rows}
    if None not in losses and len(losses) > 1 and all(loss_only(parse_netem(spec)) for spec in specs):
        if {row["loss_model"] for row in rows} <= {"random", "none"}:
            return Axis("loss_percent", "configured packet loss (%), Bernoulli", "%")
        return Axis("loss_percent", "configured mean packet loss (%): the loss model's stationary rate", "%")
    return Axis("netem", "netem spec", "")


def series_columns(rows: list[dict], axis: Axis) -> tuple[list[str], list[str]]:
    """(columns that tell series apart, columns equal on every row) among SERIES_COLUMNS."""
    skip = {axis.column, "loss_model" if axis.column != "loss_percent" else ""}
    if axis.column in ("loss_percent", "netem"):
        skip |= {"netem", "preset"}  # the impairment is the x-axis
    varying, constant = [], []
    for column in SERIES_COLUMNS:
        if column in skip:
            continue
        values = {row.get(column) for row in rows if not (column == "loss_model" and row[column] == "none")}
        (varying if len(values) > 1 or column in ("codec", "partition") else constant).append(column)
    return varying, constant


def describe(column: str, value) -> str:
    if column == "interleave":
        return "interleave " + ("on" if value else "off")
    if column == "mtu":
        return f"MTU {value:g}"
    if column == "snr_db":
        return "" if value is None else f"SNR {value:g} dB"
    if column == "netem":
        return f"netem '{value}'" if value else "no netem impairment"
    if column == "phy":
        return f"PHY '{value}'" if value else "no PHY"
    if column == "jpeg_setting":
        return ""  # said with the quality, in the label of a classic codec's series
    if column == "transport":
        return f"{value} transport"
    if column == "loss_model":
        return f"loss model {value}"
    if column == "preset":
        return f"preset {value}" if value else ""
    if column == "refine":
        return f"latent refined ({value:g} steps)" if value else ""
    if column == "skip_channels":
        return f"{value:g} channels not sent" if value else ""
    if column == "bpp_target":
        return ""  # said by the series' codec, or with a classic codec's quality
    if column == "expect_loss":
        if not value:
            return ""
        losses = " or ".join(f"{loss} %" for loss in str(value).split(","))
        return f"chosen for {'the configured' if value == 'configured' else losses} loss"
    return str(value)


def at_target(row: dict) -> dict:
    """A row as its series sees it: a run at a rate target (`sweep --bpp`) is one series per
    target, whichever codec and channels left out it chose for its image."""
    if row.get("bpp_target") is None or row["codec"] in CLASSIC_CODECS:
        return row
    return {**row, "codec": f"--bpp {row['bpp_target']:g} (chosen per image)", "skip_channels": None}


def classic_quality_text(rows: list[dict]) -> str:
    """', q 75' or ', q 71-88 per image, matched to cnn-sem's bytes' for a classic codec's
    series (`CLASSIC_CODECS`)."""
    qualities = sorted({int(row["jpeg_quality"]) for row in rows if row["jpeg_quality"] is not None})
    if not qualities:
        return ""
    shown = f"{qualities[0]}" if len(qualities) == 1 else f"{qualities[0]}–{qualities[-1]}"
    setting = rows[0]["jpeg_setting"] or ""
    if setting.startswith("match:"):
        refined = f", latent refined {rows[0]['refine']:g} steps" if rows[0].get("refine") else ""
        refined += f", {rows[0]['skip_channels']:g} channels not sent" if rows[0].get("skip_channels") else ""
        sender = f"--bpp {rows[0]['bpp_target']:g}" if rows[0].get("bpp_target") is not None else setting[6:]
        return f", q {shown} ({'per image, ' if len(qualities) > 1 else ''}matched to {sender}'s bytes{refined})"
    return f", q {shown}"


@dataclass
class Point:
    x: float | str
    psnr: np.ndarray  # finite PSNRs of the runs that delivered a frame
    ssim: np.ndarray
    runs: int
    delivered: int
    identical: int  # runs with an identical reconstruction (infinite PSNR, not averaged)
    datagram_loss: float  # mean share of datagrams lost, as the runs achieved it


@dataclass
class Series:
    label: str
    points: list[Point]
    rows: list[dict]


def group(rows: list[dict], axis: Axis) -> tuple[list[Series], list[str]]:
    """The series of the figure, their points in x order, and the title's shared settings."""
    rows = [at_target(row) for row in rows]
    varying, constant = series_columns(rows, axis)
    families = {row["loss_model"] for row in rows} - {"none"}
    by_series: dict[tuple, dict] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        # A spec without loss is the 0 % point of every loss model's series.
        joins = sorted(families) if "loss_model" in varying and row["loss_model"] == "none" else [row["loss_model"]]
        for family in joins:
            key = tuple(family if column == "loss_model" else row.get(column) for column in varying)
            by_series[key][row[axis.column]].append(row)
    series = []
    for key, per_x in sorted(by_series.items(), key=lambda item: tuple(map(str, item[0]))):
        everything = [row for runs in per_x.values() for row in runs]
        # a classic codec's refine and skip (the bytes it matched) are said with its quality
        classic = everything[0]["codec"] in CLASSIC_CODECS
        parts = [describe(column, value) for column, value in zip(varying, key)
                 if not (classic and column in ("refine", "skip_channels"))]
        label = " / ".join(parts[:2]) + "".join(f", {part}" for part in parts[2:] if part)
        label += classic_quality_text(everything) if classic else ""
        points = []
        for x in sorted(per_x, key=lambda value: (str(value) if axis.categorical else value)):
            runs = per_x[x]
            arrived = [row for row in runs if row["delivered"]]
            points.append(Point(
                x=x, psnr=np.array([row["psnr_db"] for row in arrived if math.isfinite(row["psnr_db"])]),
                ssim=np.array([row["ssim"] for row in arrived]), runs=len(runs), delivered=len(arrived),
                identical=sum(1 for row in arrived if math.isinf(row["psnr_db"])),
                datagram_loss=float(np.mean([row["datagram_loss"] for row in runs]))))
        series.append(Series(label, points, everything))
    lossy = [row for row in rows if row["loss_model"] != "none"] or rows  # a loss model is said by its lossy rows
    shared = [describe(column, (lossy if column == "loss_model" else rows)[0][column]) for column in constant]
    return series, [part for part in shared if part]


def spread_text(rows: list[dict]) -> str:
    images, seeds = len({row["image"] for row in rows}), len({row["seed"] for row in rows})
    return (f"each point: mean ± 1 sd over {images} image{'s' * (images > 1)} × {seeds} seed{'s' * (seeds > 1)}"
            + ("" if all(row["delivered"] for row in rows) else ", of the runs that delivered a frame"))


def category_label(rows: list[dict], spec: str) -> str:
    """A netem spec as a tick (after its preset's name), with its configured mean loss when the
    loss model has one."""
    row = next(row for row in rows if row["netem"] == spec)
    mean = f"\n(configured mean loss {row['loss_percent']:.3g} %)" if spec and row["loss_percent"] is not None else ""
    name = f"{row['preset']}: " if row["preset"] else ""
    return textwrap.fill(name + (spec or "no impairment"), 22) + mean


def plot_quality(rows: list[dict], path: Path | BinaryIO) -> Axis:
    """PSNR and SSIM (and, if any run delivered nothing, the share that delivered) against
    the swept parameter; returns the axis it chose."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axis = choose_axis(rows)
    series, shared = group(rows, axis)
    undelivered = not all(row["delivered"] for row in rows)
    panels = 3 if undelivered else 2
    # many series: their legend below the panels, in two columns, rather than over the lines
    legend_rows = -(-len(series) // 2) if len(series) > 4 else 0
    height = 4.6 + 0.2 * legend_rows
    figure, axes = plt.subplots(1, panels, figsize=(5.6 * panels, height), squeeze=False)
    axes = axes[0]
    categories = sorted({str(row["netem"]) for row in rows}) if axis.categorical else []
    identical = 0
    for index, item in enumerate(series):
        if axis.categorical:  # no line between categories; a small offset keeps the bars apart
            xs = [categories.index(str(p.x)) + 0.08 * (index - (len(series) - 1) / 2) for p in item.points]
        else:
            xs = [p.x for p in item.points]
        style = {"marker": "o", "capsize": 3, "linestyle": "none" if axis.categorical else "-"}
        line = None
        for panel, values in ((axes[0], [p.psnr for p in item.points]), (axes[1], [p.ssim for p in item.points])):
            shown = [(x, v) for x, v in zip(xs, values) if len(v)]
            if shown:
                drawn = panel.errorbar([x for x, _ in shown], [v.mean() for _, v in shown],
                                       yerr=[v.std() for _, v in shown], label=item.label,
                                       color=None if line is None else line, **style)
                line = drawn.lines[0].get_color()
        if undelivered:
            axes[2].plot(xs, [100 * p.delivered / p.runs for p in item.points], marker="o", color=line,
                         linestyle=style["linestyle"], label=item.label)
        identical += sum(p.identical for p in item.points)
    names = [("PSNR (dB)", "PSNR"), ("SSIM", "SSIM"), ("runs that delivered a frame (%)", "delivered")]
    for panel, (ylabel, title) in zip(axes, names):
        panel.set(xlabel=axis.label, ylabel=ylabel, title=f"{title} vs {axis.label.split(' (')[0]}")
        panel.grid(alpha=0.3)
        if axis.categorical:
            panel.set_xticks(range(len(categories)), [category_label(rows, c) for c in categories], fontsize=7)
    if legend_rows:
        figure.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=7, frameon=False)
    else:
        axes[0].legend(fontsize=7)
    notes = [spread_text(rows)]
    if identical:
        notes.append(f"{identical} identical reconstructions (infinite PSNR) are left out of PSNR")
    figure.suptitle(textwrap.fill("; ".join(shared), 150) + "\n" + "; ".join(notes), fontsize=8)
    figure.tight_layout(rect=(0, (0.2 * legend_rows + 0.05) / height if legend_rows else 0, 1, 1))
    figure.savefig(path, dpi=120, format="png")
    plt.close(figure)
    return axis


def plot_delta_per_image(rows: list[dict], path: Path | BinaryIO, at: float) -> None:
    """Mean ΔPSNR (received - lossless) per image at one value of the swept parameter, one
    bar group per series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axis = choose_axis(rows)
    if axis.categorical:
        raise ValueError("the sweep has no numeric parameter (loss or SNR) to pick a value of")
    chosen = [row for row in rows if row[axis.column] is not None and abs(row[axis.column] - at) < 1e-9
              and row["delivered"] and math.isfinite(row["delta_psnr_db"])]
    if not chosen:
        raise ValueError(f"no finite results at {at:g} {axis.unit} to plot")
    series, shared = group(chosen, axis)
    deltas: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for item in series:
        for row in item.rows:
            deltas[item.label][row["image"]].append(row["delta_psnr_db"])
    images = sorted({row["image"] for row in chosen})
    width = 0.8 / len(deltas)
    figure, panel = plt.subplots(figsize=(max(6, 1.2 * len(images)) + 3, 4.4))
    for index, (label, per_image) in enumerate(deltas.items()):
        means = [np.mean(per_image.get(image, [np.nan])) for image in images]
        stds = [np.std(per_image.get(image, [np.nan])) for image in images]
        panel.bar(np.arange(len(images)) + index * width, means, width, yerr=stds, capsize=2, label=label)
    panel.set_xticks(np.arange(len(images)) + 0.4 - width / 2, [Path(image).name for image in images], rotation=20,
                     ha="right", fontsize=8)
    seeds = len({row["seed"] for row in chosen})
    panel.set(ylabel="ΔPSNR vs the same codec, nothing lost (dB)",
              title=f"per-image ΔPSNR at {at:g} {axis.unit} ({axis.label.split(' (')[0]}); "
                    f"bar: mean ± 1 sd over {seeds} seed{'s' * (seeds > 1)}")
    panel.title.set_fontsize(9)
    panel.axhline(0, color="black", linewidth=0.8)
    panel.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, not over them
    panel.grid(axis="y", alpha=0.3)
    figure.suptitle(textwrap.fill("; ".join(shared), 140), fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120, format="png")
    plt.close(figure)
