"""The refinement stage: a conditional residual denoiser on the decoded image.

The seed uses a diffusion model; on two CPU cores in a session's hours one does not train to
anything useful at these sizes, so this is the named fallback: a small U-Net (32 channels at
full resolution, 64 at half, residual blocks, the same SNR/CSI adaptive modules) that reads the
SemNOMA output and its channel context and predicts a correction, out = clamp(x^ + f(x^, c)).
It is trained after the student, on the frozen student's outputs, with an L1 loss (sharper
than MSE, the usual choice for restoration). It changes nothing that is transmitted; the
pixel-accurate student output stays available and is reported beside it.
"""

from __future__ import annotations

import torch
from torch import nn

from netsem.semnoma.model import AdaptiveFeature


class ResBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.ReLU(), nn.Conv2d(dim, dim, 3, padding=1))
        self.af = AdaptiveFeature(dim, True)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return x + self.af(self.body(x), context)


class Refiner(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.inp = nn.Conv2d(3, width, 3, padding=1)
        self.top1 = ResBlock(width)
        self.down = nn.Conv2d(width, 2 * width, 4, stride=2, padding=1)
        self.mid1, self.mid2 = ResBlock(2 * width), ResBlock(2 * width)
        self.up = nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1)
        self.top2 = ResBlock(width)
        self.out = nn.Conv2d(width, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)  # starts as the identity

    def forward(self, images: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """images (N, 3, H, W) in [0, 1], context (N, 3)."""
        top = self.top1(self.inp(images * 2 - 1), context)
        mid = self.mid2(self.mid1(self.down(top), context), context)
        x = self.top2(top + self.up(mid), context)
        return (images + self.out(x)).clamp(0, 1)
