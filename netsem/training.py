"""What every trainer's step loop shares (seed 000's and seed 004's): the cosine learning-rate
schedule, one Adam step, and the running means a log line reports."""

from __future__ import annotations

import math

import numpy as np
import torch

from netsem.metrics import psnr_from_mse


def cosine_lr(step: int, steps: int, lr: float, lr_end: float) -> float:
    """From `lr` at step 0 to `lr_end` at `steps` (and after), on a half cosine."""
    progress = min(1.0, step / max(1, steps))
    return lr_end + (lr - lr_end) * 0.5 * (1 + math.cos(math.pi * progress))


def adam_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


class StatWindow:
    """Per-step statistics (dicts with an "mse") since the last log line."""

    def __init__(self) -> None:
        self.steps: list[dict] = []

    def add(self, stats: dict) -> None:
        self.steps.append(stats)

    def line(self, step: int, hours: float) -> str:
        """'step N name mean ... psnr X dB, H h', and a fresh window."""
        mean = {k: float(np.mean([s[k] for s in self.steps if k in s])) for k in self.steps[-1]}
        self.steps = []
        return (f"step {step} " + " ".join(f"{k} {v:.5f}" for k, v in mean.items())
                + f" psnr {psnr_from_mse(mean['mse']):.2f} dB, {hours:.3f} h")
