"""Seed 004's sizes and the symbol accounting (no torch).

A 32x32 image becomes an 8x8 map of `symbol_channels` (16) real numbers: 1024 reals, 512
complex channel symbols per user and image (bandwidth ratio 512 / 3072 = 1/6, CIFAR-era
DeepJSCC's common setting). Larger images keep the ratio (the networks are convolutional).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

DOWNSAMPLE = 4  # two stride-2 stages


@dataclass(frozen=True)
class SemNomaConfig:
    widths: tuple[int, int] = (48, 96)  # channels of the 16x16 and the 8x8 stage (32x32 input)
    depths: tuple[int, int] = (1, 2)  # ConvNeXt blocks per stage
    symbol_channels: int = 16  # real numbers per position of the 8x8 map
    adaptive: bool = True  # the adaptive feature modules (SNR / CSI); False: the ablation

    def symbols(self, height: int, width: int) -> int:
        """Complex channel symbols one user sends for an image of this size."""
        if height % DOWNSAMPLE or width % DOWNSAMPLE:
            raise ValueError(f"image sides must be multiples of {DOWNSAMPLE} (got {height}x{width})")
        return (height // DOWNSAMPLE) * (width // DOWNSAMPLE) * self.symbol_channels // 2

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SemNomaConfig:
        raw = json.loads(text)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
