"""Fit the row-context priors the -ec codecs ship with (netsem/weights/CODEC.prior.safetensors).

    .venv/bin/python tools/training/fit_prior.py                 # cnn-sem and cnn-sem-impute
    .venv/bin/python tools/training/fit_prior.py --codec cnn-sem --photos ../shared/data/photos

The prior of a codec is counted on the latents of the photographs that codec was trained on
(`netsem.codecs.data.load_training_images`: the shared photographs and scikit-image's training
photos, each at full and half size), never on the evaluation photographs. It is a function of
the codec's weights: refit after retraining a codec. It prints what the prior spends, against
the raw bits and against a factorized prior (the marginal of each channel), on the training and on
the evaluation photographs.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np
import torch

from netsem.codecs.data import load_eval_images, load_training_images
from netsem.codecs.entropy import RowContextPrior
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
        prior = RowContextPrior.fit(frames, source=f"{len(frames)} training latents of {name}")
        prior.save(prior_path(name), {"codec": name, "photos": str(len(images))})
        click.echo(f"{name}: {prior_path(name)} from {len(frames)} latents ({time.monotonic() - start:.0f} s)")
        held_out = [codec.to_frame(image) for image in load_eval_images().values()]
        for label, latents in (("training", frames), ("evaluation", held_out)):
            raw = sum(f.wire_bits for f in latents)
            coded = sum(prior.bits(f.latent) for f in latents)
            factorized = sum(-np.log2(np.take_along_axis(prior.marginal, f.latent.reshape(prior.channels, -1)
                                                         .astype(np.int64) - prior.lowest, axis=1)).sum()
                             for f in latents)
            click.echo(f"  {label} photographs: {coded / raw:.1%} of the raw bits, {coded / factorized:.1%} of a "
                       f"factorized prior's")


if __name__ == "__main__":
    main()
