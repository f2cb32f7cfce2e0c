#!/usr/bin/env python3
"""Make a starting point for a CNN codec with fewer latent channels from trained weights.

    python3 tools/training/slice_channels.py netsem/weights/cnn-sem.safetensors \
        runs/p4/init/cnn-sem.safetensors --channels 60 --set impute=true --photos runs/photos

Keeps the ``--channels`` transmitted channels whose loss costs the most (each channel of the
source network is zeroed in turn on seeded training crops, never the evaluation photos) and
slices every tensor indexed by latent channel: the head's output rows (1x1 conv, or Dynamic
Scale's projection rows and its MLP's last layer), the decoder's first layer input rows (and
the mask rows of a masked decoder; zeros when the source decoder was not masked).  ``--set``
changes other config fields of the result (rescale, impute, masked, broadcast_k): an imputer
starts from the channel covariance of the sliced network's latent on the same crops.  The
result keeps the source's step count and history, plus a "sliced" history entry.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from netsem.codecs.data import load_training_images
from netsem.codecs.models import NetConfig, build_net, count_parameters, override_config
from netsem.codecs.train import CropSampler
from netsem.codecs.weights import load_state, save_state
from netsem.metrics import psnr_from_mse


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.mean((a.clamp(0, 1) - b) ** 2))


@torch.inference_mode()
def channel_costs(net, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """MSE increase when each transmitted channel alone is lost (rounded latent)."""
    y = torch.round(net.analysis(x))
    base = mse(net.synthesis(y), x)
    costs = []
    for j in range(y.shape[1]):
        yj = y.clone()
        yj[:, j] = 0
        costs.append(mse(net.synthesis(yj), x) - base)
    return torch.tensor(costs), base


def slice_state(state: dict, src: NetConfig, dst: NetConfig, keep: torch.Tensor) -> dict:
    c = src.latent_channels
    out = {}
    for k, v in state.items():
        v = v.float()
        if k in ("head.weight", "head.bias", "head.mlp.6.weight", "head.mlp.6.bias"):
            v = v[keep]
        elif k == "decoder.0.weight":  # ConvTranspose2d: (in, out, kh, kw)
            z = v[keep]
            if dst.masked:
                m = v[c + keep] if src.masked else torch.zeros_like(z)
                z = torch.cat([z, m])
            v = z
        elif k.startswith("impute."):
            continue  # rebuilt from the sliced latent's covariance
        out[k] = v
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--channels", type=int, required=True)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--photos", type=Path, default=Path("runs/photos"))
    ap.add_argument("--crops", type=int, default=16)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()

    state, meta = load_state(a.src)
    src = NetConfig.from_json(meta["config"])
    if src.arch != "cnn":
        raise SystemExit("only cnn codecs are sliced")
    if not 0 < a.channels <= src.latent_channels:
        raise SystemExit(f"--channels must be in 1..{src.latent_channels}")
    dst = override_config(dataclasses.replace(src, latent_channels=a.channels), a.overrides)
    dev = torch.device(a.device)
    torch.manual_seed(a.seed)

    net = build_net(src)
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    net.eval().to(dev)
    images = load_training_images(a.photos, skimage_extras=False)
    x = CropSampler(images, a.crop, dev, a.seed).batch(a.crops)
    costs, base = channel_costs(net, x)
    order = torch.argsort(costs, descending=True)
    keep = torch.sort(order[: a.channels]).values
    dropped = sorted(set(range(src.latent_channels)) - set(keep.tolist()))

    new = build_net(dst)
    sliced = slice_state(state, src, dst, keep)
    if dst.impute:
        probe = build_net(dataclasses.replace(dst, impute=False, rescale=False))
        probe.load_state_dict(sliced, strict=True)
        probe.eval().to(dev)
        with torch.inference_mode():
            z = torch.round(probe.analysis(x)) / dst.amplitude
        zf = z.transpose(0, 1).reshape(dst.latent_channels, -1).double()
        cov = (zf @ zf.T / zf.shape[1]).float().cpu()  # second moment: lost values read as 0
        sliced["impute.l"] = torch.linalg.cholesky(cov + 1e-3 * torch.eye(len(cov)))
    new.load_state_dict(sliced, strict=True)
    new.eval().to(dev)
    with torch.inference_mode():
        after = mse(new.synthesis(torch.round(new.analysis(x))), x)
    hist = json.loads(meta.get("history", "[]"))
    key = "sliced" if a.channels < src.latent_channels else "recalibrated"
    hist.append({key: {"from": str(a.src), "channels": [src.latent_channels, a.channels],
                            "dropped": dropped, "config": dst.to_json(),
                            "crops": [a.crops, a.crop, a.seed]}})
    out_meta = dict(meta)
    out_meta.update(config=dst.to_json(), history=json.dumps(hist),
                    parameters=str(count_parameters(new)))
    a.dst.parent.mkdir(parents=True, exist_ok=True)
    save_state(a.dst, {k: v.detach() for k, v in new.state_dict().items()}, out_meta)
    print(f"{a.src} -> {a.dst}: dropped channels {dropped}; crop PSNR {psnr_from_mse(base):.2f} -> "
          f"{psnr_from_mse(after):.2f} dB (before fine-tuning); config {dst.to_json()}")


if __name__ == "__main__":
    main()
