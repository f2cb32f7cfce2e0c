"""Channels an imputing codec need not send, and the rate curves they make.

A receiver that imputes lost channels from the received ones (`cnn-sem-impute` and its rate
points) rebuilds some channels about as well as their bytes would: leaving them out is a rate
point between the trained ones, and below the lowest, without training. Each such codec ships an
order (`drop_order`: the channel losing the least PSNR per byte first, fitted on photographs
by `tools/training/fit_channel_skip.py`); `skip=k` leaves out the first k. A channel
left out travels as a one-byte unit (`NOT_SENT`), never a code (codes are whole 32-bit words), so
the frame stays complete, no receiver waits for it, and any netsem receiver decodes it as a lost
channel.

`--bpp` chooses per image among these curves (k -> mean rate and PSNR on the fitting photographs,
with nothing lost and with a share of the sent channels lost, `LOSSES`): the curves shortlist the
codecs that promise the most at the target (`shortlist`), the sender then measures each on the image
itself. Leaving channels out costs robustness (the imputer has fewer to work from when datagrams
are lost): `Curve.loss_penalty` is what the fit measured that to cost (`--expect-loss`). An expected
loss is one percent or several (`ExpectedLoss`): several stand for a link whose loss varies among
them, each as likely, and a curve's PSNR there is its mean over them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from .base import CodecError
from .config import WEIGHTS_DIR

CHANNEL_SKIP_PATH = WEIGHTS_DIR / "channel-skip.json"
NOT_SENT = b"\x00"
LOSSES = (0, 10, 20, 30, 40)  # percent of the sent channels lost, the curves' PSNR columns
# codecs --bpp measures on each image, those whose curves promise the most: on seven photographs never trained
# on, 5 found what all 9 did, 3 lost 0.25 dB at 0.75 bpp (the curves' photographs underrate q7 there)
SHORTLIST = 5
# percent of datagrams lost, or several such percents, each as likely (their mean PSNR is scored)
ExpectedLoss = float | tuple[float, ...]


@dataclass(frozen=True)
class Curve:
    """One codec's fitted curve: at each number of channels left out (`skips`, rising), the mean
    payload bits per pixel and the mean PSNR at each of `losses` percent of the sent channels lost."""

    codec: str  # an -ec codec
    skips: tuple[int, ...]
    bpp: tuple[float, ...]
    psnr_db: tuple[tuple[float, ...], ...]  # [skip][loss]
    losses: tuple[float, ...]

    def psnr_at(self, skip: float, expected_loss: ExpectedLoss = 0.0) -> float:
        """Mean PSNR with ``skip`` channels left out at ``expected_loss`` percent lost, interpolated
        between the fitted numbers left out and the fitted losses (held at the last beyond 40 %); for
        several losses, the mean of the PSNR at each."""
        # linear in the loss too, not the nearest column: 5 % would tie 0 and 10 and take 0, choosing as if
        # nothing were lost
        at_loss = [float(np.mean(np.interp(expected_loss, self.losses, row))) for row in self.psnr_db]
        return float(np.interp(skip, self.skips, at_loss))

    def loss_penalty(self, skip: float, expected_loss: ExpectedLoss) -> float:
        """dB the fit lost at ``expected_loss`` percent against nothing lost, ``skip`` channels left out."""
        return self.psnr_at(skip, expected_loss) - self.psnr_at(skip, 0.0)

    def skipped_within(self, bpp: float) -> float | None:
        """The channels to leave out for a mean rate of ``bpp``, interpolated between the fitted numbers
        (0 where all sent fits; None below the least rate fitted)."""
        if bpp < self.bpp[-1]:
            return None
        # the rate falls as k rises: interpolate k over the rates ascending
        return float(np.interp(bpp, self.bpp[::-1], self.skips[::-1]))


@cache
def _fitted(path: Path = CHANNEL_SKIP_PATH) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CodecError(f"cannot read the channel-skip table {path}: {error}") from None


def drop_orders() -> dict[str, tuple[int, ...]]:
    """-ec codec name -> its channels in the order they are left out (the imputing codecs; none
    before the table is fitted)."""
    if not CHANNEL_SKIP_PATH.exists():
        return {}
    return {codec: tuple(int(c) for c in order) for codec, order in _fitted()["drop_order"].items()}


@cache
def curves() -> dict[str, Curve]:
    """-ec codec name -> its fitted curve."""
    fitted = _fitted()
    losses = tuple(float(loss) for loss in fitted["losses"])
    return {codec: Curve(codec, tuple(int(row[0]) for row in rows), tuple(row[1] for row in rows),
                         tuple(tuple(row[2:]) for row in rows), losses)
            for codec, rows in fitted["curves"].items()}


def shortlist(bpp: float, scale: float, expected_loss: ExpectedLoss = 0.0, size: int = SHORTLIST) -> list[str]:
    """The ``size`` codecs whose curves promise the most PSNR at ``expected_loss`` percent within ``bpp``
    bits per pixel, for an image that takes ``scale`` times the fitted rate; best first. A codec that
    cannot reach ``bpp`` even with every fitted channel left out is not listed."""
    promise = {}
    for codec, curve in curves().items():
        skip = curve.skipped_within(bpp / scale)
        if skip is not None:
            promise[codec] = curve.psnr_at(skip, expected_loss)
    return sorted(promise, key=promise.get, reverse=True)[:size]


def expected_loss_of(value: float | Sequence[float]) -> ExpectedLoss:
    """An expected loss as given (a percent, or several) as `ExpectedLoss`: one percent a float, several a
    tuple; ValueError outside 0..100 or for none."""
    losses = tuple(float(loss) for loss in np.atleast_1d(value))
    if not losses or not all(0 <= loss <= 100 for loss in losses):
        raise ValueError(f"an expected loss is one percent or several, each 0 to 100, not {value!r}")
    return losses[0] if len(losses) == 1 else losses


def loss_words(expected_loss: ExpectedLoss) -> str:
    """'10 %', or '10 % or 40 % (the mean)' for several."""
    losses = [f"{loss:g} %" for loss in np.atleast_1d(expected_loss)]
    return losses[0] if len(losses) == 1 else f"{', '.join(losses[:-1])} or {losses[-1]} (the mean)"


def lowest_rate() -> tuple[str, int]:
    """(codec, channels left out) of the least mean rate fitted: what --bpp sends when nothing fits."""
    return min(((curve.bpp[-1], codec, curve.skips[-1]) for codec, curve in curves().items()))[1:]
