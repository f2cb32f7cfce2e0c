"""Channels an imputing codec need not send, and the rate ladder they make.

A receiver that imputes lost channels from the received ones (`cnn-sem-impute` and its rate
points) rebuilds some channels about as well as their bytes would: leaving them out is a rate
point between the trained ones, and below the lowest, without training. Each such codec ships an
order (`drop_order`: the channel losing the least PSNR per byte first, fitted on the training
photographs by `tools/training/fit_channel_skip.py`); `skip=k` leaves out the first k. A channel
left out travels as a one-byte unit (`NOT_SENT`), never a code (codes are whole 32-bit words), so
the frame stays complete, no receiver waits for it, and any netsem receiver decodes it as a lost
channel.

The ladder: the (codec, skip) points no other beats in both mean rate and mean PSNR on those
photographs, lowest rate first; `--bpp` walks it from the top. Leaving channels out costs
robustness (the imputer has fewer to work from when datagrams are lost), so the fit also measured
each point with a share of the sent channels lost (`LOSSES`), and `ladder(expected_loss)` ranks the
points by their PSNR at the nearest of those shares (`--expect-loss`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .base import CodecError
from .config import WEIGHTS_DIR

CHANNEL_SKIP_PATH = WEIGHTS_DIR / "channel-skip.json"
NOT_SENT = b"\x00"
LOSSES = (0, 10, 20, 30, 40)  # percent of the sent channels lost, the curves' PSNR columns


@dataclass(frozen=True)
class LadderStep:
    codec: str  # an -ec codec
    skip: int  # channels left out
    bpp: float  # mean payload bits per pixel on the training photographs
    psnr_db: float  # mean PSNR there, at the ladder's share of channels lost


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


def ladder(expected_loss: float = 0.0) -> list[LadderStep]:
    """The rate ladder for a link expected to lose ``expected_loss`` percent of the datagrams,
    lowest rate first."""
    return ladder_from(_fitted(), expected_loss)


def ladder_from(fitted: dict, expected_loss: float) -> list[LadderStep]:
    """The steps of the fitted curves that no other beats in both rate and PSNR at the fitted loss
    nearest ``expected_loss`` (percent)."""
    losses = [float(loss) for loss in fitted["losses"]]
    column = 2 + min(range(len(losses)), key=lambda i: abs(losses[i] - expected_loss))
    points = [(row[1], row[column], codec, int(row[0])) for codec, rows in fitted["curves"].items() for row in rows]
    return [LadderStep(codec, skip, bpp, psnr) for bpp, psnr, codec, skip in pareto_front(points)]


def pareto_front(points: list[tuple]) -> list[tuple]:
    """The (rate, quality, ...) points no other beats in both, lowest rate first."""
    kept, best = [], float("-inf")
    for point in sorted(points, key=lambda p: (p[0], -p[1])):
        if point[1] > best:
            kept.append(point)
            best = point[1]
    return kept
