"""Encoder-side refinement of a cnn codec's latent: a better latent for the same decoder.

The analysis network gives a good latent, not the best one: its weights are shared by every
image.  Refinement searches, for this image, the integers that the unchanged decoder turns into
the closest picture for their bits (content-adaptive or semi-amortised inference, Campos et al.
2019; Yang et al. 2020): gradient steps on the continuous latent u, through the decoder,
rounded straight-through (the forward pass sees exactly the integers that would be sent), on

    J = lambda x 255^2 x MSE + bits per pixel        (bits: the range coder's prior, -ec codecs)
    J = MSE                                          (fixed-width codecs: the bits do not move)

with Adam and a cosine-decayed step size, keeping the iterate whose rounded latent scores best
(J never gets worse than the analysis's own latent).  A latent refined for the lossless decode
alone exploits the decoder in ways the receiver's loss handling (imputation, zeros) does not
expect, and loses its gain, and more, once datagrams are lost; so the gradient's MSE is the mean
of the lossless decode's and that of a decode with a random share of the channels lost (seeded).
The receiver is untouched: any netsem receiver decodes a refined frame.  It needs torch and
costs the sender two decoder passes forward and back per iteration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

from .base import CodecError

DEFAULT_STEP_SIZE = 0.05  # in quantizer steps; cosine-decayed to 0 over the iterations
DROP_MAX = 0.5  # the distortion is also measured with channels dropped at a rate drawn from U(0, DROP_MAX)

_progress: ContextVar[Callable[[int, int], None] | None] = ContextVar("refine_progress", default=None)


@contextmanager
def reporting_progress(callback: Callable[[int, int], None]) -> Iterator[None]:
    """Within the block, every refinement calls ``callback(steps done, steps)`` after each step
    (the CLI's progress bar): the codecs between it and the caller need not know."""
    token = _progress.set(callback)
    try:
        yield
    finally:
        _progress.reset(token)


def refine_latent(net, image: np.ndarray, padded: np.ndarray, *, step: float, amplitude: int, iterations: int,
                  lmbda: float | None = None, bits: Callable[[np.ndarray], np.ndarray] | None = None,
                  step_size: float = DEFAULT_STEP_SIZE,
                  drop_max: float = DROP_MAX, needs_mask: bool = True, sent: np.ndarray | None = None) -> np.ndarray:
    """The refined (C, h, w) latent, integers in +-amplitude (int64), starting from the analysis.

    ``net``: a `models.py` cnn network; ``image``: the (H, W, 3) uint8 picture to match,
    ``padded``: it padded as the encoder padded it (the decoder's output is compared on the
    picture's own H x W); ``step``: the quantizer step; ``bits``: given a (C, h, w) integer
    latent, the (C, h x w, 2 amplitude + 1) code lengths in bits of each element's values, lowest
    first, where the element sits in that latent (the coder's contexts are its neighbours), with
    ``lmbda`` the weight of the distortion (None: distortion alone) — asked again at every
    iteration's rounded latent, whose contexts the gradient then takes as fixed; ``needs_mask``:
    whether the decoder is given the received mask (the codec's config), for the decode with
    channels lost; ``sent``: bool per channel, those that will be sent (None: all): the others
    are decoded as lost in every pass and cost no bits (their values come back unchanged).
    """
    import torch

    if iterations < 1:
        raise CodecError(f"refine: iterations must be >= 1, got {iterations}")
    if (bits is None) != (lmbda is None):
        raise CodecError("refine: a rate term needs both bits and lmbda")
    h, w = image.shape[:2]
    pixels = h * w
    target = torch.from_numpy(image.astype(np.float32) / np.float32(255.0)).permute(2, 0, 1)[None]
    x = torch.from_numpy(padded.astype(np.float32) / np.float32(255.0)).permute(2, 0, 1)[None]
    net.requires_grad_(False)  # only the latent is optimised
    with torch.no_grad():
        u = torch.clamp(net.analysis(x) / step, -amplitude, amplitude)
    u.requires_grad_(True)
    unsent = None if sent is None else ~torch.from_numpy(np.asarray(sent, bool))
    sent_mask = None if sent is None else (~unsent).to(u.dtype)[None, :, None, None]
    optimiser = torch.optim.Adam([u], lr=step_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, iterations)
    drops = torch.Generator().manual_seed(0)  # the same refinement every time
    report = _progress.get()
    best_score, best = None, None
    for iteration in range(iterations + 1):  # the last pass only scores the last step
        rounded = torch.clamp(torch.round(u), -amplitude, amplitude)
        table = None if bits is None else torch.from_numpy(
            np.asarray(bits(rounded[0].detach().numpy().astype(np.int64)), np.float32))
        if table is not None and unsent is not None:
            table[unsent] = 0.0  # channels not sent cost nothing
        quantised = u + (rounded - u).detach()  # straight through: the decoder sees the integers
        y, mask = quantised * step, None if sent_mask is None else sent_mask.expand_as(quantised)
        decoded = net.decode_map(net.decoder_input(y if mask is None else y * mask,
                                                   mask if needs_mask else None))[..., :h, :w]
        distortion = ((decoded - target) ** 2).mean()
        with torch.no_grad():
            score = distortion.item()
            if table is not None:  # the table read at the integers themselves: their code length
                score = lmbda * 255.0**2 * score + _bits(rounded, table, amplitude).item() / pixels
            if best_score is None or score < best_score:
                best_score, best = score, rounded[0].clone()
        if iteration == iterations:
            break
        if drop_max > 0:
            distortion = (distortion + _dropped_distortion(net, quantised * step, target, drops, drop_max,
                                                           needs_mask, sent_mask)) / 2
        loss = distortion if table is None else lmbda * 255.0**2 * distortion + _bits(u, table, amplitude) / pixels
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if report is not None:
            report(iteration + 1, iterations)
    return best.numpy().astype(np.int64)


def _dropped_distortion(net, y, target, generator, drop_max: float, needs_mask: bool, sent_mask=None):
    """MSE of the picture decoded with a random share of the channels lost (at least one
    kept), as a receiver decodes it (lost channels zero; imputed or rescaled where the codec
    does so): a latent refined for the lossless decode alone is fragile. ``sent_mask``: (1, C,
    1, 1), the channels sent at all (None: all)."""
    import torch

    h, w = target.shape[-2:]
    channels = y.shape[1]
    rate = torch.rand((), generator=generator) * drop_max
    kept = torch.rand(channels, generator=generator) >= rate
    kept[torch.randint(channels, (), generator=generator)] = True
    mask = kept.to(y.dtype)[None, :, None, None]
    if sent_mask is not None:
        mask = mask * sent_mask if (mask * sent_mask).any() else sent_mask
    mask = mask.expand_as(y)
    decoded = net.decode_map(net.decoder_input(y * mask, mask if needs_mask else None))[..., :h, :w]
    return ((decoded - target) ** 2).mean()


def _bits(u, table, amplitude: int):
    """The code length of the continuous latent: each element's (C, h x w, levels) table read
    between its two neighbouring values (linear), so the gradient points to cheaper values."""
    import torch

    channels, _, levels = table.shape
    position = (torch.clamp(u, -amplitude, amplitude) + amplitude)[0].reshape(channels, -1, 1)
    below = position.floor().clamp(0, levels - 2).long()
    fraction = position - below
    return (torch.gather(table, 2, below) * (1 - fraction) + torch.gather(table, 2, below + 1) * fraction).sum()
