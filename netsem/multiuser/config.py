"""What a group-wise semantic splitting model is (seed 000), without torch: its sizes and the
symbol accounting that every scheme shares.

Symbol accounting (our reading of the seed's "same number of symbols per image"): a group of
K users costs the transmitter L_c common symbols, sent once, plus K x L_p private ones, and
per image that is L_p + L_c / K = `symbols_per_image` complex channel symbols (the seed's
1024 per 32x32 image). The common ratio rho is the share of that budget spent on common
features: L_c = K x round(rho x B), L_p = B - L_c / K. Each user therefore *receives*
L_c + L_p symbols (rho 0.2, K 5: 1025 + 819 = 1844), more than a private-only user (1024),
for the same transmitted symbols: that is what multicasting the common part buys. A
private-only model (rho 0) spends all B symbols on private features.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

# The networks see 32x32 tiles (the seed's CIFAR-10 size); larger images travel as tiles.
TILE = 32


@dataclass(frozen=True)
class GssmaConfig:
    """Sizes of one trained model. Widths: the seed's 128 / 256 / 512 scaled to what trains
    on a CPU core (see tools/training/MULTIUSER.md)."""

    width1: int = 32  # first encoder stage (seed 128), 16x16
    width2: int = 64  # second encoder stage = semantic feature z (seed 256), 8x8
    width_common: int = 128  # common encoder stage and transformer width (seed 512), 4x4
    decoder_grid_width: int = 32  # channels of the decoder's first 4x4 map (seed: Dense 512 at 1x1)
    heads: int = 4
    transformer_layers: int = 2
    symbols_per_image: int = 1024  # complex channel symbols the transmitter spends per image
    common_ratio: float = 0.2  # 0: private-only
    group_size: int = 5  # K users per group
    clustering: bool = True  # balanced clustering (Alg. 1) or groups in batch order

    def __post_init__(self) -> None:
        if not 0.0 <= self.common_ratio < 1.0:
            raise ValueError(f"common_ratio {self.common_ratio} outside [0, 1)")

    @property
    def private_only(self) -> bool:
        return self.common_ratio == 0.0

    @property
    def common_symbols(self) -> int:
        """L_c: complex symbols of a group's common feature (sent once per group)."""
        return self.group_size * round(self.common_ratio * self.symbols_per_image)

    @property
    def private_symbols(self) -> int:
        """L_p: complex symbols of a user's private feature."""
        return self.symbols_per_image - self.common_symbols // self.group_size

    @property
    def received_symbols(self) -> int:
        """What each user's decoder gets: L_c + L_p."""
        return self.common_symbols + self.private_symbols

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GssmaConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in fields})
