"""Build the initial knowledge base (seed 001 eqs. 1-4) from the training photographs'
features under trained f_SE weights (tools/training/SEB.md has the commands).

    .venv/bin/python tools/training/build_seb_kb.py --weights runs/seb/stage1.safetensors \
        --out netsem/weights/seb-kb.safetensors
"""

from __future__ import annotations

import sys

import click
import numpy as np
import torch

from netsem.seb.codec import analyse
from netsem.seb.data import PHOTOS, training_images
from netsem.seb.kb import KnowledgeBase
from netsem.seb.train import load_model


@click.command()
@click.option("--weights", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--groups", type=int, default=16, show_default=True, help="slices per patch feature (Sebs per patch)")
@click.option("--fine", "fine_sebs", type=int, default=192, show_default=True, help="fine Sebs per slice (of 256 slots)")
@click.option("--coarse", "coarse_sebs", type=int, default=48, show_default=True, help="coarse Sebs per slice (of 64)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--photos", type=click.Path(file_okay=False), default=str(PHOTOS), show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
def main(weights, groups, fine_sebs, coarse_sebs, seed, photos, out):
    torch.set_num_threads(2)
    print("command:", " ".join(sys.argv), flush=True)
    model, _ = load_model(weights)
    features, importance = [], []
    for image in training_images(photos):
        h, w = (s // 32 * 32 for s in image.shape[:2])
        f, i = analyse(model, image[:h, :w])
        features.append(f)
        importance.append(i)
    print(f"{sum(f.shape[1] * f.shape[2] for f in features)} patches from {len(features)} images", flush=True)
    kb = KnowledgeBase.build(features, importance, groups=groups, fine_sebs=fine_sebs, coarse_sebs=coarse_sebs, seed=seed)
    kb.save(out)
    d = [kb.distortion(f) for f in features]
    rms = float(np.sqrt(np.mean([np.mean(f ** 2) for f in features])))
    print(f"wrote {out}: version {kb.version}, fine {kb.fine.counts()[0]} / coarse {kb.coarse.counts()[0]} Sebs per slice, "
          f"eq. 5 distortion {np.mean(d):.3f} (feature RMS x sqrt(D) = {rms * np.sqrt(features[0].shape[0]):.3f})")


if __name__ == "__main__":
    main()
