"""The one interface every codec netsem can send implements, latent or byte stream.

    frame = codec.to_frame(image, payload_budget)   # LatentFrame | StreamFrame (packetizers.frames)
    image = codec.from_frame(received)              # the same kind, with what was lost marked

A latent codec gives an integer latent with a declared layout (`chw` feature maps or `nd`
tokens), bit width, signedness and quantizer step; what it gets back has the lost elements
zeroed and a `received` mask (None: all arrived), and by default it decodes them as zeros
(seed 003's erasure model). A byte-stream codec (jpeg) gives its stream cut into segments
that decode on their own, each at most `payload_budget` bytes if it can (so one lost
datagram costs one segment), and gets back None for each lost segment. The pipeline treats
both alike: no codec is a special case.
"""

from __future__ import annotations

import math
import operator
from typing import Protocol, runtime_checkable

import numpy as np

from packetizers.frames import LatentFrame, StreamFrame
from packetizers.kinds import Layout

# The largest image a receiver decodes (32 Mpixel: ~100 MB of RGB out).  Sizes on the wire come
# from a peer's header (16 bits a side), so without a bound one datagram could ask for 12 GB.
MAX_IMAGE_PIXELS = 1 << 25

Frame = LatentFrame | StreamFrame


class CodecError(Exception):
    """A codec cannot be built, loaded, or asked to do what it was given (one-line message)."""


@runtime_checkable
class Codec(Protocol):
    """What the pipeline needs of a codec.

    name         how users call it (`--codec NAME`, reports)
    partitions   the partitions its frames can be cut into: "channel", "token", "spatial"
                 for a latent, "segment" for a byte stream
    to_frame     (H, W, 3) uint8 RGB -> a frame; `payload_budget` is the bytes one datagram
                 carries for one unit, for codecs that size their own units (segments)
    from_frame   a received frame -> (H, W, 3) uint8 RGB; raises CodecError for a frame it
                 cannot decode (its fields may come from a peer)
    """

    name: str
    partitions: tuple[str, ...]

    def to_frame(self, image: np.ndarray, payload_budget: int = 0) -> Frame: ...

    def from_frame(self, frame: Frame) -> np.ndarray: ...


def value_range(bit_width: int, signed: bool) -> tuple[int, int]:
    if signed:
        return -(1 << (bit_width - 1)), (1 << (bit_width - 1)) - 1
    return 0, (1 << bit_width) - 1


def check_image(image: np.ndarray) -> np.ndarray:
    """Validate an (H, W, 3) uint8 RGB image (a gray (H, W) image is widened to RGB)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise CodecError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.shape[2] == 4:
        image = image[:, :, :3]
    if image.dtype != np.uint8:
        raise CodecError(f"expected a uint8 image, got {image.dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise CodecError(f"empty image {image.shape}")
    return np.ascontiguousarray(image)


def check_mask(frame: LatentFrame) -> np.ndarray:
    """The frame's received mask as bool (all True when everything arrived)."""
    received = frame.received
    if received is None:
        return np.ones(frame.latent.shape, dtype=bool)
    if received.dtype != bool and not np.issubdtype(received.dtype, np.integer):
        raise CodecError(f"received mask must be boolean, got {received.dtype}")
    return received.astype(bool, copy=False)


def check_image_size(size: object) -> tuple[int, int]:
    """The (H, W) a decoder is asked to produce, as ints; CodecError unless both are >= 1
    and the image has at most MAX_IMAGE_PIXELS pixels."""
    try:
        h, w = (operator.index(v) for v in size)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise CodecError(f"image size {size!r} is not two integers") from None
    if h < 1 or w < 1 or h * w > MAX_IMAGE_PIXELS:
        raise CodecError(f"image size {h}x{w} outside 1x1..{MAX_IMAGE_PIXELS} pixels")
    return h, w


def check_latent(
    encoded: Frame,
    codec: str,
    *,
    layout: str,
    shape: tuple[int, ...],
    bit_width: int,
    signed: bool,
    token_grid: tuple[int, int] = (0, 0),
) -> None:
    """CodecError (one line, naming ``codec``) unless ``encoded`` is what the codec's decoder
    takes: a latent frame of the given layout, latent shape, token grid, bit width and
    signedness, integer values that fit that bit width, and a finite quantizer step > 0.
    Every field may come from a peer's header."""
    if not isinstance(encoded, LatentFrame):
        raise CodecError(f"{codec} decodes latents, not a byte stream")
    latent = encoded.latent
    if encoded.layout != Layout.named(layout):
        raise CodecError(f"{codec}: layout {encoded.layout.name.lower()!r}, expected {layout!r}")
    if not isinstance(latent, np.ndarray) or not np.issubdtype(latent.dtype, np.integer):
        raise CodecError(f"{codec}: latent is not an integer array")
    if latent.shape != tuple(shape):
        raise CodecError(f"{codec}: latent shape {latent.shape} does not fit the image ({tuple(shape)})")
    grid = encoded.token_grid  # LatentFrame made sure it is two numbers
    if tuple(grid) != tuple(token_grid):
        raise CodecError(f"{codec}: token grid {grid}, expected {token_grid}")
    got, want = (encoded.bit_width, bool(encoded.signed)), (bit_width, signed)
    if got != want:
        raise CodecError(f"{codec}: {_elements(*got)} latent, expected {_elements(*want)}")
    try:
        scale = float(encoded.scale)
    except (TypeError, ValueError):
        raise CodecError(f"{codec}: quantizer step {encoded.scale!r} is not a number") from None
    if not (math.isfinite(scale) and scale > 0):
        raise CodecError(f"{codec}: quantizer step {scale} must be finite and > 0")
    lo, hi = value_range(bit_width, signed)
    if latent.size and (latent.min() < lo or latent.max() > hi):
        raise CodecError(f"{codec}: latent values outside {lo}..{hi}")


def _elements(bit_width: int, signed: bool) -> str:
    return f"{bit_width}-bit {'signed' if signed else 'unsigned'}"


def smallest_int_dtype(bit_width: int, signed: bool) -> np.dtype:
    if signed:
        return np.dtype(np.int8 if bit_width <= 8 else np.int16)
    return np.dtype(np.uint8 if bit_width <= 8 else np.uint16)
