"""What a learned codec is, without torch: its network's configuration, and where the
shipped weights live. The registry and every light path (`--help`, error types, `inspect`)
read these without importing torch; `models.py` builds the networks from them."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
# the cnn codec's downsampling -> its stride-2 stages (8: four times the latent positions, for high rates)
CNN_STAGES = {8: 3, 16: 4}


@dataclass(frozen=True)
class NetConfig:
    arch: str = "cnn"  # "cnn" | "swin"
    latent_channels: int = 64  # C (cnn) or D token dims (swin)
    hidden: int = 128  # N (cnn) or the widest stage (swin)
    bit_width: int = 6
    down: int = 16
    sem_scale: bool = False  # seed 003 Dynamic Scale (cnn)
    sem_broadcast: bool = False  # seed 003 Neighbouring Semantic Broadcast (cnn)
    broadcast_k: int = 3
    masked: bool = False  # the decoder is also given the received mask
    # receiver-side handling of lost units (the receiver always knows the mask):
    rescale: bool = False  # inverted dropout: scale the received latent by elements / kept
    impute: bool = False  # linear MMSE estimate of lost channels (layers.Imputer, cnn only)
    # quantizer step in latent units: sent values are round(y / step) within [-A, A], the decoder
    # sees them times step (a coarser step: fewer bits; the rate points of issue 16)
    quant_step: float = 1.0

    @property
    def needs_mask(self) -> bool:
        """Whether synthesis uses the received mask (the codec then always passes it)."""
        return self.masked or self.rescale or self.impute

    @property
    def amplitude(self) -> int:
        return (1 << (self.bit_width - 1)) - 1

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> NetConfig:
        data = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        return cls(**data)


def override_config(config: NetConfig, overrides) -> NetConfig:
    """``config`` with fields replaced from "key=value" strings (bools: true/false/1/0)."""
    fields = {f.name: f for f in dataclasses.fields(NetConfig)}
    kw = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in fields:
            raise ValueError(f"bad config override {item!r}; fields: {', '.join(fields)}")
        default = getattr(NetConfig(), key)
        if isinstance(default, bool):
            low = value.strip().lower()
            if low not in ("true", "false", "1", "0"):
                raise ValueError(f"{key} takes true or false, not {value!r}")
            kw[key] = low in ("true", "1")
        elif isinstance(default, int):
            kw[key] = int(value)
        elif isinstance(default, float):
            kw[key] = float(value)
        else:
            kw[key] = value.strip()
    return dataclasses.replace(config, **kw)
