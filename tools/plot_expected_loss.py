"""What `--expect-loss` trades at each `--bpp` target, drawn from `netsem sweep --bpp ... --expect-loss E`
results: per expected loss, the PSNR with nothing lost and at 10 % Bernoulli loss (mean over photographs
and seeds) against the default's (10 %: the differences are tenths of a dB on a 5 dB range), and the
share of its lossless PSNR the worst photograph keeps at 40 % Bernoulli loss (the mean over seeds of each
photograph's PSNR / lossless PSNR, the lowest photograph's), against the target.

    .venv/bin/python tools/plot_expected_loss.py RESULTS.csv ... --out docs/expect_loss.png

Rows of a classic codec and rows without a target are left out; the same (target, expected loss,
photograph, seed, impairment) in two files counts once (the later file's). A sweep's runs need the
netem specs 'loss random 10%' and 'loss random 40%' (`--loss 0,10,40`) for every point. Prints the numbers
it draws.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path
from statistics import mean

from netsem.pipeline import DEFAULT_EXPECTED_LOSS

NOTHING, LIGHT, HEAVY = "", "loss random 10%", "loss random 40%"


def load(paths: list[Path]) -> dict[tuple, dict]:
    """(expected loss, target, photograph, seed, netem) -> row, the learned runs at a target."""
    rows = {}
    for path in paths:
        with path.open(newline="") as file:
            for row in csv.DictReader(file):
                if row["bpp_target"] and row["codec"] != "jpeg" and row["psnr_db"]:
                    key = (row["expect_loss"] or "0", float(row["bpp_target"]), Path(row["image"]).name,
                           row["seed"], row["netem"])
                    rows[key] = row
    return rows


def summarise(rows: dict[tuple, dict]) -> dict[str, list[tuple]]:
    """Expected loss -> [(target, bpp, PSNR nothing lost, PSNR at 10 %, worst kept at 40 %, its photograph)]."""
    points = defaultdict(list)
    for expected, target in sorted({key[:2] for key in rows}):
        def at(netem):
            return [row for key, row in rows.items() if key[:2] == (expected, target) and key[4] == netem]

        nothing, light, heavy = at(NOTHING), at(LIGHT), at(HEAVY)
        if not (nothing and light and heavy):
            continue
        kept = defaultdict(list)
        for row in heavy:
            kept[Path(row["image"]).name].append(float(row["psnr_db"]) / float(row["lossless_psnr_db"]))
        worst = min(kept, key=lambda photo: mean(kept[photo]))
        points[expected].append((target, mean(float(r["bpp"]) for r in nothing),
                                 mean(float(r["psnr_db"]) for r in nothing), mean(float(r["psnr_db"]) for r in light),
                                 100 * mean(kept[worst]), worst))
    return dict(points)


def plot(points: dict[str, list[tuple]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    default = {p[0]: p for p in points.get(f"{DEFAULT_EXPECTED_LOSS:g}", [])}
    figure, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for expected, series in sorted(points.items(), key=lambda item: mean(float(x) for x in item[0].split(","))):
        label = "expect " + " or ".join(f"{loss} %" for loss in expected.split(","))
        against = [p for p in series if p[0] in default]
        for axis, column in zip(axes[:2], (2, 3)):
            axis.plot([p[0] for p in against], [p[column] - default[p[0]][column] for p in against], marker="o",
                      label=label)
        axes[2].plot([p[0] for p in series], [p[4] for p in series], marker="o", label=label)
    axes[2].axhline(85, color="grey", linestyle="--", linewidth=1)
    titles = (f"PSNR with nothing lost, against expecting {DEFAULT_EXPECTED_LOSS:g} % (dB)",
              f"PSNR at 10 % Bernoulli loss, against expecting {DEFAULT_EXPECTED_LOSS:g} % (dB)",
              "worst photograph: % of lossless PSNR kept at 40 %")
    for axis, title in zip(axes, titles):
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("--bpp target")
        axis.grid(alpha=0.3)
    axes[2].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="netsem sweep results (.csv)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args()
    points = summarise(load(args.results))
    if not points:
        parser.error("no learned runs at a target with 0 %, 'loss random 10%' and 'loss random 40%' in these files")
    for expected, series in points.items():
        for target, bpp, nothing, light, kept, worst in series:
            print(f"expect {expected:>5} %  target {target:<4g} {bpp:.3f} bpp  {nothing:.2f} dB  at 10 % {light:.2f} dB"
                  f"  worst kept at 40 % {kept:.1f} % ({worst})")
    plot(points, args.out)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
