"""One uplink transmission through a model: every user encodes, the channel superposes, the
base station decodes by SIC (`noma_sic`) — or each user alone on its own resource (`oma`).

Images are (B, K, 3, H, W): B transmissions of K users each. The SIC loop runs over SIC
positions, not users: at position j each image's j-th strongest user is decoded (a gather),
re-encoded with the same model and context (its unit-power symbols, as the user sent them
were it decoded without error) and subtracted, so the next position meets only the users
still to come. Gradients flow through the re-encoding: training teaches the decoder to leave
a residue the next user's decoder can live with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from netsem.semnoma.channel import Uplink, mmse
from netsem.semnoma.model import SemNomaJscc


@dataclass
class Decoded:
    images: torch.Tensor  # (B, K, 3, H, W)
    features: torch.Tensor  # trunk features (B, K, C, H/4, W/4)
    context: torch.Tensor  # (B, K, 3): what each user's modules saw
    cancelled: torch.Tensor | None = None  # (B, K, L) the re-encoded symbols SIC subtracted (0 for the last user)
    sent: torch.Tensor | None = None  # (B, K, L) what the users sent (noma_sic)


def transmit_all(model: SemNomaJscc, images: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """(B, K, 3, H, W) -> (B, K, L) complex symbols."""
    b, k = images.shape[:2]
    return model.transmit(images.flatten(0, 1), context.flatten(0, 1)).reshape(b, k, -1)


def oma(model: SemNomaJscc, images: torch.Tensor, uplink: Uplink) -> Decoded:
    """Interference-free orthogonal transmission (the teacher's channel)."""
    b, k, _, h, w = images.shape
    context = uplink.context(orthogonal=True)
    received = uplink.orthogonal(transmit_all(model, images, context))
    features = model.trunk(received.flatten(0, 1), context.flatten(0, 1), (h, w))
    out = model.head(features, context.flatten(0, 1))
    return Decoded(out.reshape(b, k, *out.shape[1:]), features.reshape(b, k, *features.shape[1:]), context)


def noma_sic(model: SemNomaJscc, images: torch.Tensor, uplink: Uplink,
             symbols: torch.Tensor | None = None) -> Decoded:
    """Superposed uplink, SIC at the base station. `symbols` (B, K, L): what the users sent,
    when it comes from elsewhere (the network path); otherwise the model encodes `images`."""
    b, k, _, h, w = images.shape
    context = uplink.context()
    if symbols is None:
        symbols = transmit_all(model, images, context)
    decoded = sic_decode(model, uplink.superpose(symbols), uplink, (h, w))
    decoded.sent = symbols
    return decoded


def sic_residue(decoded: Decoded, sent: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """(B, K) mean |s_k - s^_k|^2 of what SIC cancelled, relative to the unit symbol power:
    the part of a user's signal the next users still meet as interference (NaN for the users
    decoded last, whom nobody cancels)."""
    residue = (sent - decoded.cancelled).abs().pow(2).mean(-1)
    last = order[:, -1]
    return residue.scatter(1, last[:, None], float("nan"))


def sic_decode(model: SemNomaJscc, received: torch.Tensor, uplink: Uplink, shape: tuple[int, int]) -> Decoded:
    """The base station's side alone: y (B, L) -> every user's image."""
    context = uplink.context()
    order = uplink.order()
    interference = uplink.interference()
    rows = torch.arange(received.shape[0])
    residual = received
    images, features, cancelled = [], [], []
    for j in range(uplink.users):
        user = order[:, j]
        gain, ctx = uplink.gains[rows, user], context[rows, user]
        trunk = model.trunk(mmse(residual, gain, interference[rows, user]), ctx, shape)
        image = model.head(trunk, ctx)
        images.append(image)
        features.append(trunk)
        if j < uplink.users - 1:
            estimate = model.transmit(image, ctx)
            residual = residual - gain[:, None] * estimate
            cancelled.append(estimate)
        else:
            cancelled.append(torch.zeros_like(residual))
    back = torch.argsort(order, dim=1)  # position of each user

    def by_user(per_position: list[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack(per_position, 1)
        index = back.reshape(*back.shape, *([1] * (stacked.dim() - 2))).expand(-1, -1, *stacked.shape[2:])
        return stacked.gather(1, index)

    return Decoded(by_user(images), by_user(features), context, by_user(cancelled))
