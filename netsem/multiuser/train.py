"""Train a seed-000 model (Algorithm 2) on CPU, resumable, and write its weights.

Per step: a batch of G x K users (seed: 10 x 5) of 32x32 crops (`data.training_batch`), the
grouping (Algorithm 1 on the detached private features, or batch order), one channel for the
whole batch taken in turn from AWGN, Rician, Rayleigh (one model serves all three; the seed
does not say whether it trained one per channel), one SNR ~ U(12, 18) dB for the batch, a
channel draw per user, loss = Charbonnier + lambda x repulsion over the batch's G common
features; Adam at a constant 1e-4 (the seed's), or decayed from `lr` to `lr_end` on a cosine.

Everything random is a function of (seed, step): the crops, the SNR and the channel draws
(`torch.Generator` seeded per step), the k-means start. A checkpoint (fp32 weights, Adam's
moments, the step; safetensors) is written every `checkpoint_every` seconds and at the end;
`resume` continues from it and draws exactly the batches the uninterrupted run would have.
The shipped file (`save_model`) holds fp16 weights and the config in its metadata.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from netsem.metrics import psnr_from_mse
from netsem.training import StatWindow, adam_step, cosine_lr
from netsem.multiuser.channel import CHANNELS
from netsem.multiuser.config import GssmaConfig
from netsem.multiuser.data import test_batches, to_tensor, training_batch
from netsem.multiuser.losses import LAMBDA, LAMBDA_CENTRE, charbonnier, repulsion_terms
from netsem.multiuser.model import Gssma, count_parameters
from netsem.multiuser.scheme import encode, reconstruct
from netsem.multiuser.weights import load_checkpoint, save_checkpoint, save_model


@dataclass
class TrainOptions:
    steps: int = 20000
    lr: float = 1e-4  # the seed's, constant
    lr_end: float | None = None  # cosine decay from lr to lr_end over `steps` (None: constant)
    groups: int = 10  # G per batch (K is the config's group_size)
    snr_low: float = 12.0
    snr_high: float = 18.0
    repulsion_weight: float = LAMBDA
    centre_weight: float = LAMBDA_CENTRE
    seed: int = 0
    max_seconds: float | None = None
    log_every: int = 50
    checkpoint_every: float = 300.0  # seconds
    validate_batches: int = 2  # test batches scored at each checkpoint (AWGN, 15 dB)


def lr_at(step: int, opts: TrainOptions) -> float:
    return opts.lr if opts.lr_end is None else cosine_lr(step, opts.steps, opts.lr, opts.lr_end)


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step, 1]).generate_state(1)[0]))


def loss_on_batch(model: Gssma, images: torch.Tensor, opts: TrainOptions, step: int) -> tuple[torch.Tensor, dict]:
    rng = np.random.default_rng([opts.seed, step, 2])
    channel = CHANNELS[step % len(CHANNELS)]
    snr = float(rng.uniform(opts.snr_low, opts.snr_high))
    users = images.shape[0]
    encoded = encode(model, images, users, opts.groups, cluster_seed=rng)
    out = reconstruct(model, encoded, channel, snr, step_generator(opts.seed, step))
    recon = charbonnier(images, out)
    stats = {"charbonnier": recon.item(), "mse": (images - out.detach()).pow(2).mean().item()}
    loss = recon
    if encoded.raw_common is not None:
        terms = repulsion_terms(encoded.raw_common)
        loss = loss + opts.repulsion_weight * (terms["euclidean"] + opts.centre_weight * terms["centre"]
                                               + terms["angular"])
        stats.update({k: v.item() for k, v in terms.items()})
    stats["loss"] = loss.item()
    return loss, stats


@torch.no_grad()
def validate(model: Gssma, batches: list[np.ndarray], groups: int, snr_db: float = 15.0) -> float:
    """Mean PSNR (dB, from the mean MSE) on fixed test batches, AWGN at `snr_db`."""
    model.eval()
    mses = []
    for n, batch in enumerate(batches):
        images = to_tensor(batch)
        encoded = encode(model, images, images.shape[0], groups, cluster_seed=n)
        out = reconstruct(model, encoded, "awgn", snr_db, torch.Generator().manual_seed(n))
        mses.append((images - out).pow(2).mean().item())
    model.train()
    return psnr_from_mse(float(np.mean(mses)))


def train(config: GssmaConfig, photos: list[np.ndarray], opts: TrainOptions, out: Path, *,
          checkpoint: Path, resume: bool = True, log=print) -> Gssma:
    torch.manual_seed(opts.seed)
    model = Gssma(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=opts.lr)
    start, elapsed_before, history = 0, 0.0, []
    if resume and checkpoint.exists():
        start, elapsed_before, history = load_checkpoint(checkpoint, model, optimizer)
        log(f"resumed from {checkpoint} at step {start} ({elapsed_before / 3600:.2f} h trained)")
    else:
        log(f"new model: {count_parameters(model):,} parameters, L_c {config.common_symbols}, "
            f"L_p {config.private_symbols} complex symbols, config {config.to_json()}")
    users = opts.groups * config.group_size
    check_batches = test_batches(opts.validate_batches, users)
    began = time.monotonic()
    last_checkpoint = began
    window = StatWindow()
    step = start

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - began

    def save() -> None:
        record = {"step": step, "hours": round(elapsed() / 3600, 3), "test_psnr_awgn15": round(validate(
            model, check_batches, opts.groups), 3)}
        history.append(record)
        save_checkpoint(checkpoint, model, optimizer, step, elapsed(), history, config, opts)
        log(f"checkpoint {checkpoint} {json.dumps(record)}")

    model.train()
    while step < opts.steps:
        if opts.max_seconds is not None and time.monotonic() - began > opts.max_seconds:
            log(f"time limit reached at step {step}")
            break
        images = to_tensor(training_batch(photos, users, opts.seed, step))
        loss, stats = loss_on_batch(model, images, opts, step)
        adam_step(optimizer, loss, lr_at(step, opts))
        step += 1
        window.add(stats)
        if step % opts.log_every == 0:
            log(window.line(step, elapsed() / 3600))
        if time.monotonic() - last_checkpoint >= opts.checkpoint_every:
            save()
            last_checkpoint = time.monotonic()
    save()
    save_model(out, model, {"training": json.dumps({"options": asdict(opts), "steps": step,
                                                    "hours": round(elapsed() / 3600, 3), "history": history})})
    log(f"weights: {out}")
    return model
