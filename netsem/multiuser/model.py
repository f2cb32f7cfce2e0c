"""Seed 000's networks (Table I) at the widths of `GssmaConfig`, for 32x32 tiles.

    z_k = S(s_k)                          semantic encoder: 2 stages of ConvNeXt blocks, 8x8 map
    p_k = f_p(z_k)                        private encoder: MaxPool 4 + Dense -> 2 L_p reals
    c_g = f_c({z_k : k in G_g})           common encoder: a ConvNeXt stage, MaxPool 4, a
                                          transformer encoder over the K members, mean, Dense
    s^_k = S^-1(CONCAT[c^_g, p^_k])       semantic decoder: Dense -> 4x4 map, three stride-2
                                          transposed convolutions with ConvNeXt stages

Features are real vectors whose consecutive pairs are the complex channel symbols
(`netsem.phy.analog.real_to_complex`). All activations are ReLU, as the seed's. Where we
depart from Table I, and why:
- A stage is a stride-2 4x4 convolution followed by its blocks (Table I lists the stride-2
  convolution inside the block; applied in every block, 32x32 would be 1x1 after five).
- The blocks are ConvNeXt V2's (7x7 depthwise, LayerNorm, 1x1 to 4d, ReLU, GRN, 1x1, residual).
- The private encoder max-pools the 8x8 map with a 2x2 kernel (the seed: 4x4): at a quarter of
  the seed's width that keeps the 1024 numbers the seed's Dense sees (4x4x64 = 2x2x256).
- The decoder's Dense writes 512 numbers, as the seed's does, but as a 4x4 map of
  `decoder_grid_width` (32) channels that the first transposed convolution takes, where the
  seed's bilinear x4 upsampling spreads 512 numbers at 1x1 over 4x4.
- The transformer's outputs for the K members are averaged into one vector, so the common
  feature does not depend on the members' order (the seed does not say how K outputs become one).
- A sigmoid ends the decoder (images in [0, 1]).
"""

from __future__ import annotations

import torch
from torch import nn

from netsem.multiuser.config import TILE, GssmaConfig

PRIVATE_POOL = 2


class GRN(nn.Module):
    """Global Response Normalization (ConvNeXt V2), channels-last input (B, H, W, C)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.linalg.vector_norm(x, dim=(1, 2), keepdim=True)
        n = g / (g.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * n) + self.beta + x


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, 4 * dim)
        self.act = nn.ReLU()
        self.grn = GRN(4 * dim)
        self.pw2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(self.grn(self.act(self.pw1(self.norm(y)))))
        return x + y.permute(0, 3, 1, 2)


def stage(in_dim: int, dim: int, blocks: int) -> nn.Sequential:
    """Stride-2 4x4 convolution to `dim`, then `blocks` ConvNeXt blocks."""
    return nn.Sequential(nn.Conv2d(in_dim, dim, 4, stride=2, padding=1), *(ConvNeXtBlock(dim) for _ in range(blocks)))


def up_stage(in_dim: int, dim: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(in_dim, dim, 4, stride=2, padding=1),
                         *(ConvNeXtBlock(dim) for _ in range(blocks)))


class Gssma(nn.Module):
    """The transmitter's encoders and a user's decoder. Channel and grouping live outside."""

    def __init__(self, config: GssmaConfig) -> None:
        super().__init__()
        self.config = c = config
        self.semantic = nn.Sequential(stage(3, c.width1, 2), stage(c.width1, c.width2, 3))
        pooled_side = TILE // 4 // PRIVATE_POOL
        self.private = nn.Sequential(nn.MaxPool2d(PRIVATE_POOL), nn.Flatten(),
                                     nn.Linear(c.width2 * pooled_side**2, 2 * c.private_symbols))
        if not c.private_only:
            self.common_conv = nn.Sequential(stage(c.width2, c.width_common, 3), nn.MaxPool2d(4), nn.Flatten())
            layer = nn.TransformerEncoderLayer(c.width_common, c.heads, dim_feedforward=c.width_common,
                                               dropout=0.0, activation="relu", batch_first=True)
            self.common_mixer = nn.TransformerEncoder(layer, c.transformer_layers, enable_nested_tensor=False)
            self.common_head = nn.Linear(c.width_common, 2 * c.common_symbols)
        self.decoder_in = nn.Linear(2 * c.received_symbols, c.decoder_grid_width * 16)
        self.decoder = nn.Sequential(
            nn.ReLU(),
            up_stage(c.decoder_grid_width, c.width2, 3),
            up_stage(c.width2, c.width1, 3),
            up_stage(c.width1, 3, 2),
        )

    def encode_semantic(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, 32, 32) in [0, 1] -> z (N, width2, 8, 8)."""
        return self.semantic(images)

    def encode_private(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, ...) -> p (N, 2 L_p)."""
        return self.private(z)

    def encode_common(self, z: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """z (N, ...) and groups (G, K) of user indices -> c (G, 2 L_c)."""
        g, k = groups.shape
        members = self.common_conv(z[groups.reshape(-1)]).reshape(g, k, -1)
        return self.common_head(self.common_mixer(members).mean(dim=1))

    def decode(self, common: torch.Tensor | None, private: torch.Tensor) -> torch.Tensor:
        """Received features (N, 2 L_c) and (N, 2 L_p) -> images (N, 3, 32, 32)."""
        features = private if common is None else torch.cat([common, private], dim=1)
        grid = self.decoder_in(features).reshape(-1, self.config.decoder_grid_width, 4, 4)
        return torch.sigmoid(self.decoder(grid))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
