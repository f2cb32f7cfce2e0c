"""Seed 001's semantic extraction and task-performing networks (§IV-A), and how Sebs feed them.

    features = model.extract(images)        # (B, 3, H, W) in [0, 1] -> (B, dim, H/16, W/16)
    images = model.reconstruct(features)     # the inverse, clamped to [0, 1]

f_SE is four 5x5 stride-2 convolutions with GDN between them (the seed's "four convolution
layers with GDN"), f_TP four transposed convolutions with inverse GDN. One feature vector of
`dim` numbers describes one 16x16 patch (the fine granularity); a 32x32 region (the coarse
granularity) is the 2x2 block of its four patches, and coarse-coded it is one vector broadcast
to all four (`coarse_pool` / `broadcast_regions`). Unlike the seed, which decodes each patch
on its own and concatenates, the decoder here runs over the whole feature map, so a patch's
reconstruction also sees its neighbours' Sebs (fewer block edges at the same bits).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from netsem.codecs.layers import GDN

PATCH = 16  # fine patch side: one feature vector per 16x16 pixels
REGION = 32  # coarse patch side: 2x2 fine patches


@dataclass(frozen=True)
class SebNetConfig:
    hidden: int = 96
    dim: int = 64  # feature numbers per 16x16 patch

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SebNetConfig:
        return cls(**json.loads(text))


def _down(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 5, stride=2, padding=2)


def _up(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1)


class SebNet(nn.Module):
    def __init__(self, config: SebNetConfig = SebNetConfig()) -> None:
        super().__init__()
        self.config = config
        h, d = config.hidden, config.dim
        self.encoder = nn.Sequential(_down(3, h), GDN(h), _down(h, h), GDN(h), _down(h, h), GDN(h), _down(h, d))
        self.decoder = nn.Sequential(_up(d, h), GDN(h, inverse=True), _up(h, h), GDN(h, inverse=True),
                                     _up(h, h), GDN(h, inverse=True), _up(h, 3))

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        """f_SE: (B, 3, H, W), H and W multiples of 32 -> (B, dim, H/16, W/16)."""
        return self.encoder(images * 2 - 1)

    def reconstruct(self, features: torch.Tensor) -> torch.Tensor:
        """f_TP: (B, dim, h, w) -> (B, 3, 16h, 16w) in [0, 1]."""
        return ((self.decoder(features) + 1) / 2).clamp(0, 1)


def coarse_pool(features: torch.Tensor) -> torch.Tensor:
    """(B, D, h, w) -> (B, D, h/2, w/2): a 32x32 region's feature is the mean of its 4 patches'."""
    return F.avg_pool2d(features, 2)


def broadcast_regions(region_features: torch.Tensor) -> torch.Tensor:
    """(B, D, h/2, w/2) -> (B, D, h, w): each region's vector given to its four patches."""
    return region_features.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


def mix_granularity(features: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
    """Fine features where `fine` (B, h/2, w/2 bool, per region) holds, the region's broadcast
    mean elsewhere: what the decoder sees for an image coded partly fine, partly coarse."""
    coarse = broadcast_regions(coarse_pool(features))
    mask = broadcast_regions(fine[:, None].float())
    return features * mask + coarse * (1 - mask)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
