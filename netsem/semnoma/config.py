"""Seed 004's sizes, the symbol accounting, and what the uplink's ends agree on (no torch, so
the commands check their options before loading a network).

A 32x32 image becomes an 8x8 map of `symbol_channels` (16) real numbers: 1024 reals, 512
complex channel symbols per user and image (bandwidth ratio 512 / 3072 = 1/6, CIFAR-era
DeepJSCC's common setting). Larger images keep the ratio (the networks are convolutional).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

DOWNSAMPLE = 4  # two stride-2 stages
CHANNELS = ("awgn", "rayleigh")
NEAR_FAR = (0.8, 0.2)


def check_air(channel: str, powers: tuple[float, ...]) -> None:
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r} (choose {', '.join(CHANNELS)})")
    if not powers or any(a <= 0 for a in powers) or abs(sum(powers) - 1) > 1e-6:
        raise ValueError(f"power coefficients must be positive and sum to 1 (got {powers})")


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


@dataclass(frozen=True)
class AirSpec:
    """What the senders, the air (the emulator's stage) and the base station agree on."""

    channel: str = "awgn"
    snr_db: float = 10.0
    powers: tuple[float, ...] = NEAR_FAR
    seed: int = 0

    @property
    def users(self) -> int:
        return len(self.powers)

    def uplink(self, frame_id: int, symbols: int):
        """Frame `frame_id`'s channel (`channel.Uplink`): a function of (seed, frame id) alone,
        so each sender (its adaptive context), the air (fading and noise) and the base station
        (SIC) draw the very same realisation in their own processes."""
        import torch

        from netsem.semnoma.channel import Uplink

        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + frame_id) % 2**63)
        return Uplink.draw(torch.tensor([float(self.snr_db)]), symbols, self.channel, self.powers, generator)

    @classmethod
    def parse(cls, options: dict[str, str]) -> AirSpec:
        """Stage / CLI options: channel=awgn|rayleigh snr=10dB powers=0.8,0.2 seed=1."""
        known = {"channel", "snr", "powers", "seed", "users"}
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"unknown noma option(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
        try:
            snr = float(options.get("snr", "10").lower().removesuffix("db"))
            powers = tuple(float(p) for p in options.get("powers", ",".join(map(str, NEAR_FAR))).split(","))
            seed = int(options.get("seed", "0"))
        except ValueError as error:
            raise ValueError(f"noma options: {error}") from None
        if "users" in options and int(options["users"]) != len(powers):
            raise ValueError(f"users={options['users']} but {len(powers)} power coefficients")
        spec = cls(options.get("channel", "awgn"), snr, powers, seed)
        check_air(spec.channel, powers)
        return spec
