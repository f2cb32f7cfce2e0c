"""Train one seed-000 model on CPU (see tools/training/MULTIUSER.md for the commands that made
the shipped weights). Resumes from --checkpoint when it exists.

    nice -n 10 .venv/bin/python tools/training/train_multiuser.py --ratio 0.2 --steps 12000 \
        --checkpoint runs/mu/c0.2.ckpt.safetensors --out netsem/weights/gssma-c0.2.safetensors
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import torch

from netsem.codecs.data import load_training_images
from netsem.multiuser.config import GssmaConfig
from netsem.multiuser.train import TrainOptions, train

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "photos"


@click.command()
@click.option("--ratio", type=float, default=0.2, show_default=True, help="common ratio (0: private-only)")
@click.option("--clustering/--no-clustering", default=True, show_default=True, help="Algorithm 1 or batch-order groups")
@click.option("--steps", type=int, default=20000, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True, help="Adam's learning rate (the seed's 1e-4)")
@click.option("--lr-end", type=float, default=None, help="decay to this on a cosine over --steps (default: constant)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-hours", type=float, default=None, help="stop (and save) after this long in this run")
@click.option("--photos", type=click.Path(file_okay=False), default=str(PHOTOS), show_default=True)
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--log-every", type=int, default=50, show_default=True)
@click.option("--checkpoint-minutes", type=float, default=5.0, show_default=True)
@click.option("--checkpoint", type=click.Path(dir_okay=False), required=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
def main(ratio, clustering, steps, lr, lr_end, seed, max_hours, photos, threads, log_every, checkpoint_minutes, checkpoint, out):
    torch.set_num_threads(threads)
    config = GssmaConfig(common_ratio=ratio, clustering=clustering and ratio > 0)
    opts = TrainOptions(steps=steps, lr=lr, lr_end=lr_end, seed=seed, log_every=log_every, checkpoint_every=60 * checkpoint_minutes,
                        max_seconds=None if max_hours is None else 3600 * max_hours)
    print("command:", " ".join(sys.argv), flush=True)
    train(config, load_training_images(photos), opts, Path(out), checkpoint=Path(checkpoint),
          log=lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
