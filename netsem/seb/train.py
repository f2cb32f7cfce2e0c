"""Train seed 001's f_SE / f_TP on CPU, resumable (tools/training/SEB.md has the commands).

Stage 1 (no KB yet): an autoencoder on random crops; each crop's regions are coded fine or
coarse at random (fine fraction ~ U(0, 1) per crop, `model.mix_granularity`), and Gaussian
noise of `noise` x the features' RMS stands in for the Seb quantization error, so the decoder
learns to read both granularities and imprecise features.

Stage 2 (`kb` given): the encoder is frozen and the decoder learns on features actually
quantized by the knowledge base's Sebs (fine for a random 20-60 % of the regions, coarse for
the rest), which is what it receives in use.

Everything random is a function of (seed, step). A checkpoint (fp32 weights, Adam's moments,
the step; safetensors) is written every `checkpoint_every` seconds and at the end; the
shipped file holds fp16 weights and the config in its metadata (`save_model`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from netsem.codecs.train import CropSampler
from netsem.codecs.weights import load_state, restore_checkpoint_state, save_checkpoint_state, save_state
from netsem.metrics import psnr_from_mse
from netsem.seb.model import SebNet, SebNetConfig, mix_granularity

KIND = "sebnet"


@dataclass
class TrainOptions:
    steps: int = 8000
    batch: int = 8
    crop: int = 128
    lr: float = 3e-4
    lr_end: float = 5e-5
    noise: float = 0.1
    seed: int = 0
    log_every: int = 50
    checkpoint_every: float = 300.0
    max_seconds: float | None = None


def lr_at(step: int, opts: TrainOptions) -> float:
    warm = min(1.0, (step + 1) / 200)
    progress = min(1.0, step / max(1, opts.steps))
    return warm * (opts.lr_end + (opts.lr - opts.lr_end) * 0.5 * (1 + math.cos(math.pi * progress)))


def save_model(path: Path, model: SebNet, metadata: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_state(path, model.state_dict(), {"kind": KIND, "config": model.config.to_json(), **metadata})


def load_model(path: str | Path) -> tuple[SebNet, dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no weight file {path}")
    state, meta = load_state(path)
    if meta.get("kind") not in (KIND, KIND + "-checkpoint"):
        raise ValueError(f"{path} is not a {KIND} weight file (kind {meta.get('kind')!r})")
    model = SebNet(SebNetConfig.from_json(meta["config"]))
    prefix = "model." if meta["kind"].endswith("checkpoint") else ""
    model.load_state_dict({k[len(prefix):]: v.float() for k, v in state.items() if k.startswith(prefix)})
    model.eval()
    return model, meta


def _save_checkpoint(path: Path, model: SebNet, optimizer: torch.optim.Optimizer, step: int, seconds: float,
                     history: list, opts: TrainOptions, stage: int) -> None:
    save_checkpoint_state(path, model, optimizer, {
        "kind": KIND + "-checkpoint", "config": model.config.to_json(), "step": str(step), "seconds": repr(seconds),
        "history": json.dumps(history), "options": json.dumps(asdict(opts)), "stage": str(stage)})


def _load_checkpoint(path: Path, model: SebNet, optimizer: torch.optim.Optimizer, stage: int) -> tuple[int, float, list]:
    state, meta = load_state(path)
    if meta.get("stage") != str(stage):
        return 0, 0.0, []  # a stage-1 checkpoint starts stage 2 afresh (its weights come via `init`)
    restore_checkpoint_state(state, model, optimizer)
    return int(meta["step"]), float(meta["seconds"]), json.loads(meta["history"])


def _fine_regions(rng: np.random.Generator, batch: int, rh: int, rw: int, low: float, high: float) -> torch.Tensor:
    fraction = rng.uniform(low, high, size=(batch, 1, 1))
    return torch.from_numpy(rng.random((batch, rh, rw)) < fraction)


def train(images: list[np.ndarray], opts: TrainOptions, out: Path, checkpoint: Path, *, config: SebNetConfig = SebNetConfig(),
          init: Path | None = None, kb=None, log=print) -> SebNet:
    """Stage 1 when `kb` is None, else stage 2 (decoder only, on KB-quantized features) from `init`."""
    stage = 1 if kb is None else 2
    torch.manual_seed(opts.seed)
    model = SebNet(config) if init is None else load_model(init)[0]
    model.train()
    params = list(model.parameters()) if stage == 1 else list(model.decoder.parameters())
    if stage == 2:
        for p in model.encoder.parameters():
            p.requires_grad_(False)
    optimizer = torch.optim.Adam(params, lr=opts.lr)
    step, seconds, history = 0, 0.0, []
    if checkpoint.is_file():
        step, seconds, history = _load_checkpoint(checkpoint, model, optimizer, stage)
        if step:
            log(f"resumed stage {stage} at step {step} ({seconds / 60:.1f} min trained)")
    sampler = CropSampler(images, opts.crop, torch.device("cpu"), opts.seed)
    sampler.rng = np.random.default_rng([opts.seed, step, 7])  # resume draws fresh, reproducible batches
    started, last_save = time.monotonic(), time.monotonic()
    running = []

    def save() -> None:
        _save_checkpoint(checkpoint, model, optimizer, step, seconds + time.monotonic() - started, history, opts, stage)

    while step < opts.steps:
        rng = np.random.default_rng([opts.seed, step, stage])
        batch = sampler.batch(opts.batch)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, opts)
        if stage == 1:
            features = model.extract(batch)
            rms = features.detach().pow(2).mean().sqrt()
            g = torch.Generator().manual_seed(int(rng.integers(1 << 62)))
            noisy = features + opts.noise * rms * torch.randn(features.shape, generator=g)
            fine = _fine_regions(rng, opts.batch, features.shape[2] // 2, features.shape[3] // 2, 0.0, 1.0)
            decoded = model.reconstruct(mix_granularity(noisy, fine))
        else:
            with torch.no_grad():
                features = model.extract(batch).numpy()
                fine = _fine_regions(rng, opts.batch, features.shape[2] // 2, features.shape[3] // 2, 0.2, 0.6).numpy()
                quantized = np.stack([kb.quantize_features(f, m) for f, m in zip(features, fine)])
            decoded = model.reconstruct(torch.from_numpy(quantized))
        loss = (decoded - batch).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)  # GDN diverges on a rare large step without it
        optimizer.step()
        running.append(loss.item())
        step += 1
        if step % opts.log_every == 0 or step == opts.steps:
            mse = float(np.mean(running))
            running = []
            history.append([step, mse])
            log(f"stage {stage} step {step} lr {lr_at(step, opts):.2e} mse {mse:.5f} psnr {psnr_from_mse(mse):.2f} dB "
                f"({(time.monotonic() - started) / 60:.1f} min)")
        if time.monotonic() - last_save > opts.checkpoint_every:
            save()
            last_save = time.monotonic()
        if opts.max_seconds is not None and time.monotonic() - started > opts.max_seconds:
            log(f"time limit reached at step {step}")
            break
    save()
    model.eval()
    save_model(out, model, {"stage": str(stage), "steps": str(step), "history": json.dumps(history[-20:])})
    log(f"wrote {out}")
    return model
