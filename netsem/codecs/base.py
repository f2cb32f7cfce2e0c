"""The codec interface shared by every codec netsem can send.

A codec turns an RGB image into an integer latent with a declared layout and back, given a
boolean mask of the latent elements that arrived.  Missing elements arrive as zeros with
``received=False``; by default a decoder fills them with zeros (seed 003's erasure model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

LAYOUTS = ("chw", "nd")
PARTITIONS = ("channel", "token", "spatial")


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
    return received.astype(bool, copy=False)


def smallest_int_dtype(bit_width: int, signed: bool) -> np.dtype:
    if signed:
        return np.dtype(np.int8 if bit_width <= 8 else np.int16)
    return np.dtype(np.uint8 if bit_width <= 8 else np.uint16)
