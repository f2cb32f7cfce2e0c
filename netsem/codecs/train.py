"""Train a learned codec (CPU or GPU) and write its weights as safetensors.

Reproducible: seeded crops, flips, quantization noise and unit drops; the learning-rate
schedule depends only on the step count.  A run can be cut into phases (``--init`` resumes
from a weight file: Adam's moments restart, the step counter and schedule continue, and so does the
rate proxy where the quantizer step is the same).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from netsem.metrics import psnr_from_mse

from .models import NetConfig, build_net, count_parameters
from .weights import load_state, save_state

DROP_MODES = ("none", "channel", "mixed")


@dataclass
class TrainOptions:
    steps: int = 10000
    batch: int = 16
    crop: int = 256
    lr: float = 2e-4
    schedule: str = "cosine"  # "cosine" (decay to 5 % over the run) | "constant"
    warmup: int = 300
    seed: int = 0
    drop: str = "channel"  # unit drops during training: none | channel | mixed
    drop_apply: float = 0.5  # share of samples that get drops
    drop_max: float = 0.5  # their drop rate ~ U(0, drop_max)
    max_seconds: float | None = None
    # stop after this many of the run's steps, the schedule still spanning all of them: replays a run that was
    # cut at a checkpoint (max_seconds stops at a time, which no rerun reproduces)
    stop_after: int | None = None
    log_every: int = 100
    checkpoint_every: float = 120.0  # seconds
    amp: bool = False  # bf16 autocast (GDN stays fp32)
    channels_last: bool = False  # NHWC memory format (faster convolutions on GPUs)
    # rate-distortion training: loss = lmbda * 255^2 * MSE + bits per pixel (CompressAI's
    # convention; larger lmbda, higher rate); None: distortion alone
    lmbda: float | None = None
    # what the decoder trains on: "noise" (uniform noise of one quantizer step, as the rate proxy) or
    # "mixed" (the rounded values, straight-through; the rate proxy keeps the noise)
    quant: str = "noise"
    # the rate proxy's learning rate, in multiples of the network's
    rate_lr_scale: float = 50.0


def lr_at(step: int, opts: TrainOptions, start: int, total: int) -> float:
    if step - start < opts.warmup:
        w = (step - start + 1) / opts.warmup
    else:
        w = 1.0
    if opts.schedule == "constant":
        return opts.lr * w
    progress = min(1.0, max(0.0, (step - start) / max(1, total - start)))
    return opts.lr * w * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


class CropSampler:
    """Random crops with horizontal/vertical flips from images held on the device.

    All random numbers of a batch are drawn at once (numpy, seeded); the crops are views
    stacked in one copy and flipped with two indexed ops.
    """

    def __init__(self, images: list[np.ndarray], crop: int, device: torch.device, seed: int):
        self.images = [
            torch.from_numpy(np.array(a)).permute(2, 0, 1).contiguous().to(device)
            for a in images
            if a.shape[0] >= crop and a.shape[1] >= crop
        ]
        if not self.images:
            raise ValueError(f"no training image is at least {crop}x{crop}")
        self.crop = crop
        self.rng = np.random.default_rng(seed)
        self.room = np.array([[t.shape[1] - crop + 1, t.shape[2] - crop + 1] for t in self.images])

    def batch(self, n: int) -> torch.Tensor:
        c = self.crop
        idx = self.rng.integers(len(self.images), size=n)
        pos = (self.rng.random((n, 2)) * self.room[idx]).astype(np.int64)
        flips = self.rng.random((n, 2)) < 0.5
        out = torch.stack([
            self.images[i][:, y : y + c, x : x + c] for i, (y, x) in zip(idx.tolist(), pos.tolist())
        ])
        dev = out.device
        hf = torch.from_numpy(np.flatnonzero(flips[:, 0])).to(dev)
        if len(hf):
            out[hf] = out[hf].flip(3)
        vf = torch.from_numpy(np.flatnonzero(flips[:, 1])).to(dev)
        if len(vf):
            out[vf] = out[vf].flip(2)
        return out.float() / 255.0


class RateProxy(torch.nn.Module):
    """A differentiable stand-in for the coder's rate during training: each latent channel's
    values (with their uniform quantization noise) under a zero-mean logistic of learned scale,
    integrated over the quantization bin.  The range coder itself uses the row-context prior
    counted on the trained codec's latents (`tools/training/fit_prior.py`); this only has to
    rank rates, so the encoder learns to spend fewer bits where they buy little distortion."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.log_scale = torch.nn.Parameter(torch.full((channels,), math.log(4.0)))

    def bits(self, y: torch.Tensor) -> torch.Tensor:
        """Total bits of a noisy latent batch (B, C, h, w)."""
        scale = self.log_scale.exp()[None, :, None, None]
        upper = torch.sigmoid((y + 0.5) / scale)
        lower = torch.sigmoid((y - 0.5) / scale)
        return -torch.log2((upper - lower).clamp_min(1e-9)).sum()


