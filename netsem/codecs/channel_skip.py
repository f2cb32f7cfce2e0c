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
photographs, lowest rate first; `--bpp` walks it from the top.
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


@dataclass(frozen=True)
class LadderStep:
    codec: str  # an -ec codec
    skip: int  # channels left out
    bpp: float  # mean payload bits per pixel on the training photographs
    psnr_db: float  # mean PSNR there


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


def ladder() -> list[LadderStep]:
    """The rate ladder, lowest rate first."""
    return [LadderStep(s["codec"], int(s["skip"]), float(s["bpp"]), float(s["psnr_db"])) for s in _fitted()["ladder"]]
