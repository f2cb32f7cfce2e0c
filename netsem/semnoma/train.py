"""Train seed 004's networks on the CPU, resumable (`tools/training/SEMNOMA.md` has the commands).

Roles, in the order they are trained (stage 1, then stage 2):
- `teacher`: the JSCC over interference-free orthogonal channels (`scheme.oma`);
- `student`: the same network over the superposed uplink with SIC (`scheme.noma_sic`), started
  from the teacher's weights; with `distill` the teacher (frozen) adds the feature-affinity
  and cross-head losses (`netsem.semnoma.distill`), without it the loss is the MSE alone;
- `refiner`: the residual denoiser on a frozen student's outputs (`netsem.semnoma.refine`).

A step: `batch` transmissions of K = 2 users (near 0.8, far 0.2 of the received power), 32x32
crops of the training photographs (seed 000's sampler, `netsem.multiuser.data`; CIFAR-10 is
not available offline), one SNR per transmission ~ U(snr_low, snr_high) dB (one value for the
per-SNR models), AWGN and Rayleigh on alternate steps, Adam with a cosine decay. Every draw is
a function of (seed, step), so a resumed run draws what the uninterrupted run would have.
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
from netsem.multiuser.data import test_batches, to_tensor, training_batch
from netsem.semnoma.channel import CHANNELS, NEAR_FAR, Uplink
from netsem.semnoma.config import SemNomaConfig
from netsem.semnoma.distill import cross_head_loss, feature_affinity_loss, LAMBDA_CH, LAMBDA_FA
from netsem.semnoma.model import SemNomaJscc, count_parameters
from netsem.semnoma.refine import Refiner
from netsem.semnoma.scheme import noma_sic, oma, sic_residue
from netsem.semnoma.weights import load_checkpoint, load_model, save_checkpoint, save_model

ROLES = ("teacher", "student", "refiner")


@dataclass
class TrainOptions:
    role: str = "teacher"
    steps: int = 3000
    lr: float = 1e-3
    lr_end: float = 1e-5
    batch: int = 16  # transmissions per step, K users each
    snr_low: float = 0.0
    snr_high: float = 20.0
    powers: tuple[float, ...] = NEAR_FAR
    adaptive: bool = True
    distill: bool = False
    lambda_fa: float = LAMBDA_FA
    lambda_ch: float = LAMBDA_CH
    consistency: float = 0.0  # weight of the SIC residue (`scheme.sic_residue`) in the student's loss
    init: str | None = None  # student: the teacher to start from; refiner: the student it refines
    teacher: str | None = None  # distillation's teacher
    seed: int = 0
    max_seconds: float | None = None
    log_every: int = 50
    checkpoint_every: float = 300.0


def draw(opts: TrainOptions, step: int, images: torch.Tensor) -> Uplink:
    rng = np.random.default_rng([opts.seed, step, 1])
    snr = torch.as_tensor(rng.uniform(opts.snr_low, opts.snr_high, images.shape[0]), dtype=torch.float32)
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    return Uplink.draw(snr, SemNomaConfig().symbols(*images.shape[-2:]), CHANNELS[step % len(CHANNELS)],
                       opts.powers, generator)


class Trainer:
    def __init__(self, opts: TrainOptions) -> None:
        self.opts = opts
        self.teacher = _frozen(opts.teacher) if opts.distill else None
        self.student = _frozen(opts.init) if opts.role == "refiner" else None

    def new_model(self) -> torch.nn.Module:
        opts = self.opts
        if opts.role == "refiner":
            return Refiner()
        model = SemNomaJscc(SemNomaConfig(adaptive=opts.adaptive))
        if opts.init is not None:
            start, _ = load_model(opts.init)
            missing = model.load_state_dict(start.state_dict(), strict=False)
            if missing.unexpected_keys or missing.missing_keys:
                print(f"started from {opts.init}; not in it: {missing.missing_keys}, "
                      f"left out: {missing.unexpected_keys}")
        return model

    def loss(self, model: torch.nn.Module, images: torch.Tensor, uplink: Uplink) -> tuple[torch.Tensor, dict]:
        opts = self.opts
        if opts.role == "teacher":
            out = oma(model, images, uplink).images
            mse = (out - images).pow(2).mean()
            return mse, {"mse": mse.item()}
        if opts.role == "refiner":
            with torch.no_grad():
                decoded = noma_sic(self.student, images, uplink)
            out = model(decoded.images.flatten(0, 1), decoded.context.flatten(0, 1))
            target = images.flatten(0, 1)
            l1 = (out - target).abs().mean()
            return l1, {"l1": l1.item(), "mse": (out - target).pow(2).mean().item(),
                        "mse_in": (decoded.images.flatten(0, 1) - target).pow(2).mean().item()}
        decoded = noma_sic(model, images, uplink)
        mse = (decoded.images - images).pow(2).mean()
        stats = {"mse": mse.item()}
        loss = mse
        if self.teacher is not None:
            with torch.no_grad():
                taught = oma(self.teacher, images, uplink)
            fa = feature_affinity_loss(decoded.features, taught.features)
            ch = cross_head_loss(self.teacher, decoded.features, taught.context, taught.images)
            loss = loss + opts.lambda_fa * fa + opts.lambda_ch * ch
            stats.update(fa=fa.item(), ch=ch.item())
        if opts.consistency:
            residue = sic_residue(decoded, decoded.sent, uplink.order()).nanmean()
            loss = loss + opts.consistency * residue
            stats["residue"] = residue.item()
        stats["loss"] = loss.item()
        return loss, stats

    @torch.no_grad()
    def validate(self, model: torch.nn.Module, batches: list[torch.Tensor], snr_db: float = 10.0) -> dict:
        """Near / far PSNR (dB, from the mean MSE) on fixed test transmissions, AWGN at `snr_db`."""
        model.eval()
        errors = []
        for n, images in enumerate(batches):
            uplink = Uplink.draw(torch.full((images.shape[0],), snr_db), SemNomaConfig().symbols(*images.shape[-2:]),
                                 "awgn", self.opts.powers, torch.Generator().manual_seed(n))
            if self.opts.role == "teacher":
                out = oma(model, images, uplink).images
            elif self.opts.role == "refiner":
                decoded = noma_sic(self.student, images, uplink)
                out = model(decoded.images.flatten(0, 1), decoded.context.flatten(0, 1)).reshape(images.shape)
            else:
                out = noma_sic(model, images, uplink).images
            errors.append((out - images).pow(2).mean(dim=(0, 2, 3, 4)))
        model.train()
        mse = torch.stack(errors).mean(0)
        return {f"user{k}": round(psnr_from_mse(float(m)), 3) for k, m in enumerate(mse)}


def _frozen(name: str | None) -> SemNomaJscc:
    if name is None:
        raise ValueError("this role needs a model to learn from (--teacher / --init)")
    model, _ = load_model(name)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def pairs(batch: np.ndarray, users: int) -> torch.Tensor:
    images = to_tensor(batch)
    return images.reshape(images.shape[0] // users, users, *images.shape[1:])


def train(opts: TrainOptions, photos: list[np.ndarray], out: Path, *, checkpoint: Path, log=print) -> torch.nn.Module:
    if opts.role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    torch.manual_seed(opts.seed)
    trainer = Trainer(opts)
    users = len(opts.powers)
    if checkpoint.exists():
        model, optimizer, record = load_checkpoint(checkpoint, lambda m: torch.optim.Adam(m.parameters(), lr=opts.lr))
        start, elapsed_before, history = record["step"], record["seconds"], record["history"]
        log(f"resumed from {checkpoint} at step {start}")
    else:
        model = trainer.new_model()
        optimizer = torch.optim.Adam(model.parameters(), lr=opts.lr)
        start, elapsed_before, history = 0, 0.0, []
        log(f"new {opts.role}: {count_parameters(model):,} parameters, options {json.dumps(asdict(opts))}")
    checks = [pairs(b, users) for b in test_batches(2, 32)]
    began = last = time.monotonic()
    step, window = start, StatWindow()

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - began

    def save() -> None:
        entry = {"step": step, "hours": round(elapsed() / 3600, 3), "test_psnr_awgn10": trainer.validate(model, checks)}
        history.append(entry)
        save_checkpoint(checkpoint, model, optimizer, {"step": step, "seconds": elapsed(), "history": history})
        log(f"checkpoint {json.dumps(entry)}")

    model.train()
    while step < opts.steps:
        if opts.max_seconds is not None and time.monotonic() - began > opts.max_seconds:
            log(f"time limit reached at step {step}")
            break
        images = pairs(training_batch(photos, opts.batch * users, opts.seed, step), users)
        loss, stats = trainer.loss(model, images, draw(opts, step, images))
        adam_step(optimizer, loss, cosine_lr(step, opts.steps, opts.lr, opts.lr_end))
        step += 1
        window.add(stats)
        if step % opts.log_every == 0:
            log(window.line(step, elapsed() / 3600))
        if time.monotonic() - last >= opts.checkpoint_every:
            save()
            last = time.monotonic()
    save()
    save_model(out, model, {"training": json.dumps({"options": asdict(opts), "steps": step,
                                                    "hours": round(elapsed() / 3600, 3), "history": history})})
    log(f"weights: {out}")
    return model
