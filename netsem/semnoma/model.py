"""Seed 004's ConvNeXt JSCC with the adaptive feature (AF) module.

    encoder  x (B, 3, H, W) -> stage(48, stride 2) -> AF -> stage(96, stride 2) -> AF
             -> 1x1 conv -> (B, 16, H/4, W/4) real features -> unit-power complex symbols
    decoder  r (B, 16, H/4, W/4) -> 1x1 conv -> ConvNeXt blocks (96) -> AF      = trunk
             -> up-stage(48) -> AF -> transposed conv -> sigmoid -> image       = head

The ConvNeXt (V2) blocks and stages are seed 000's (`netsem.multiuser.model`).

AF module: squeeze-and-excitation driven by the channel state. The global average of the
feature map is concatenated with the context vector c = (SNR_k / 20, INR_k / 20, G_k / 10)
(all in dB: the user's received SNR |g_k|^2, the interference-plus-noise it meets at the base
station, 10 log10(1 + I_k), and its fading gain |h_k|^2; `netsem.semnoma.channel.context`),
two dense layers give one gate in (0, 1) per channel, and the map is scaled by it. The same
context drives the encoder (the base station feeds it back, as the seed assumes CSI at the
transmitter) and the decoder, so one model serves every SNR, channel state and SIC position.
With `adaptive=False` the gates are left out (the ablation).

The decoder is cut into `trunk` and `head` because the distillation needs both halves: the
feature-affinity loss compares trunk outputs, the cross-head loss runs the student's trunk
output through the teacher's head (`netsem.semnoma.distill`).
"""

from __future__ import annotations

import torch
from torch import nn

from netsem.multiuser.model import ConvNeXtBlock, stage
from netsem.phy.analog import complex_to_real, normalize_power, real_to_complex
from netsem.semnoma.config import SemNomaConfig

CONTEXT = 3


class AdaptiveFeature(nn.Module):
    """x * sigmoid(MLP([mean(x), context])) per channel; identity when not adaptive."""

    def __init__(self, dim: int, enabled: bool) -> None:
        super().__init__()
        self.enabled = enabled
        if enabled:
            self.mlp = nn.Sequential(nn.Linear(dim + CONTEXT, dim // 4 + 8), nn.ReLU(), nn.Linear(dim // 4 + 8, dim))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        gate = torch.sigmoid(self.mlp(torch.cat([x.mean(dim=(2, 3)), context], dim=1)))
        return x * gate[:, :, None, None]


class SemNomaJscc(nn.Module):
    def __init__(self, config: SemNomaConfig = SemNomaConfig()) -> None:
        super().__init__()
        self.config = config
        c1, c2 = config.widths
        d1, d2 = config.depths
        adaptive = config.adaptive
        self.enc1 = stage(3, c1, d1)
        self.enc_af1 = AdaptiveFeature(c1, adaptive)
        self.enc2 = stage(c1, c2, d2)
        self.enc_af2 = AdaptiveFeature(c2, adaptive)
        self.to_symbols = nn.Conv2d(c2, config.symbol_channels, 1)
        self.from_symbols = nn.Conv2d(config.symbol_channels, c2, 1)
        self.dec2 = nn.Sequential(*(ConvNeXtBlock(c2) for _ in range(d2)))
        self.dec_af2 = AdaptiveFeature(c2, adaptive)
        self.up1 = nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1)
        self.dec1 = nn.Sequential(*(ConvNeXtBlock(c1) for _ in range(d1)))
        self.dec_af1 = AdaptiveFeature(c1, adaptive)
        self.to_image = nn.ConvTranspose2d(c1, 3, 4, stride=2, padding=1)

    # -- transmitter ---------------------------------------------------------------------------
    def encode(self, images: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> real features (B, 16, H/4, W/4)."""
        x = self.enc_af1(self.enc1(images * 2 - 1), context)
        x = self.enc_af2(self.enc2(x), context)
        return self.to_symbols(x)

    def transmit(self, images: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Unit-average-power complex symbols (B, L), L = 16 H W / 32."""
        return to_symbols(self.encode(images, context))

    # -- receiver ------------------------------------------------------------------------------
    def trunk(self, received: torch.Tensor, context: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        """Complex estimates (B, L) -> trunk features (B, 96, H/4, W/4)."""
        x = self.from_symbols(from_symbols(received, self.config.symbol_channels, shape))
        return self.dec_af2(self.dec2(x), context)

    def head(self, features: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.dec_af1(self.dec1(self.up1(features)), context)
        return torch.sigmoid(self.to_image(x))

    def decode(self, received: torch.Tensor, context: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        return self.head(self.trunk(received, context, shape), context)


def to_symbols(features: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) real -> (B, C h w / 2) complex, unit average power per image."""
    return normalize_power(real_to_complex(features.flatten(1)))


def from_symbols(symbols: torch.Tensor, channels: int, shape: tuple[int, int]) -> torch.Tensor:
    """(B, L) complex -> (B, C, H/4, W/4) real (the inverse of `to_symbols`' reshaping)."""
    h, w = shape
    return complex_to_real(symbols).reshape(symbols.shape[0], channels, h // 4, w // 4)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
