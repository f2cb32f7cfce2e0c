"""Fit the factorized priors the -ec codecs ship with (netsem/weights/CODEC.prior.safetensors).

    .venv/bin/python tools/training/fit_prior.py                 # cnn-sem and cnn-sem-impute
    .venv/bin/python tools/training/fit_prior.py --codec cnn-sem --photos ../shared/data/photos

The prior of a codec is counted on the latents of the photographs that codec was trained on
(`netsem.codecs.data.load_training_images`: the shared photographs and scikit-image's training
photos, each at full and half size), never on the evaluation photographs. It is a function of
the codec's weights: refit after retraining a codec.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import torch

from netsem.codecs.data import load_training_images
from netsem.codecs.entropy import FactorizedPrior
from netsem.codecs.registry import ENTROPY_CODED, get_codec, prior_path

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "photos"


@click.command()
@click.option("--codec", "codecs", multiple=True, help="a latent codec (default: every one an -ec codec wraps)")
@click.option("--photos", type=click.Path(file_okay=False), default=str(PHOTOS), show_default=True)
def main(codecs: tuple[str, ...], photos: str) -> None:
    torch.set_num_threads(1)
    images = load_training_images(photos)
    for name in codecs or [n.removesuffix("-ec") for n in ENTROPY_CODED]:
        codec = get_codec(name)
        start = time.monotonic()
        frames = [codec.to_frame(image) for image in images]
        prior = FactorizedPrior.fit(frames, source=f"{len(frames)} training latents of {name}")
        raw = sum(f.wire_bits for f in frames)
        coded = sum(prior.bits(f.latent) for f in frames)
        prior.save(prior_path(name), {"codec": name, "photos": str(len(images))})
        click.echo(f"{name}: {prior_path(name)} from {len(frames)} latents, {coded / raw:.1%} of the raw bits "
                   f"on the training latents ({time.monotonic() - start:.0f} s)")


if __name__ == "__main__":
    main()
