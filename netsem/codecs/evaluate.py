"""`netsem evaluate`: PSNR/SSIM/bpp of codecs under random unit loss, on photographs that
were never used for training.  Units are dropped directly on the latent (Bernoulli per unit):

- channel: one channel (chw) / one token dimension across all tokens (nd)
- token:   one spatial position with all channels (chw) / one token (nd)
- spatial: a block x block rectangle of positions with all channels (nd: on token_grid)
- jpeg:    one restart interval (one MCU row), the stream at the bytes of a matched codec
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import click
import numpy as np

from netsem.metrics import psnr_db, ssim
from packetizers.frames import LatentFrame
from packetizers.kinds import Layout

PARTITION_SEED = {"channel": 1, "token": 2, "spatial": 3}


def unit_mask(enc: LatentFrame, partition: str, rate: float, rng: np.random.Generator,
              block: int = 4) -> np.ndarray:
    """Bool mask of received latent elements when each unit is lost with probability rate."""
    shape = enc.latent.shape
    if enc.layout == Layout.CHW:
        c, h, w = shape
    else:
        n, c = shape
        h, w = enc.token_grid
    if partition == "channel":
        keep = rng.random(c) >= rate
        grid = np.broadcast_to(keep[:, None, None], (c, h, w))
    elif partition == "token":
        keep = rng.random((h, w)) >= rate
        grid = np.broadcast_to(keep[None], (c, h, w))
    elif partition == "spatial":
        bh, bw = -(-h // block), -(-w // block)
        keep = rng.random((bh, bw)) >= rate
        keep = keep.repeat(block, 0).repeat(block, 1)[:h, :w]
        grid = np.broadcast_to(keep[None], (c, h, w))
    else:
        raise ValueError(f"unknown partition {partition!r}")
    if enc.layout == Layout.CHW:
        return np.ascontiguousarray(grid)
    return np.ascontiguousarray(grid.reshape(c, h * w).T)


def _metrics(ref: np.ndarray, out: np.ndarray) -> tuple[float, float]:
    return psnr_db(ref, out), ssim(ref, out)


def run_evaluation(codecs: list[str], partitions: list[str], rates: list[float], seeds: int,
                   images: dict[str, np.ndarray], block: int = 4, jpeg_match: str | None = None,
                   echo=print) -> list[dict]:
    from .registry import get_codec

    rows: list[dict] = []
    matched_bytes: dict[str, int] = {}
    for name in codecs:
        codec = get_codec(name)
        for iname, img in images.items():
            t0 = time.monotonic()
            enc = codec.to_frame(img)
            h, w = img.shape[:2]
            if name == jpeg_match:
                matched_bytes[iname] = enc.wire_bits // 8
            for part in partitions:
                for rate in rates:
                    for seed in range(seeds if rate > 0 else 1):
                        rng = np.random.default_rng([seed, int(round(rate * 1000)), PARTITION_SEED[part]])
                        m = unit_mask(enc, part, rate, rng, block)
                        p, s = _metrics(img, codec.from_frame(enc.with_received(m)))
                        rows.append(dict(codec=name, image=iname, partition=part, rate=rate,
                                         seed=seed, psnr=p, ssim=s, bpp=enc.bits_per_pixel,
                                         wire_bytes=enc.wire_bits // 8,
                                         lost_fraction=float(1 - m.mean())))
            echo(f"  {name} {iname} done in {time.monotonic() - t0:.1f}s")
    if jpeg_match:
        jp = get_codec("jpeg")
        for iname, img in images.items():
            s = jp.encode_to_bytes(img, matched_bytes[iname])
            n, size = len(s.segments) - 1, len(s.stream)
            for rate in rates:
                for seed in range(seeds if rate > 0 else 1):
                    rng = np.random.default_rng([seed, int(round(rate * 1000)), 7])
                    keep = rng.random(n) >= rate
                    got = (s.segments[0], *(segment if kept else None for segment, kept in zip(s.segments[1:], keep)))
                    p, ss = _metrics(img, jp.from_frame(replace(s, segments=got)))
                    rows.append(dict(codec="jpeg", image=iname, partition="mcu-row", rate=rate,
                                     seed=seed, psnr=p, ssim=ss, bpp=size * 8 / (img.shape[0] * img.shape[1]),
                                     wire_bytes=size, quality=s.codec_params[0],
                                     lost_fraction=float(1 - keep.mean())))
            echo(f"  jpeg {iname} q={s.codec_params[0]} {size} B (target {matched_bytes[iname]})")
    return rows


def summarise(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Means per (codec, partition, rate) and the per-image spread at 10 % loss."""
    from collections import defaultdict

    groups = defaultdict(list)
    for r in rows:
        groups[(r["codec"], r["partition"], r["rate"])].append(r)
    table = []
    lossless = {}
    for (c, p, rate), rs in groups.items():
        mp = float(np.mean([r["psnr"] for r in rs]))
        if rate == 0:
            lossless[(c, p)] = mp
    for (c, p, rate), rs in sorted(groups.items()):
        mp = float(np.mean([r["psnr"] for r in rs]))
        base = lossless.get((c, p), mp)
        table.append(dict(codec=c, partition=p, rate=rate, psnr=mp,
                          ssim=float(np.mean([r["ssim"] for r in rs])),
                          bpp=float(np.mean([r["bpp"] for r in rs])),
                          # raw's lossless PSNR is infinite: no meaningful share kept
                          kept=mp / base if np.isfinite(base) else float("nan")))
    spread = []
    for (c, p, rate), rs in sorted(groups.items()):
        if abs(rate - 0.1) > 1e-9:
            continue
        base = {r["image"]: r["psnr"] for r in rows
                if r["codec"] == c and r["partition"] == p and r["rate"] == 0}
        d = np.array([base[r["image"]] - r["psnr"] for r in rs])
        per_image = defaultdict(list)
        for r in rs:
            per_image[r["image"]].append(base[r["image"]] - r["psnr"])
        spread.append(dict(codec=c, partition=p, mean_drop=float(d.mean()),
                           var_drop=float(d.var()), max_drop=float(d.max()),
                           var_between_images=float(np.var([np.mean(v)
                                                            for v in per_image.values()]))))
    return table, spread


