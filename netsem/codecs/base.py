"""The codec interface shared by every codec netsem can send.

A codec turns an RGB image into an integer latent with a declared layout and back, given a
boolean mask of the latent elements that arrived.  Missing elements arrive as zeros with
``received=False``; by default a decoder fills them with zeros (seed 003's erasure model).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

LAYOUTS = ("chw", "nd")
PARTITIONS = ("channel", "token", "spatial")
# The largest image a receiver decodes (32 Mpixel: ~100 MB of RGB out).  Sizes on the wire come
# from a peer's header (16 bits a side), so without a bound one datagram could ask for 12 GB.
MAX_IMAGE_PIXELS = 1 << 25


class CodecError(Exception):
    """A codec cannot be built, loaded, or asked to do what it was given (one-line message)."""


@dataclass(frozen=True)
class EncodedLatent:
    latent: np.ndarray  # integer array; "chw": (C, H', W'); "nd": (N tokens, D dims)
    layout: str  # "chw" | "nd"
    bit_width: int  # 1..16: every value fits in bit_width bits
    signed: bool  # two's complement when True
    scale: float  # quantizer step the decoder multiplies by (1.0 if none)
    image_size: tuple[int, int]  # original (H, W) of the image
    token_grid: tuple[int, int] | None = None  # "nd": tokens arranged (gh, gw), gh*gw == N

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise CodecError(f"unknown latent layout {self.layout!r}; expected one of {LAYOUTS}")
        if not 1 <= self.bit_width <= 16:
            raise CodecError(f"bit_width {self.bit_width} outside 1..16")
        if not np.issubdtype(self.latent.dtype, np.integer):
            raise CodecError(f"latent must be an integer array, got {self.latent.dtype}")
        want_ndim = 3 if self.layout == "chw" else 2
        if self.latent.ndim != want_ndim:
            raise CodecError(
                f"layout {self.layout!r} needs a {want_ndim}-D latent, got shape {self.latent.shape}"
            )
        if self.token_grid is not None:
            gh, gw = self.token_grid
            if self.layout != "nd" or gh * gw != self.latent.shape[0]:
                raise CodecError(f"token_grid {self.token_grid} does not match {self.latent.shape}")

    @property
    def value_range(self) -> tuple[int, int]:
        return value_range(self.bit_width, self.signed)

    @property
    def wire_bits(self) -> int:
        """Bits the latent takes on the wire without entropy coding."""
        return int(self.latent.size) * self.bit_width

    @property
    def bits_per_pixel(self) -> float:
        h, w = self.image_size
        return self.wire_bits / float(h * w)


def value_range(bit_width: int, signed: bool) -> tuple[int, int]:
    if signed:
        return -(1 << (bit_width - 1)), (1 << (bit_width - 1)) - 1
    return 0, (1 << bit_width) - 1


@runtime_checkable
class Codec(Protocol):
    name: str
    codec_id: int
    layout: str
    partitions: tuple[str, ...]

    def encode(self, image: np.ndarray) -> EncodedLatent: ...

    def decode(self, encoded: EncodedLatent, received: np.ndarray) -> np.ndarray: ...


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


def check_mask(encoded: EncodedLatent, received: np.ndarray | None) -> np.ndarray:
    if received is None:
        return np.ones(encoded.latent.shape, dtype=bool)
    received = np.asarray(received)
    if received.shape != encoded.latent.shape:
        raise CodecError(
            f"received mask shape {received.shape} != latent shape {encoded.latent.shape}"
        )
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
    encoded: EncodedLatent,
    codec: str,
    *,
    layout: str,
    shape: tuple[int, ...],
    bit_width: int,
    signed: bool,
    token_grid: tuple[int, int] | None,
) -> None:
    """CodecError (one line, naming ``codec``) unless ``encoded`` is what the codec's decoder
    takes: the given layout, latent shape, token grid, bit width and signedness, an integer
    latent whose values fit that bit width, and a finite quantizer step > 0.  Every field may
    come from a peer's header."""
    latent = encoded.latent
    if encoded.layout != layout:
        raise CodecError(f"{codec}: layout {encoded.layout!r}, expected {layout!r}")
    if not isinstance(latent, np.ndarray) or not np.issubdtype(latent.dtype, np.integer):
        raise CodecError(f"{codec}: latent is not an integer array")
    if latent.shape != tuple(shape):
        raise CodecError(f"{codec}: latent shape {latent.shape} does not fit the image ({tuple(shape)})")
    grid = encoded.token_grid  # EncodedLatent made sure it is None or two numbers
    if (None if grid is None else tuple(grid)) != token_grid:
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
