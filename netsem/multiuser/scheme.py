"""One downlink transmission of seed 000's scheme, shared by training, evaluation and the network.

    encode(model, tiles, users, groups)  -> Encoded: who is in which group, the transmitted
                                            (unit-power) private and common features
    reconstruct(model, encoded, ...)     -> every user's tiles after its own channel

An image larger than 32x32 is cut into 32x32 tiles (row-major, `tiles_of`); a user's tiles are
consecutive rows. Grouping (Algorithm 1 or batch order) is decided once per user, on its whole
private feature (all its tiles); the common encoder then runs per tile position over the
group's members, so a group's common feature of an image is one per tile position. Training
and the offline evaluation use one tile per user (the seed's 32x32 images).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from netsem.multiuser.channel import receive, transmit
from netsem.multiuser.clustering import balanced_groups, batch_order_groups
from netsem.multiuser.config import TILE
from netsem.multiuser.model import Gssma


@dataclass
class Encoded:
    groups: np.ndarray  # (G, K) user indices
    tiles: int  # per user
    private: torch.Tensor  # (users x tiles, 2 L_p), unit power per row
    common: torch.Tensor | None  # (G x tiles, 2 L_c), unit power per row; None: private-only
    raw_common: torch.Tensor | None  # before power normalisation (for the repulsion loss)

    @property
    def group_of(self) -> np.ndarray:
        out = np.empty(self.groups.size, dtype=np.int64)
        for g, members in enumerate(self.groups):
            out[members] = g
        return out

    def common_rows_for_users(self) -> torch.Tensor:
        """Row index into `common` of each (user, tile) row of `private`."""
        users = self.groups.size
        rows = self.group_of[:, None] * self.tiles + np.arange(self.tiles)[None, :]
        return torch.from_numpy(rows.reshape(users * self.tiles))


def tiles_of(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W), H and W multiples of 32 -> (N x T, 3, 32, 32), each image's tiles row-major."""
    n, c, h, w = images.shape
    if h % TILE or w % TILE:
        raise ValueError(f"image size {h}x{w} is not a multiple of {TILE}")
    t = images.reshape(n, c, h // TILE, TILE, w // TILE, TILE).permute(0, 2, 4, 1, 3, 5)
    return t.reshape(-1, c, TILE, TILE)


def untile(tiles: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of `tiles_of`."""
    gh, gw = height // TILE, width // TILE
    n = tiles.shape[0] // (gh * gw)
    t = tiles.reshape(n, gh, gw, 3, TILE, TILE).permute(0, 3, 1, 4, 2, 5)
    return t.reshape(n, 3, height, width)


def encode(model: Gssma, tiles: torch.Tensor, users: int, groups: int, *, cluster_seed: int | np.random.Generator = 0,
           cluster: bool | None = None) -> Encoded:
    """`tiles` holds `users` users' images, each T consecutive 32x32 tiles. `cluster` overrides
    the model's own setting (None: the config's)."""
    per_user = tiles.shape[0] // users
    z = model.encode_semantic(tiles)
    private = model.encode_private(z)
    cluster = model.config.clustering if cluster is None else cluster
    if cluster:
        features = private.detach().reshape(users, -1).double().cpu().numpy()
        grouping = balanced_groups(features, groups, cluster_seed)
    else:
        grouping = batch_order_groups(users, groups)
    common = raw_common = None
    if not model.config.private_only:
        by_tile = []
        for t in range(per_user):
            rows = torch.from_numpy(grouping * per_user + t)
            by_tile.append(model.encode_common(z, rows))
        raw_common = torch.stack(by_tile, dim=1).reshape(groups * per_user, -1)  # (G, T, .) -> rows g*T + t
        common = transmit(raw_common)
    return Encoded(grouping, per_user, transmit(private), common, raw_common)


def reconstruct(model: Gssma, encoded: Encoded, channel: str, snr_db: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Every user's tiles as its decoder sees them after its own channel: (users x T, 3, 32, 32)."""
    common = None if encoded.common is None else encoded.common[encoded.common_rows_for_users()]
    return receive_and_decode(model, common, encoded.private, channel, snr_db, generator)


def receive_and_decode(model: Gssma, common: torch.Tensor | None, private: torch.Tensor, channel: str, snr_db: float,
                       generator: torch.Generator | None = None, erased_common: torch.Tensor | None = None,
                       erased_private: torch.Tensor | None = None) -> torch.Tensor:
    """Rows are (user, tile) pairs: the transmitted common (R, 2 L_c; None for private-only)
    and private (R, 2 L_p) symbols that reached each row's receiver, `erased_*` (R, L) marking
    those that did not. One channel draw per row, shared by its common and private symbols."""
    if common is None:
        return model.decode(None, receive(private, channel, snr_db, generator, erased_private))
    rows, lc, lp = private.shape[0], common.shape[1] // 2, private.shape[1] // 2
    erased = None
    if erased_common is not None or erased_private is not None:
        erased = torch.cat([
            erased_common if erased_common is not None else torch.zeros(rows, lc, dtype=torch.bool),
            erased_private if erased_private is not None else torch.zeros(rows, lp, dtype=torch.bool),
        ], dim=1)
    received = receive(torch.cat([common, private], dim=1), channel, snr_db, generator, erased)
    return model.decode(received[:, : 2 * lc], received[:, 2 * lc :])
