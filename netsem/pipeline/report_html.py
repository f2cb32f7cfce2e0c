"""`netsem report`: a sweep's results as one self-contained HTML page.

The page holds the figure of `netsem plot` (embedded PNG), a table of every point (mean ± sd
and how many runs delivered), jpeg's quality per image when it was matched, and, for a few
chosen points, the reconstructions side by side: the original, and per configuration the
codec with nothing lost and what was received. Those few runs are run again here (the results
file holds numbers, not pictures), and the page says whether the re-run gave the table's PSNR.
"""

from __future__ import annotations

import base64
import html
import io
import math
import statistics
from collections import defaultdict
from pathlib import Path

import click
import numpy as np

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1em; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img.figure { max-width: 100%; }
.pictures img { width: 256px; image-rendering: pixelated; display: block; }
.pictures td { vertical-align: top; text-align: center; }
.pictures td:first-child { text-align: left; }
.note { color: #555; font-size: 0.9em; }
.mismatch { color: #a00; }
"""


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def picture(pixels: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return png_data_uri(buffer.getvalue())


def mean_sd(values: list[float]) -> str:
    if not values:
        return "–"
    spread = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {spread:.2f}"


def value_text(value, unit: str) -> str:
    if isinstance(value, str):
        return html.escape(value or "(no impairment)")
    return f"{value:g} {unit}"


def points_table(series, axis) -> str:
    lines = [(f"<table><tr><th>configuration</th><th>{html.escape(axis.label)}</th><th>runs</th><th>delivered</th>"
              "<th>datagrams lost (achieved, mean)</th><th>PSNR (dB), mean ± sd</th><th>SSIM, mean ± sd</th></tr>")]
    for item in series:
        for point in item.points:
            psnr = mean_sd(list(point.psnr))
            if point.identical:
                psnr += f" (+{point.identical} identical)"
            lines.append(f"<tr><td>{html.escape(item.label)}</td><td>{value_text(point.x, axis.unit)}</td>"
                         f"<td>{point.runs}</td><td>{point.delivered}</td><td>{100 * point.datagram_loss:.1f} %</td>"
                         f"<td>{psnr}</td>"
                         f"<td>{mean_sd([float(v) for v in point.ssim])}</td></tr>")
    return "\n".join(lines) + "</table>"


def jpeg_table(rows: list[dict]) -> str:
    """jpeg's quality per image (and per MTU, when it varies): matched or asked for."""
    found: dict[tuple, set] = defaultdict(set)
    for row in rows:
        if row["codec"] == "jpeg" and row["jpeg_quality"] is not None:
            found[(row["image"], row["mtu"], row["jpeg_setting"])].add(int(row["jpeg_quality"]))
    if not found:
        return ""
    lines = ["<h2>JPEG quality per image</h2><table><tr><th>image</th><th>MTU</th><th>asked</th><th>quality</th></tr>"]
    for (image, mtu, setting), qualities in sorted(found.items()):
        asked = (f"the best within {setting[6:]}'s bytes on the wire" if setting.startswith("match:")
                 else f"quality {setting}")
        lines.append(f"<tr><td>{html.escape(image)}</td><td>{mtu:g}</td><td>{html.escape(asked)}</td>"
                     f"<td>{', '.join(map(str, sorted(qualities)))}</td></tr>")
    return "\n".join(lines) + "</table>"


def psnr_text(value: float | None) -> str:
    if value is None:
        return "–"
    return "identical" if math.isinf(value) else f"{value:.2f} dB"


def reconstructions(rows: list[dict], series, axis, at, image: str, seed: int) -> str:
    """Original, and per configuration lossless and received, at one point (run again here)."""
    from netsem.pipeline.sweep_tasks import reconstruct, task_from_row

    chosen = [(item, next((row for row in item.rows if row["image"] == image and row["seed"] == seed
                           and _same(row[axis.column], at)), None)) for item in series]
    chosen = [(item, row) for item, row in chosen if row is not None]
    if not chosen:
        return f"<p class='note'>No run of {html.escape(image)}, seed {seed} at {value_text(at, axis.unit)}.</p>"
    parts = [(f"<h3>{html.escape(image)}, seed {seed}, {html.escape(axis.label.split(' (')[0])} "
              f"{value_text(at, axis.unit)}</h3>")]
    original_shown = False
    lines = ["<table class='pictures'><tr><th>configuration</th><th>with nothing lost</th><th>received</th></tr>"]
    for item, row in chosen:
        quality = None if row["jpeg_quality"] is None else int(row["jpeg_quality"])
        again = reconstruct(task_from_row(row), row["key"], quality)
        if not original_shown:
            parts.append(f"<figure><img src='{picture(again.original)}' alt='original {html.escape(image)}' "
                         f"style='width:256px'><figcaption>original</figcaption></figure>")
            original_shown = True
        same = again.row["psnr_db"] == row["psnr_db"] or (again.row["psnr_db"] is None and row["psnr_db"] is None)
        check = "" if same else (f"<br><span class='mismatch'>re-run: {psnr_text(again.row['psnr_db'])}, "
                                 f"table: {psnr_text(row['psnr_db'])}</span>")
        received = ("<p>nothing delivered</p>" if again.received is None else
                    f"<img src='{picture(again.received)}' alt='received, {html.escape(item.label)}'>")
        lines.append(
            f"<tr><td>{html.escape(item.label)}</td>"
            f"<td><img src='{picture(again.lossless)}' alt='lossless, {html.escape(item.label)}'>"
            f"{psnr_text(row['lossless_psnr_db'])}</td>"
            f"<td>{received}{psnr_text(row['psnr_db'])}, {int(row['datagrams_received'])}/"
            f"{int(row['datagrams_sent'])} datagrams{check}</td></tr>")
    return "\n".join(parts + lines) + "</table>"


def _same(value, at) -> bool:
    if isinstance(at, str) or isinstance(value, str) or value is None:
        return value == at
    return abs(value - at) < 1e-9


def default_point(values: list) -> object:
    """The middle of the swept values: neither the easy nor the hopeless end."""
    ordered = sorted(values, key=str) if any(isinstance(v, str) for v in values) else sorted(values)
    return ordered[len(ordered) // 2]


def build_report(rows: list[dict], source: str, at: list, image: str | None, seed: int | None) -> str:
    from netsem.pipeline.plot import group, plot_quality, spread_text

    buffer = io.BytesIO()
    axis = plot_quality(rows, buffer)
    series, shared = group(rows, axis)
    xs = sorted({row[axis.column] for row in rows}, key=lambda v: (str(v) if axis.categorical else v))
    image = image or rows[0]["image"]
    seed = int(min(row["seed"] for row in rows)) if seed is None else seed
    points = at or [default_point(xs)]
    versions = {column.removeprefix("version_"): rows[0][column] for column in rows[0] if column.startswith("version_")}
    nothing = sum(not row["delivered"] for row in rows)
    body = [
        f"<h1>netsem sweep: {html.escape(Path(source).name)}</h1>",
        f"<p>{len(rows)} runs, {len(series)} configurations; x-axis: {html.escape(axis.label)} "
        f"(as configured, not as achieved). {html.escape(spread_text(rows).capitalize())}."
        + (f" {nothing} runs delivered nothing." if nothing else "") + "</p>",
        f"<p class='note'>Shared by every run: {html.escape('; '.join(shared))}.</p>",
        f"<h2>Quality against {html.escape(axis.label.split(' (')[0])}</h2>",
        (f"<img class='figure' src='{png_data_uri(buffer.getvalue())}' alt='PSNR and SSIM against "
         f"{html.escape(axis.label)}'>"),
        "<h2>Every point</h2>", points_table(series, axis), jpeg_table(rows),
        "<h2>Reconstructions</h2>",
        ("<p class='note'>Run again for this page from the results' configurations; a PSNR that differs from the "
         "table's is shown in red.</p>"),
        *(reconstructions(rows, series, axis, value, image, seed) for value in points),
        "<h2>Versions</h2><table>" + "".join(f"<tr><td>{html.escape(name)}</td><td>{html.escape(str(value))}</td></tr>"
                                            for name, value in versions.items()) + "</table>",
    ]
    return ("<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>netsem sweep: {html.escape(Path(source).name)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


@click.command()
@click.argument("results", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False, writable=True), help="The HTML page to write.")
@click.option("--at", "at_values", multiple=True, metavar="VALUE",
              help="Value(s) of the swept parameter (loss percent, SNR in dB, or a netem spec) at which to show "
                   "reconstructions (repeatable; default: the middle one).")
@click.option("--image", default=None, help="The image of the reconstructions (default: the first in the results).")
@click.option("--seed", type=int, default=None, help="The seed of the reconstructions (default: the smallest).")
def report(results, out, at_values, image, seed) -> None:
    """An HTML page of a sweep's RESULTS (.csv): the figure, every point's numbers, jpeg's
    matched quality, and reconstructions side by side at chosen points (run again here)."""
    from netsem.pipeline.plot import choose_axis
    from netsem.pipeline.sweep_results import ResultsError, read_results

    try:
        rows = read_results(Path(results))
    except (ResultsError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    if not rows:
        raise click.ClickException(f"{results} holds no results")
    axis = choose_axis(rows)
    try:
        at = [value if axis.categorical else float(value) for value in at_values]
    except ValueError:
        raise click.BadParameter(f"the x-axis is {axis.label}: give numbers", param_hint="--at") from None
    if image is not None and image not in {row["image"] for row in rows}:
        raise click.BadParameter(f"{image!r} is not an image of the results", param_hint="--image")
    Path(out).write_text(build_report(rows, results, at, image, seed), encoding="utf-8")
    click.echo(f"wrote {out}")