@click.command()
@click.option("--codecs", default="raw,cnn,cnn-sem,swin", show_default=True,
              help="Comma-separated codec names.")
@click.option("--partitions", default="channel,token,spatial", show_default=True)
@click.option("--rates", default="0,0.1,0.2,0.3,0.4", show_default=True)
@click.option("--seeds", type=int, default=5, show_default=True)
@click.option("--images", default="astronaut,coffee,chelsea,rocket", show_default=True,
              help="scikit-image photographs (never used for training).")
@click.option("--block", type=int, default=4, show_default=True,
              help="Spatial partition: block side in latent positions.")
@click.option("--jpeg-match", default="cnn-sem", show_default=True,
              help="Also run jpeg at this codec's bytes per image ('' to skip).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write all rows and the summary as JSON here.")
def evaluate(codecs, partitions, rates, seeds, images, block, jpeg_match, out) -> None:
    """PSNR/SSIM/bpp under random unit loss (seeded), per codec x partition x loss rate."""
    import platform

    import skimage.data
    import torch
    from rich.console import Console
    from rich.table import Table

    names = [c for c in codecs.split(",") if c]
    parts = [p for p in partitions.split(",") if p]
    rate_list = [float(r) for r in rates.split(",")]
    imgs = {n: np.ascontiguousarray(getattr(skimage.data, n)()[:, :, :3]) for n in images.split(",")}
    match = jpeg_match or None
    if match and match not in names:
        names.append(match)
    con = Console(width=140)
    t0 = time.monotonic()
    rows = run_evaluation(names, parts, rate_list, seeds, imgs, block, match, echo=con.print)
    table, spread = summarise(rows)
    t = Table(title=f"mean over {len(imgs)} images x {seeds} seeds (units lost at random)")
    for col in ("codec", "partition", "bpp", *[f"{r:.0%}" for r in rate_list], "kept@max"):
        t.add_column(col)
    keyed = {}
    for r in table:
        keyed.setdefault((r["codec"], r["partition"]), {})[r["rate"]] = r
    for (c, p), d in keyed.items():
        cells = [f"{d[r]['psnr']:.2f} / {d[r]['ssim']:.3f}" if r in d else "-" for r in rate_list]
        last = d[max(d)]
        kept = f"{last['kept']:.0%}" if np.isfinite(last["kept"]) else "-"
        t.add_row(c, p, f"{d[min(d)]['bpp']:.3f}", *cells, kept)
    con.print(t)
    s = Table(title="PSNR drop at 10 % loss (dB): mean, variance over image x seed, max, "
                    "variance of per-image means")
    for col in ("codec", "partition", "mean", "var", "max", "var(images)"):
        s.add_column(col)
    for r in spread:
        s.add_row(r["codec"], r["partition"], f"{r['mean_drop']:.2f}", f"{r['var_drop']:.3f}",
                  f"{r['max_drop']:.2f}", f"{r['var_between_images']:.3f}")
    con.print(s)
    con.print(f"evaluated in {time.monotonic() - t0:.0f}s")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(codecs=names, partitions=parts, rates=rate_list, seeds=seeds,
                    images=list(imgs), block=block, jpeg_match=match,
                    torch=torch.__version__, numpy=np.__version__,
                    skimage=skimage.__version__, python=platform.python_version())
        out.write_text(json.dumps(dict(config=meta, summary=table, spread=spread, rows=rows),
                                  indent=1))