def drop_mask(
    shape: tuple[int, ...], opts: TrainOptions, gen: torch.Generator, device: torch.device
) -> torch.Tensor | None:
    """(B, C, h, w) float mask of kept latent elements, or None when nothing is dropped.

    A share ``drop_apply`` of the samples lose units at a rate ~ U(0, drop_max); the unit is a
    channel, or (``mixed``) one of channel / token / 4x4 spatial block, drawn per sample.
    Random numbers come from ``gen`` (CPU) in a fixed order; the masks are built vectorised.
    """
    if opts.drop == "none":
        return None
    b, c, h, w = shape
    apply = torch.rand(b, generator=gen) < opts.drop_apply
    rate = torch.rand(b, generator=gen) * opts.drop_max * apply
    keep = (1.0 - rate)[:, None, None, None]
    chan = torch.rand(b, c, 1, 1, generator=gen) < keep
    if opts.drop == "channel":
        m = chan.expand(b, c, h, w)
    else:
        kind = torch.randint(3, (b, 1, 1, 1), generator=gen)
        tok = torch.rand(b, 1, h, w, generator=gen) < keep
        bh, bw = -(-h // 4), -(-w // 4)
        blocks = torch.rand(b, 1, bh, bw, generator=gen) < keep
        spat = blocks.repeat_interleave(4, 2).repeat_interleave(4, 3)[:, :, :h, :w]
        m = torch.where(kind == 0, chan, torch.where(kind == 1, tok, spat))
    return m.to(device=device, dtype=torch.float32, non_blocking=True)


def train(
    name: str,
    config: NetConfig,
    images: list[np.ndarray],
    out_dir: Path,
    opts: TrainOptions,
    device: str = "cpu",
    init: Path | None = None,
    progress: bool = True,
) -> Path:
    """Train ``config`` and write ``out_dir/name.safetensors`` (fp16 weights + metadata).
    ``init``: start from these weights (their config may differ from ``config`` in the
    quantizer step alone: a rate point fine-tuned from its codec)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device)
    torch.manual_seed(opts.seed)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    net = build_net(config).to(dev)
    start = 0
    history: list = []
    rate = RateProxy(config.latent_channels).to(dev) if opts.lmbda is not None else None
    if init is not None:
        state, meta = load_state(init)
        init_config = NetConfig.from_json(meta["config"])
        # a rate point starts from the codec it refines: only the quantizer step may differ
        if dataclasses.replace(init_config, quant_step=config.quant_step) != config:
            raise ValueError(f"{init} was trained with another config: {meta['config']}")
        net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        start = int(meta.get("step", 0))
        history = json.loads(meta.get("history", "[]"))
        # a later phase at the same quantizer step goes on with the rate proxy the earlier one learned
        # (relearning it from its initial scales misjudged the rate for the first few hundred steps)
        if rate is not None and "rate_proxy" in meta and init_config == config:
            rate.log_scale.data.copy_(torch.tensor(json.loads(meta["rate_proxy"]), dtype=torch.float32))
    if opts.channels_last:
        net = net.to(memory_format=torch.channels_last)
    total = start + opts.steps
    groups = [{"params": list(net.parameters()), "lr_scale": 1.0}]
    if rate is not None:
        # the proxy's 60 scales must follow the latent as it changes: at the network's learning rate they
        # moved ~0.3 in log scale over a 1500-step phase, so the rate they judged stayed near their start
        groups.append({"params": list(rate.parameters()), "lr_scale": opts.rate_lr_scale})
    opt = torch.optim.Adam(groups, lr=opts.lr)
    sampler = CropSampler(images, opts.crop, dev, opts.seed + 1000 * start)
    gen = torch.Generator().manual_seed(opts.seed + 7 + 1000 * start)
    log_path = out_dir / f"{name}.log"
    log = log_path.open("a")
    out_path = out_dir / f"{name}.safetensors"
    n_params = count_parameters(net)
    header = (
        f"# {name}: {n_params} parameters, config {config.to_json()}, options {opts}, "
        f"device {device}, torch {torch.__version__}, steps {start}->{total}"
    )
    print(header, file=log, flush=True)
    print(header, flush=True)

    def checkpoint(step: int) -> None:
        phase = {"from": start, "to": step, "options": opts.__dict__, "device": device}
        meta = {
            "name": name,
            "config": config.to_json(),
            "step": str(step),
            "history": json.dumps(history + [phase]),
            "parameters": str(n_params),
        }
        if rate is not None:  # per-channel log scales of the rate proxy, for a later phase
            meta["rate_proxy"] = json.dumps([round(v, 6) for v in rate.log_scale.detach().cpu().tolist()])
        save_state(out_path, {k: v.detach() for k, v in net.state_dict().items()}, meta)

    bar = None
    if progress and sys.stderr.isatty():
        from rich.progress import Progress

        bar = Progress(transient=False)
        task = bar.add_task(name, total=opts.steps)
        bar.start()
    t0 = time.monotonic()
    last_ck = t0
    step = start
    net.train()
    try:
        for step in range(start, total):
            for g in opt.param_groups:
                g["lr"] = lr_at(step, opts, start, total) * g["lr_scale"]
            x = sampler.batch(opts.batch)
            if opts.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=opts.amp):
                analysed = net.analysis(x).float()
                y = sent = net.quantize(analysed, noise=True)
                if opts.quant == "mixed":
                    y = net.quantize_straight_through(analysed)
                mask = drop_mask(tuple(y.shape), opts, gen, dev)
                if mask is not None:
                    y = y * mask
                xh = net.synthesis(y, mask)
            mse = torch.mean((xh.float() - x) ** 2)
            loss = mse
            if rate is not None:
                # the bits of everything sent, lost on the way or not
                bpp = rate.bits(sent / config.quant_step) / (x.shape[0] * x.shape[2] * x.shape[3])
                loss = opts.lmbda * 255.0**2 * mse + bpp
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            if (step + 1) % opts.log_every == 0:
                el = time.monotonic() - t0
                line = (
                    f"step {step + 1}/{total} loss {float(loss.detach()):.5f} "
                    f"psnr {psnr_from_mse(float(mse.detach())):.2f} "
                    + (f"bpp~ {float(bpp.detach()):.3f} " if rate is not None else "") +
                    f"lr {opt.param_groups[0]['lr']:.2e} {(step + 1 - start) / el:.1f} it/s "
                    f"elapsed {el:.0f}s"
                )
                print(line, file=log, flush=True)
                if bar is None:
                    print(f"[{name}] {line}", flush=True)
            if bar is not None:
                bar.update(task, advance=1)
            now = time.monotonic()
            if now - last_ck > opts.checkpoint_every:
                checkpoint(step + 1)
                last_ck = now
            if opts.max_seconds is not None and now - t0 > opts.max_seconds:
                print(f"# time limit reached at step {step + 1}", file=log, flush=True)
                break
            if opts.stop_after is not None and step + 1 - start >= opts.stop_after:
                print(f"# stopped after {opts.stop_after} steps, at step {step + 1}", file=log, flush=True)
                break
        step += 1
    finally:
        if bar is not None:
            bar.stop()
    checkpoint(step)
    el = time.monotonic() - t0
    print(f"# done: {step - start} steps in {el:.0f}s, wrote {out_path}", file=log, flush=True)
    print(f"[{name}] done: {step - start} steps in {el:.0f}s -> {out_path}", flush=True)
    log.close()
    return out_path
