"""Train DeepJSCC (netsem/codecs/deepjscc.py) for netsem's packet channel; writes safetensors.

    python tools/training/train_deepjscc.py --out runs/deepjscc --steps 20000 --threads 1

As the paper: MSE on random crops, Adam, AWGN on the power-normalised latent (SNR drawn from
10-20 dB per sample). For packets: the 6-bit quantizer's noise (U(-1/2, 1/2) steps), and on
half the samples lost latent pieces at a rate ~ U(0, 0.5) — whole channels, positions or 4x4
blocks, as netsem's own codecs train (netsem.codecs.train.drop_mask, `mixed`) — zeros where
lost, as the receiver gives them. Crops, flips and drops come from seeded generators;
checkpoints every two minutes resume with --init (the step counter and schedule continue).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from netsem.codecs.data import load_training_images  # noqa: E402
from netsem.codecs.deepjscc import CHANNELS, CLIP, FILTERS, DeepJSCCDecoder, DeepJSCCEncoder, metadata  # noqa: E402
from netsem.codecs.train import CropSampler, TrainOptions, drop_mask, lr_at  # noqa: E402
from netsem.codecs.weights import load_state, save_state  # noqa: E402
from netsem.metrics import psnr_from_mse  # noqa: E402

BIT_WIDTH = 6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=None, help="extra training photographs (a folder)")
    parser.add_argument("--out", type=Path, default=Path("runs/deepjscc"))
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--init", type=Path, default=None, help="resume from this weight file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    encoder, decoder = DeepJSCCEncoder(), DeepJSCCDecoder()
    start, history = 0, []
    if args.init is not None:
        state, meta = load_state(args.init)
        encoder.load_state_dict({k[8:]: v.float() for k, v in state.items() if k.startswith("encoder.")})
        decoder.load_state_dict({k[8:]: v.float() for k, v in state.items() if k.startswith("decoder.")})
        start, history = int(meta["step"]), json.loads(meta["history"])
    options = TrainOptions(steps=args.steps, batch=args.batch, crop=args.crop, lr=args.lr, warmup=200,
                           seed=args.seed, drop="mixed", drop_apply=0.5, drop_max=0.5)
    total = start + args.steps
    parameters = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=args.lr)
    sampler = CropSampler(load_training_images(args.photos), args.crop, torch.device("cpu"), args.seed + 1000 * start)
    generator = torch.Generator().manual_seed(args.seed + 7 + 1000 * start)
    step_size = CLIP / ((1 << (BIT_WIDTH - 1)) - 1)
    args.out.mkdir(parents=True, exist_ok=True)
    weights, log = args.out / "deepjscc.safetensors", (args.out / "deepjscc.log").open("a")

    def checkpoint(step: int) -> None:
        phase = {"from": start, "to": step, "options": {**vars(args), "photos": str(args.photos),
                                                        "out": str(args.out), "init": str(args.init)}}
        state = {**{f"encoder.{k}": v for k, v in encoder.state_dict().items()},
                 **{f"decoder.{k}": v for k, v in decoder.state_dict().items()}}
        save_state(weights, state, {**metadata(CHANNELS, FILTERS, CLIP), "step": str(step),
                                    "history": json.dumps(history + [phase]), "bit_width": str(BIT_WIDTH)})

    started = last_checkpoint = time.monotonic()
    step = start
    for step in range(start, total):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, options, start, total)
        x = sampler.batch(args.batch)
        z = encoder(x)
        snr_db = 10 + 10 * torch.rand(z.shape[0], 1, 1, 1, generator=generator)
        noisy = z + torch.randn(z.shape, generator=generator) * 10 ** (-snr_db / 20)
        noisy = noisy.clamp(-CLIP, CLIP) + (torch.rand(z.shape, generator=generator) - 0.5) * step_size
        keep = drop_mask(tuple(z.shape), options, generator, torch.device("cpu"))
        loss = torch.mean((decoder(noisy if keep is None else noisy * keep) - x) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        if (step + 1) % 100 == 0:
            elapsed = time.monotonic() - started
            value = loss.item()
            print(f"step {step + 1}/{total} loss {value:.5f} psnr {psnr_from_mse(value):.2f} "
                  f"lr {optimizer.param_groups[0]['lr']:.2e} {(step + 1 - start) / elapsed:.1f} it/s", file=log,
                  flush=True)
        if time.monotonic() - last_checkpoint > 120:
            checkpoint(step + 1)
            last_checkpoint = time.monotonic()
    checkpoint(step + 1)
    print(f"# done: {total - start} steps in {time.monotonic() - started:.0f} s -> {weights}", file=log, flush=True)


if __name__ == "__main__":
    main()
