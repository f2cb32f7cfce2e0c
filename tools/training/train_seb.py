"""Train seed 001's networks on CPU (tools/training/SEB.md has the commands that made the
shipped weights). Stage 1 without --kb, stage 2 (decoder on KB-quantized features) with it.
Resumes from --checkpoint when it exists.

    nice -n 10 .venv/bin/python tools/training/train_seb.py --steps 6000 \
        --checkpoint runs/seb/stage1.ckpt.safetensors --out runs/seb/stage1.safetensors
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import torch

from netsem.seb.data import PHOTOS, training_images
from netsem.seb.train import TrainOptions, train


@click.command()
@click.option("--steps", type=int, default=6000, show_default=True)
@click.option("--batch", type=int, default=8, show_default=True)
@click.option("--crop", type=int, default=128, show_default=True)
@click.option("--lr", type=float, default=3e-4, show_default=True)
@click.option("--lr-end", type=float, default=5e-5, show_default=True)
@click.option("--noise", type=float, default=0.1, show_default=True, help="stage 1: feature noise x RMS")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-hours", type=float, default=None)
@click.option("--photos", type=click.Path(file_okay=False), default=str(PHOTOS), show_default=True)
@click.option("--threads", type=int, default=2, show_default=True)
@click.option("--init", type=click.Path(dir_okay=False), default=None, help="stage 2: the stage-1 weights")
@click.option("--kb", "kb_path", type=click.Path(dir_okay=False), default=None, help="stage 2: the knowledge base")
@click.option("--checkpoint", type=click.Path(dir_okay=False), required=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
def main(steps, batch, crop, lr, lr_end, noise, seed, max_hours, photos, threads, init, kb_path, checkpoint, out):
    torch.set_num_threads(threads)
    kb = None
    if kb_path is not None:
        from netsem.seb.kb import KnowledgeBase

        kb = KnowledgeBase.load(kb_path)
    opts = TrainOptions(steps=steps, batch=batch, crop=crop, lr=lr, lr_end=lr_end, noise=noise, seed=seed,
                        max_seconds=None if max_hours is None else 3600 * max_hours)
    print("command:", " ".join(sys.argv), flush=True)
    train(training_images(photos), opts, Path(out), Path(checkpoint), init=Path(init) if init else None, kb=kb,
          log=lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
