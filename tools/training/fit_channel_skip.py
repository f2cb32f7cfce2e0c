"""Fit which channels each imputing -ec codec leaves out first, and the curves `--bpp` chooses by.

    .venv/bin/python tools/training/fit_channel_skip.py          # writes netsem/weights/channel-skip.json
    .venv/bin/python tools/training/fit_channel_skip.py --codec cnn-sem-impute-q4-ec   # refit one, keep the rest

An imputing receiver estimates a lost channel from the others, and for some channels about as well
as the channel itself would tell it: their bytes buy little. For each codec, every channel is left
out alone on each photograph (their central 256x256 pixels), and the channels are ordered by the PSNR
lost per byte saved, least first. The photographs are the 15 Debian ones of `tools/training/wide_photos.sh`
(lomiri-*), which no 16x-down codec was trained on. On their own training photographs (the shared ones,
full size) the 16x-down codecs, trained on them for tens of thousands of steps, lead q6 by 1-3 dB
(cnn-sem-impute-ec 34.4 dB at 0.81 bpp, q3 32.8 at 0.62, q6 31.2 at 0.64) where on these 15 they are level
with it (30.5 at 0.89, 29.9 at 0.69, 30.3 at 0.80), and on photographs none was trained on q6 leads: the
curves fitted there (until q6, at half size) kept q6 off the ladder --bpp then walked. (q5 and q6 saw
these 15 among 37 in their last 1500-step phases.) Skipping the first k of that order gives a rate point
between the trained ones (and below the lowest). Each codec's curve is kept: k -> mean payload bpp
and mean PSNR on the same photographs, with nothing lost and with each share of the sent channels
lost (`LOSSES`; `DRAWS` random draws per photograph, the same at every k, a stand-in for lost datagrams).
One draw per photograph had promised q6 with 28 left out 26.2 dB at 40 % lost (93 % kept) where eight
gave 23.9 (84 %): a few draws in which the channels that matter most are lost pull the mean down, and 15
draws rarely hold one.
`channel_skip.shortlist` ranks the codecs by them for `--bpp` (`--expect-loss` picks the column).
A function of the codec's weights and prior: refit after either changes.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import click
import numpy as np
import torch

from netsem.codecs.channel_skip import CHANNEL_SKIP_PATH, LOSSES
from netsem.codecs.registry import BPP_CODECS, get_codec
from netsem.pipeline.images import ImageError, load_images

PHOTOS = "runs/photos-wide/lomiri-*.jpg"  # tools/training/wide_photos.sh writes them
BATCH = 12  # decodes per network pass
CROP = 256  # pixels a side of the centre of each photograph
STEP = 4  # the curve's k: 0, 4, 8, ... and C - 2 (the least rate); `Curve.psnr_at` interpolates between them
DRAWS = 4  # loss patterns per photograph and loss rate


def decoded_psnrs(net, y: np.ndarray, masks: np.ndarray, image: np.ndarray) -> np.ndarray:
    """PSNR of the image decoded from latent ``y`` (C, h, w, the network's units) under each of
    ``masks`` (n, C) bool, channels left out imputed by the network."""
    target = torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    h, w = image.shape[:2]
    out = []
    with torch.no_grad():
        for start in range(0, len(masks), BATCH):
            m = torch.from_numpy(masks[start:start + BATCH].astype(np.float32))[:, :, None, None]
            m = m.expand(-1, -1, *y.shape[1:])
            z = net.decoder_input(torch.from_numpy(y)[None] * m, m)
            decoded = torch.clamp(net.decode_map(z)[..., :h, :w], 0, 1)
            decoded = torch.round(decoded * 255) / 255
            mse = ((decoded - target) ** 2).mean(dim=(1, 2, 3)).double().numpy()
            out.append(10 * np.log10(1 / np.maximum(mse, 1e-12)))
    return np.concatenate(out)


def compact_json(data: dict) -> str:
    """JSON, indented, with each list of numbers on one line (a diff shows which curve moved)."""
    text = json.dumps(data, indent=1)
    return re.sub(r"\[[-0-9.,\s]*\]", lambda m: json.dumps(json.loads(m.group(0))), text)


def centre(image: np.ndarray, size: int) -> np.ndarray:
    """The central size x size pixels (all of a smaller side)."""
    top, left = max(0, (image.shape[0] - size) // 2), max(0, (image.shape[1] - size) // 2)
    return np.ascontiguousarray(image[top:top + size, left:left + size])


def fit_codec(name: str, images: list[np.ndarray],
              order: list[int] | None = None) -> tuple[list[int], list[list[float]]]:
    """(the channels of ``name`` in the order they are left out, [k, bpp, PSNR at each of LOSSES] for
    k = 0, STEP, ... and C - 2). ``order``: that order as fitted before (the weights unchanged), not measured again."""
    codec = get_codec(name)
    inner = get_codec(codec.inner.name, engine="torch")
    net, step = inner.runtime.net, float(inner.config.quant_step)
    channels = inner.config.latent_channels
    latents = [inner.to_frame(image).latent for image in images]
    lengths = np.array([[len(codec.prior.encode(q[c], c)) for c in range(channels)] for q in latents], float)
    pixels = [image.shape[0] * image.shape[1] for image in images]
    if order is None:
        drop_loss = np.zeros(channels)
        for q, image in zip(latents, images):
            masks = np.vstack([np.ones((1, channels), bool), ~np.eye(channels, dtype=bool)])
            psnrs = decoded_psnrs(net, (q * step).astype(np.float32), masks, image)
            drop_loss += psnrs[0] - psnrs[1:]
        # PSNR lost per byte saved, each averaged over the photographs; a channel whose loss is
        # negative (the imputation beats it) goes first
        order = np.argsort(drop_loss / len(images) / lengths.mean(axis=0), kind="stable").tolist()
    skips = sorted({*range(0, channels - 1, STEP), channels - 2})
    sent = np.ones((len(skips), channels), bool)
    for row, k in zip(sent, skips):
        row[order[:k]] = False
    lossy = LOSSES[1:]  # LOSSES[0] is 0: nothing lost, one decode per k
    psnr = np.zeros((len(skips), len(LOSSES)))
    for index, (q, image) in enumerate(zip(latents, images)):
        y = (q * step).astype(np.float32)
        psnr[:, 0] += decoded_psnrs(net, y, sent, image) / len(images)
        # channels lost to the network: those whose draw is below the loss rate, the same draws at
        # every k and rate (common random numbers: the curves move with k, not with the luck)
        # (a seed of its own: seed `index` alone held the one-draw fit's patterns)
        patterns = np.random.default_rng([index, 2024]).random((DRAWS, 1, channels))
        masks = np.stack([sent & (patterns >= loss / 100) for loss in lossy], axis=2)  # (draw, k, loss, C)
        masks[..., order[-1]] |= ~masks.any(axis=3)  # something always arrives
        decoded = decoded_psnrs(net, y, masks.reshape(-1, channels), image).reshape(masks.shape[:3])
        psnr[:, 1:] += decoded.mean(axis=0) / len(images)
    # a channel left out still travels as a one-byte unit
    bpp = [np.mean([(row[kept].sum() + k) * 8 / p for row, p in zip(lengths, pixels)]) for kept, k in zip(sent, skips)]
    return order, [[k, round(float(b), 4), *np.round(row, 3).tolist()] for k, b, row in zip(skips, bpp, psnr)]


@click.command()
@click.option("--photos", default=PHOTOS, show_default=True,
              help="The photographs (a folder or a glob pattern) the orders and curves are measured on.")
@click.option("--out", type=click.Path(dir_okay=False), default=str(CHANNEL_SKIP_PATH), show_default=True)
@click.option("--codec", "only", multiple=True, type=click.Choice(BPP_CODECS),
              help="Refit only this codec (repeatable), keeping the others' fit from OUT (after retraining one).")
@click.option("--keep-order", is_flag=True,
              help="Keep each codec's drop order from OUT (one it lacks is measured) and refit only the curves "
                   "(the weights unchanged, the loss draws changed): a fifth less time.")
def main(photos: str, out: str, only: tuple[str, ...], keep_order: bool) -> None:
    torch.set_num_threads(2)
    try:
        images = [centre(image.pixels, CROP) for image in load_images((photos,))]
    except ImageError as error:
        raise click.UsageError(f"{error} (make the Debian photographs with tools/training/wide_photos.sh)") from None
    described = f"{len(images)} photographs ({photos}), their central {CROP}x{CROP} pixels"
    orders, curves = {}, {}
    kept = json.loads(Path(out).read_text()) if only or keep_order else {}
    if only:
        if (kept["losses"], kept["photos"], kept.get("draws", 1)) != (list(LOSSES), described, DRAWS):
            raise click.UsageError(f"{out} was fitted at other losses, on other photographs or with other draws: "
                                   "refit every codec")
        orders, curves = kept["drop_order"], kept["curves"]
    for name in only or BPP_CODECS:
        start = time.monotonic()
        orders[name], curves[name] = fit_codec(name, images, kept["drop_order"].get(name) if keep_order else None)
        best = max(curves[name], key=lambda p: p[2])
        print(f"{name}: all sent {curves[name][0][1]:.3f} bpp / {curves[name][0][2]:.2f} dB, best "
              f"k={best[0]} {best[1]:.3f} / {best[2]:.2f} ({time.monotonic() - start:.0f} s)", flush=True)
    names = BPP_CODECS  # the file lists them in this order, whichever were refitted
    orders, curves = ({n: d[n] for n in names if n in d} for d in (orders, curves))
    fitted = {
        "about": "channels each imputing -ec codec leaves out first (least PSNR per byte first), and each codec's "
                 "curve [k, mean payload bpp, mean PSNR dB with each share of the sent channels lost (over `draws` "
                 "patterns)] on the photographs below, by which --bpp shortlists codecs (channel_skip.shortlist)",
        "command": "python tools/training/fit_channel_skip.py",
        "photos": described,
        "losses": list(LOSSES), "draws": DRAWS, "drop_order": orders, "curves": curves}
    Path(out).write_text(compact_json(fitted) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
