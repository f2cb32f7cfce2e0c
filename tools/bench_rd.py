"""Rate-distortion at 0 % loss on the evaluation photographs (never trained on): every rate point
of the learned codecs against JPEG, JPEG 2000 and WebP, as bits per pixel on the wire.

    .venv/bin/python tools/bench_rd.py [--plot docs/rd.png] [--csv runs/rd/points.csv] [--image FILE ...]
        [--refine N]

Each point is the codec's frame packetized exactly as `netsem send` does (default MTU, headers,
unit tables and CRCs counted) and decoded with nothing lost; PSNR and SSIM are netsem's
(scikit-image's definitions). JPEG runs at qualities 10..90, JPEG 2000 (OpenJPEG) at
compression ratios 100:1..8:1, both cut into independently decodable segments as netsem sends
them, and netsem's `webp` and `jpeg2000-tiles` (tiles that each decode alone, one per segment)
at qualities 10..90.
"webp whole" is one whole-image codestream cut at the datagram size: it has no resynchronisation
points, so a lost datagram loses the image; it is here as a compression anchor only. Prints
per codec the mean bpp / PSNR / SSIM per rate point, and per learned point the mean PSNR gap to
JPEG at the same bpp (JPEG's curve interpolated per photograph). `--image FILE` adds photographs
(also never trained on), e.g. scikit-learn's china and flower or matplotlib's grace_hopper.
`--refine N` adds the default codec's rate points with their latent refined N steps (`--refine`
of `netsem send`), labelled "... refine N"; `--skip K` each (unrefined) rate point with K channels
not sent (`--skip-channels`), labelled "... skip K", and plots the best of them. `--from-csv FILE`
redraws the table and plot from a run's `--csv` without measuring again; `--classic-from FILE`
measures only the learned codecs and takes the classic anchors' points (which do not depend on
them) from such a file. `--codec NAME` (repeatable) measures only those learned codecs and, of the
anchors, JPEG alone (for the gap): a minute or two after retraining one rate point.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image

from netsem.codecs.data import load_eval_images
from netsem.codecs.registry import RATE_POINTS, get_codec
from netsem.metrics import psnr_db, ssim
from netsem.pipeline.frames import payload_budget
from netsem.pipeline.images import load_image
from packetizers.frames import StreamFrame
from packetizers.packetizer import Packetizer
from packetizers.wire import DEFAULT_MTU, PartitionKind

LEARNED = [*(f"cnn-sem-impute-q{q}-ec" for q in sorted(RATE_POINTS)), "cnn-sem-impute-ec", "cnn-sem-ec", "cnn-sem"]
JPEG_QUALITIES = [2, 4, 6, 8, 10, 20, 30, 40, 50, 60, 70, 80, 90]  # from ~0.2 bpp: the gaps never extrapolate
J2K_RATIOS = [100, 60, 40, 24, 16, 10, 8]
MAX_PLOTTED_BPP = 2.5  # the plot's x range (points beyond it left out, so they do not stretch the y range)
WEBP_QUALITIES = [10, 30, 50, 70, 90]  # also jpeg2000-tiles' (whose quality 90 is 1.7:1)



def pareto_front(points: list[tuple]) -> list[tuple]:
    """The (rate, quality, ...) points no other beats in both, lowest rate first."""
    kept, best = [], float("-inf")
    for point in sorted(points, key=lambda p: (p[0], -p[1])):
        if point[1] > best:
            kept.append(point)
            best = point[1]
    return kept

def wire_bytes(frame, partition: PartitionKind) -> int:
    return sum(map(len, Packetizer(partition, mtu=DEFAULT_MTU).packetize(frame, 0)))


def point(codec_label: str, setting: str, image: np.ndarray, frame, decoded: np.ndarray, partition) -> dict:
    pixels = image.shape[0] * image.shape[1]
    return {"codec": codec_label, "setting": setting, "bpp": wire_bytes(frame, partition) * 8 / pixels,
            "psnr_db": psnr_db(image, decoded), "ssim": ssim(image, decoded)}


def webp_whole(image: np.ndarray, quality: int) -> tuple[StreamFrame, np.ndarray]:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="WEBP", quality=quality, method=6)
    data = buffer.getvalue()
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    budget = payload_budget(DEFAULT_MTU)
    return StreamFrame.cut(data, list(range(0, len(data), budget)), image_size=image.shape[:2]), decoded


def measure(images: dict[str, np.ndarray], refine: int = 0, classic: bool = True, skips: tuple[int, ...] = (),
            learned: list[str] = LEARNED, jpeg_only: bool = False) -> list[dict]:
    rows = []
    family = [name for name in learned if name.startswith("cnn-sem-impute")]
    for name, image in images.items():
        for codec_name, steps in [(name, 0) for name in learned] + [(name, refine) for name in family if refine]:
            codec = get_codec(codec_name, refine=steps) if steps else get_codec(codec_name)
            frame = codec.to_frame(image, payload_budget(DEFAULT_MTU))
            partition = PartitionKind.SEGMENT if isinstance(frame, StreamFrame) else PartitionKind.CHANNEL
            label = f"{codec_name} refine {steps}" if steps else codec_name
            rows.append({"image": name, **point(label, "", image, frame, codec.from_frame(frame), partition)})
            for skip in skips if codec_name in family and not steps else ():
                fewer = codec.leaving_out(frame, skip)  # what --skip-channels sends
                rows.append({"image": name, **point(f"{codec_name} skip {skip}", "", image, fewer,
                                                    codec.from_frame(fewer), partition)})
        if classic:
            rows += measure_classic(name, image, jpeg_only)
        print(f"{name}: done", flush=True)
    return rows


def measure_classic(name: str, image: np.ndarray, jpeg_only: bool = False) -> list[dict]:
    rows = []
    for quality in JPEG_QUALITIES:
        codec = get_codec("jpeg", quality=quality)
        frame = codec.to_frame(image, payload_budget(DEFAULT_MTU))
        rows.append({"image": name, **point("jpeg", f"q{quality}", image, frame, codec.from_frame(frame),
                                            PartitionKind.SEGMENT)})
    if jpeg_only:
        return rows
    for ratio in J2K_RATIOS:
        codec = get_codec("jpeg2000", ratio=ratio)
        frame = codec.to_frame(image, payload_budget(DEFAULT_MTU))
        rows.append({"image": name, **point("jpeg2000", f"{ratio}:1", image, frame, codec.from_frame(frame),
                                            PartitionKind.SEGMENT)})
    for quality in WEBP_QUALITIES:
        codec = get_codec("webp", quality=quality)
        frame = codec.to_frame(image, payload_budget(DEFAULT_MTU))
        rows.append({"image": name, **point("webp", f"q{quality}", image, frame, codec.from_frame(frame),
                                            PartitionKind.SEGMENT)})
        codec = get_codec("jpeg2000-tiles", quality=quality)
        frame = codec.to_frame(image, payload_budget(DEFAULT_MTU))
        rows.append({"image": name, **point("jpeg2000-tiles", f"q{quality}", image, frame, codec.from_frame(frame),
                                            PartitionKind.SEGMENT)})
        frame, decoded = webp_whole(image, quality)
        rows.append({"image": name, **point("webp whole", f"q{quality}", image, frame, decoded,
                                            PartitionKind.SEGMENT)})
    return rows


def read_points(path: str) -> list[dict]:
    with open(path, newline="") as f:
        return [{**r, **{k: float(r[k]) for k in ("bpp", "psnr_db", "ssim")}} for r in csv.DictReader(f)]


def gap_to_jpeg(rows: list[dict], codec: str) -> tuple[float, int]:
    """Mean of PSNR(codec) - PSNR(jpeg at the same bpp, interpolated) over the photographs where
    the codec's point lies within JPEG's measured rates (never extrapolated), and their number."""
    gaps = []
    for image in sorted({r["image"] for r in rows}):
        jpeg = sorted((r["bpp"], r["psnr_db"]) for r in rows if r["image"] == image and r["codec"] == "jpeg")
        (mine,) = [r for r in rows if r["image"] == image and r["codec"] == codec]
        if jpeg[0][0] <= mine["bpp"] <= jpeg[-1][0]:
            gaps.append(mine["psnr_db"] - np.interp(mine["bpp"], *zip(*jpeg)))
    return (float(np.mean(gaps)) if gaps else np.nan), len(gaps)


def summary(rows: list[dict]) -> list[dict]:
    out = []
    for codec, setting in dict.fromkeys((r["codec"], r["setting"]) for r in rows):
        sel = [r for r in rows if r["codec"] == codec and r["setting"] == setting]
        out.append({"codec": codec, "setting": setting, **{k: float(np.mean([r[k] for r in sel]))
                                                            for k in ("bpp", "psnr_db", "ssim")}})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plot", default=None, help="PNG: PSNR and SSIM against bpp")
    parser.add_argument("--csv", default=None, help="every point, per photograph")
    parser.add_argument("--image", action="append", default=[], help="another photograph (file), repeatable")
    parser.add_argument("--refine", type=int, default=0, help="also the rate points refined N steps")
    parser.add_argument("--skip", type=int, action="append", default=[], metavar="K",
                        help="also each rate point with K channels not sent (--skip-channels), repeatable")
    parser.add_argument("--from-csv", default=None, metavar="FILE",
                        help="table and plot from the points a run wrote with --csv, measuring nothing")
    parser.add_argument("--classic-from", default=None, metavar="FILE",
                        help="measure the learned codecs only; the classic anchors' points from a run's --csv")
    parser.add_argument("--codec", action="append", default=[], choices=LEARNED, metavar="NAME",
                        help="measure only this learned codec (repeatable) and, of the anchors, JPEG for its gap")
    args = parser.parse_args()
    if args.from_csv:
        rows = read_points(args.from_csv)
        images = dict.fromkeys(r["image"] for r in rows)
        args.refine = next((int(r["codec"].split()[-1]) for r in rows if "refine" in r["codec"]), 0)
    else:
        images = {**load_eval_images(), **{Path(f).stem: load_image(f)[0] for f in args.image}}
        rows = measure(images, args.refine, classic=not args.classic_from, skips=tuple(args.skip),
                       learned=args.codec or LEARNED, jpeg_only=bool(args.codec))
        if args.classic_from:
            rows += [r for r in read_points(args.classic_from) if not r["codec"].startswith("cnn")]
    learned = {r["codec"] for r in rows if r["codec"].startswith("cnn")}
    if args.csv and not args.from_csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    print("| codec | setting | bpp on wire | PSNR dB | SSIM | PSNR - JPEG at same bpp |")
    print("|---|---|---|---|---|---|")
    for s in summary(rows):
        gap = ""
        if s["codec"] in learned:
            mean, inside = gap_to_jpeg(rows, s["codec"])
            gap = "below JPEG's rates" if not inside else f"{mean:+.2f}" + (
                "" if inside == len(images) else f" ({inside} photographs within JPEG's rates)")
        print(f"| {s['codec']} | {s['setting']} | {s['bpp']:.3f} | {s['psnr_db']:.2f} | {s['ssim']:.3f} | {gap} |")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
        curves = summary(rows)
        for codec in dict.fromkeys(s["codec"] for s in curves):
            pts = sorted((s["bpp"], s["psnr_db"], s["ssim"]) for s in curves if s["codec"] == codec
                         and s["bpp"] <= MAX_PLOTTED_BPP)
            if codec in learned:
                continue
            for ax, k in zip(axes, (1, 2)):
                ax.plot([p[0] for p in pts], [p[k] for p in pts], "o-", label=codec, markersize=3)
        all_sent = {(s["bpp"], s["psnr_db"], s["ssim"]): s["codec"] for s in curves
                    if s["codec"].startswith("cnn-sem-impute") and "refine" not in s["codec"]
                    and "skip" not in s["codec"]}
        family = pareto_front(list(all_sent))  # the points no other beats in both: what --quality offers
        beaten = sorted(set(all_sent) - set(family))
        skipping = pareto_front([(s["bpp"], s["psnr_db"], s["ssim"]) for s in curves
                                   if s["codec"].startswith("cnn-sem-impute") and "refine" not in s["codec"]])
        refined = sorted((s["bpp"], s["psnr_db"], s["ssim"]) for s in curves if "refine" in s["codec"])
        for ax, k in zip(axes, (1, 2)):
            ax.plot([p[0] for p in family], [p[k] for p in family], "s-", color="k", label="cnn-sem-impute(-qN)-ec")
            if beaten:
                names = ", ".join(all_sent[p].replace("cnn-sem-impute-q", "q") for p in beaten)
                ax.plot([p[0] for p in beaten], [p[k] for p in beaten], "s", color="k", fillstyle="none",
                        label=f"the same, beaten in rate and PSNR ({names})")
            if len(skipping) > len(family):
                ax.plot([p[0] for p in skipping], [p[k] for p in skipping], ".:", color="k",
                        label="the same, best with channels not sent (--skip-channels)")
            if refined:
                ax.plot([p[0] for p in refined], [p[k] for p in refined], "s--", color="0.45",
                        label=f"the same, --refine {args.refine}")
            for s in curves:
                if s["codec"] in ("cnn-sem-ec", "cnn-sem"):
                    ax.plot(s["bpp"], s["psnr_db" if k == 1 else "ssim"], "^", label=s["codec"])
            ax.set_xlabel("bits per pixel on the wire")
            ax.set_xlim(0, MAX_PLOTTED_BPP)
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("PSNR (dB)")
        axes[1].set_ylabel("SSIM")
        fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=5, fontsize=8)
        fig.suptitle(f"0 % loss, mean over {', '.join(images)} (never trained on)", fontsize=9)
        fig.tight_layout(rect=(0, 0.12, 1, 1))
        fig.savefig(args.plot, dpi=110)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
