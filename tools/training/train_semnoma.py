"""Train one of seed 004's networks on the CPU (tools/training/SEMNOMA.md lists the commands
that made the shipped weights). Resumes from --checkpoint when it exists.

    nice -n 10 .venv/bin/python tools/training/train_semnoma.py --role teacher --steps 3000 \
        --checkpoint runs/noma/teacher.ckpt.safetensors --out netsem/weights/semnoma-teacher.safetensors
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import torch

from netsem.codecs.data import load_training_images
from netsem.semnoma.train import ROLES, TrainOptions, train

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "photos"


@click.command()
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--steps", type=int, default=3000, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--lr-end", type=float, default=1e-5, show_default=True)
@click.option("--batch", type=int, default=16, show_default=True, help="transmissions (of 2 users) per step")
@click.option("--snr", "snr_range", type=(float, float), default=(0.0, 20.0), show_default=True,
              help="training SNR range, dB (LOW HIGH; equal for a per-SNR model)")
@click.option("--adaptive/--no-adaptive", default=True, show_default=True, help="the SNR/CSI adaptive modules")
@click.option("--distill/--no-distill", default=False, show_default=True, help="student: FA + CH distillation")
@click.option("--consistency", type=float, default=0.0, show_default=True,
              help="student: weight of the SIC residue |s - re-encoded s^|^2 of the cancelled users in the loss")
@click.option("--init", default=None, help="student: the teacher to start from; refiner: the student it refines")
@click.option("--teacher", default=None, help="the distillation's teacher (name or file)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-hours", type=float, default=None)
@click.option("--photos", type=click.Path(file_okay=False), default=str(PHOTOS), show_default=True)
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--checkpoint", type=click.Path(dir_okay=False), required=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
def main(role, steps, lr, lr_end, batch, snr_range, adaptive, distill, consistency, init, teacher, seed, max_hours, photos,
         threads, checkpoint, out):
    torch.set_num_threads(threads)
    opts = TrainOptions(role=role, steps=steps, lr=lr, lr_end=lr_end, batch=batch, snr_low=snr_range[0],
                        snr_high=snr_range[1], adaptive=adaptive, distill=distill, consistency=consistency, init=init,
                        teacher=teacher,
                        seed=seed, max_seconds=None if max_hours is None else 3600 * max_hours)
    print("command:", " ".join(sys.argv), flush=True)
    train(opts, load_training_images(photos), Path(out), checkpoint=Path(checkpoint),
          log=lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
