#!/usr/bin/env python3
"""Quick PSNR check of CNN/Swin weight files under random channel loss (GPU or CPU).

    python3 tools/training/quick_eval.py runs/p4/a/cnn-sem.safetensors ... --device cuda

Mirrors `netsem evaluate` (same evaluation photographs, same seeded unit masks, same
uint8 rounding) but takes the network config from each file's metadata, so candidates that
are not (yet) registered can be compared.  PSNR only (no SSIM, no JPEG).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from netsem.codecs.data import load_eval_images
from netsem.codecs.evaluate import PARTITION_SEED, unit_mask
from netsem.codecs.models import NetConfig, build_net, pad_to_multiple
from netsem.codecs.weights import load_state
from netsem.metrics import psnr_db as psnr
from packetizers.frames import LatentFrame


@torch.inference_mode()
def evaluate_file(path: Path, images: dict, rates: list[float], seeds: int, partition: str,
                  dev: torch.device) -> dict:
    state, meta = load_state(path)
    cfg = NetConfig.from_json(meta["config"])
    net = build_net(cfg)
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    net.eval().to(dev)
    a = cfg.amplitude
    res: dict = {}
    for name, img in images.items():
        h, w = img.shape[:2]
        x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float().to(dev) / 255.0
        q = torch.round(net.analysis(pad_to_multiple(x, 16))).clamp(-a, a)[0]
        enc = LatentFrame(q.to(torch.int16).cpu().numpy().astype(np.int8), "chw", cfg.bit_width, True, 1.0 / a, (h, w))
        for rate in rates:
            for seed in range(seeds if rate > 0 else 1):
                rng = np.random.default_rng([seed, round(rate * 1000),
                                             PARTITION_SEED[partition]])
                m = torch.from_numpy(unit_mask(enc, partition, rate, rng)).to(dev)[None].float()
                y = q[None] * m
                xh = net.synthesis(y, m if cfg.needs_mask else None)
                out = (xh[0, :, :h, :w].clamp(0, 1) * 255.0).round().to(torch.uint8)
                res.setdefault(rate, {}).setdefault(name, []).append(
                    psnr(img, out.permute(1, 2, 0).cpu().numpy()))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--rates", default="0,0.1,0.2,0.3,0.4")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--partition", default="channel")
    ap.add_argument("--images", default=None, help="comma-separated subset of the eval photos")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    rates = [float(r) for r in a.rates.split(",")]
    images = load_eval_images()
    if a.images:
        images = {k: images[k] for k in a.images.split(",")}
    dev = torch.device(a.device)
    head = f"{'file':42s} " + " ".join(f"{r:>6.0%}" for r in rates) + "  kept  maxstep var10"
    print(f"PSNR (dB), {a.partition} loss, mean over {len(images)} images x {a.seeds} seeds")
    print(head)
    for f in a.files:
        try:
            res = evaluate_file(f, images, rates, a.seeds, a.partition, dev)
        except Exception as exc:  # noqa: BLE001 -- keep going: one bad candidate must not hide the others
            print(f"{str(f)[-42:]:42s} FAILED {type(exc).__name__}: {exc}")
            continue
        means = [float(np.mean([v for vs in res[r].values() for v in vs])) for r in rates]
        steps = max(abs(means[i] - means[i + 1]) for i in range(len(means) - 1)) if len(means) > 1 else 0
        var10 = float("nan")
        if 0.0 in res and 0.1 in res:
            d = [res[0.0][n][0] - v for n in res[0.1] for v in res[0.1][n]]
            var10 = float(np.var(d))
        print(f"{str(f)[-42:]:42s} " + " ".join(f"{m:6.2f}" for m in means)
              + f"  {means[-1] / means[0]:.1%} {steps:5.2f} {var10:5.2f}", flush=True)


if __name__ == "__main__":
    main()
