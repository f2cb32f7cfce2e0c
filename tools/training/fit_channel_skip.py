"""Fit which channels each imputing -ec codec leaves out first, and the rate ladder `--bpp` walks.

    .venv/bin/python tools/training/fit_channel_skip.py          # writes netsem/weights/channel-skip.json

An imputing receiver estimates a lost channel from the others, and for some channels about as well
as the channel itself would tell it: their bytes buy little. For each codec, every channel is left
out alone on each training photograph (the shared photographs and scikit-image's training ones, at
half size, their central 256x256 pixels: `load_training_images`), and the channels are ordered by the PSNR lost per byte saved,
least first. Skipping the first k of that order gives a rate point between the trained ones (and
below the lowest). Each codec's curve (k -> mean payload bpp, mean PSNR on the same photographs) is
kept; the ladder is the points no other point beats in both rate and PSNR, which `--bpp` walks
from the top. A function of the codec's weights and prior: refit after either changes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import numpy as np
import torch

from netsem.codecs.channel_skip import CHANNEL_SKIP_PATH
from netsem.codecs.data import load_training_images
from netsem.codecs.registry import QUALITY_CODECS, get_codec

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "photos"
BATCH = 12  # decodes per network pass
CROP = 256  # pixels a side of the centre of each photograph: ~90 decodes each, 2 cores, ~3 min a codec
STEP = 2  # the curve's k: 0, 2, 4, ...


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


def centre(image: np.ndarray, size: int) -> np.ndarray:
    """The central size x size pixels (all of a smaller side)."""
    top, left = max(0, (image.shape[0] - size) // 2), max(0, (image.shape[1] - size) // 2)
    return np.ascontiguousarray(image[top:top + size, left:left + size])


def fit_codec(name: str, images: list[np.ndarray]) -> tuple[list[int], list[list[float]]]:
    """(the channels of ``name`` in the order they are left out, [k, bpp, psnr] for k = 0, STEP, ... < C)."""
    codec = get_codec(name)
    inner = get_codec(codec.inner.name, engine="torch")
    net, step = inner.runtime.net, float(inner.config.quant_step)
    channels = inner.config.latent_channels
    latents, lengths, pixels = [], [], []
    drop_loss = np.zeros(channels)
    for image in images:
        q = inner.to_frame(image).latent
        latents.append(q)
        lengths.append([len(codec.prior.encode(q[c], c)) for c in range(channels)])
        pixels.append(image.shape[0] * image.shape[1])
        masks = np.vstack([np.ones((1, channels), bool), ~np.eye(channels, dtype=bool)])
        psnrs = decoded_psnrs(net, (q * step).astype(np.float32), masks, image)
        drop_loss += psnrs[0] - psnrs[1:]
    lengths = np.array(lengths, float)
    # PSNR lost per byte saved, each averaged over the photographs; a channel whose loss is
    # negative (the imputation beats it) goes first
    order = np.argsort(drop_loss / len(images) / lengths.mean(axis=0), kind="stable").tolist()
    curve = []
    for k in range(0, channels, STEP):
        sent = np.ones(channels, bool)
        sent[order[:k]] = False
        psnr = np.mean([decoded_psnrs(net, (q * step).astype(np.float32), sent[None], image)[0]
                        for q, image in zip(latents, images)])
        # a channel left out still travels as a one-byte unit
        bpp = np.mean([(row[sent].sum() + k) * 8 / p for row, p in zip(lengths, pixels)])
        curve.append([k, round(float(bpp), 4), round(float(psnr), 3)])
    return order, curve


def ladder(curves: dict[str, list[list[float]]]) -> list[dict]:
    """The points of every curve that no other point beats in rate and PSNR, lowest rate first."""
    points = sorted(((bpp, psnr, name, k) for name, curve in curves.items() for k, bpp, psnr in curve),
                    key=lambda p: (p[0], -p[1]))
    kept, best = [], -np.inf
    for bpp, psnr, name, k in points:
        if psnr > best:
            kept.append({"codec": name, "skip": int(k), "bpp": bpp, "psnr_db": psnr})
            best = psnr
    return kept


@click.command()
@click.option("--photos", type=click.Path(file_okay=False), default=str(PHOTOS), show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=str(CHANNEL_SKIP_PATH), show_default=True)
def main(photos: str, out: str) -> None:
    torch.set_num_threads(2)
    images = [centre(image, CROP) for image in load_training_images(photos, scales=(0.5,))]
    orders, curves = {}, {}
    for name in QUALITY_CODECS.values():
        start = time.monotonic()
        orders[name], curves[name] = fit_codec(name, images)
        best = max(curves[name], key=lambda p: p[2])
        print(f"{name}: all sent {curves[name][0][1]:.3f} bpp / {curves[name][0][2]:.2f} dB, best "
              f"k={best[0]} {best[1]:.3f} / {best[2]:.2f} ({time.monotonic() - start:.0f} s)", flush=True)
    steps = ladder(curves)
    Path(out).write_text(json.dumps({
        "about": "channels each imputing -ec codec leaves out first (least PSNR per byte first), each codec's "
                 "curve [k, mean payload bpp, mean PSNR dB] on the training photographs, and the ladder --bpp walks",
        "command": "python tools/training/fit_channel_skip.py",
        "photos": f"{len(images)} training photographs at half size, their central {CROP}x{CROP} pixels",
        "drop_order": orders, "curves": curves, "ladder": steps}, indent=1) + "\n")
    print(f"{out}: ladder of {len(steps)} points, {steps[0]['bpp']:.3f} to {steps[-1]['bpp']:.3f} bpp")


if __name__ == "__main__":
    main()
