"""Fit the window moments the imputing codecs' receivers use (netsem/weights/NAME.imputer.safetensors).

    .venv/bin/python tools/training/fit_imputer.py --photos runs/photos-wide   # the 8x-down codecs (those shipped)
    .venv/bin/python tools/training/fit_imputer.py --codec cnn-sem-impute-q6 --photos runs/photos-wide

The moments (`netsem.codecs.window_impute`) are counted on the latents of the photographs a codec was
trained on, at full and half size, never on the evaluation photographs; a function of the weights: refit
after retraining. Then, on the evaluation photographs, whole channels lost at random (the same draws for
both), it prints the PSNR kept by the learned per-position imputer and by the window's.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

from netsem.codecs.data import load_eval_images, load_training_images
from netsem.codecs.registry import LEARNED, get_codec
from netsem.codecs.window_impute import WindowMoments, imputer_path
from netsem.metrics import psnr_db

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "photos"
IMPUTING = [name for name, spec in LEARNED.items() if spec.config.impute]
# the codecs that ship moments: at 16x down (neighbours 16 pixels apart) the window gained too little
SHIPPED = [name for name in IMPUTING if LEARNED[name].config.down == 8]


def kept(codec, baseline, images, share: float, draws: int, seed: int) -> tuple[float, float]:
    """Mean PSNR kept (of the lossless decode) with ``share`` of the channels lost, by ``codec``
    and by ``baseline`` (the same network, the per-position imputer), the same channels lost."""
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for image in images:
        frame = codec.to_frame(image)
        full = psnr_db(image, codec.from_frame(frame))
        channels = frame.latent.shape[0]
        for _ in range(draws):
            received = np.ones(frame.latent.shape, bool)
            received[rng.choice(channels, round(share * channels), replace=False)] = False
            lossy = frame.with_received(received)
            ours.append(psnr_db(image, codec.from_frame(lossy)) / full)
            theirs.append(psnr_db(image, baseline.from_frame(lossy)) / full)
    return float(np.mean(ours)), float(np.mean(theirs))


@click.command()
@click.option("--codec", "codecs", multiple=True, type=click.Choice(IMPUTING),
              help="an imputing codec (repeatable; default: the 8x-down ones, whose moments ship)")
@click.option("--photos", type=click.Path(file_okay=False), default=str(PHOTOS), show_default=True,
              help="The photographs the codec was trained on.")
@click.option("--window", default=3, show_default=True, help="Positions a side (odd).")
def main(codecs: tuple[str, ...], photos: str, window: int) -> None:
    images = load_training_images(photos)
    held_out = list(load_eval_images().values())
    for name in codecs or SHIPPED:
        start = time.monotonic()
        baseline = get_codec(name, window_impute=False)
        latents = []
        for image in images:
            frame = baseline.to_frame(image)
            latents.append((frame.latent * np.float32(frame.scale)).transpose(1, 2, 0))
        moments = WindowMoments.count(latents, window)
        path = imputer_path(LEARNED[name].weights)
        moments.save(path, {"codec": name, "photos": f"{len(images)} latents of {photos}"})
        click.echo(f"{name}: {path}, a {window}x{window} window from {len(images)} latents "
                   f"({time.monotonic() - start:.0f} s)")
        codec = get_codec(name)
        for share in (0.1, 0.2, 0.4):
            ours, theirs = kept(codec, baseline, held_out, share, draws=2, seed=0)
            click.echo(f"  {share:.0%} of the channels lost: {ours:.1%} of the lossless PSNR kept "
                       f"(per position: {theirs:.1%})")


if __name__ == "__main__":
    main()
