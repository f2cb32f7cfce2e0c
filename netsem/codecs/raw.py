"""`raw`: 8-bit pixels, rearranged space-to-depth so that one latent channel is one colour of
a pixel grid subsampled by s in each direction.  A lost channel then leaves a regular hole
pattern that the decoder conceals by normalised-convolution interpolation of the received
pixels (also used for lost positions / blocks)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

from .base import CodecError, EncodedLatent, check_image, check_mask
from .registry import RAW_ID


def conceal(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill the unknown pixels of a float (H, W, 3) image from known ones, finest scale first."""
    out = image.copy()
    filled = known.copy()
    if filled.all():
        return out
    if not known.any():
        out[:] = 128.0
        return out
    data = np.where(known, image, 0.0)
    weight = known.astype(np.float64)
    size = 3
    limit = 2 * max(image.shape[:2]) + 1
    while not filled.all() and size <= limit:
        num = uniform_filter(data, size=(size, size, 1), mode="nearest")
        den = uniform_filter(weight, size=(size, size, 1), mode="nearest")
        new = ~filled & (den > 1e-9)
        out[new] = num[new] / den[new]
        filled |= new
        size = 2 * size + 1
    out[~filled] = float(image[known].mean())
    return out


class RawCodec:
    name = "raw"
    codec_id = RAW_ID
    layout = "chw"
    partitions = ("channel", "token", "spatial")
    bit_width = 8
    num_parameters = 0
    description = "8-bit pixels, space-to-depth 4x4 (48 channels), lost pixels interpolated"

    def __init__(self, factor: int = 4) -> None:
        self.factor = factor

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        s = self.factor
        return (3 * s * s, -(-height // s), -(-width // s))

    def encode(self, image: np.ndarray) -> EncodedLatent:
        image = check_image(image)
        h, w = image.shape[:2]
        s = self.factor
        ph, pw = (-h) % s, (-w) % s
        x = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge")
        hh, ww = x.shape[0] // s, x.shape[1] // s
        # (hh, s, ww, s, 3) -> (3, s, s, hh, ww): channel = colour * s*s + dy * s + dx
        lat = x.reshape(hh, s, ww, s, 3).transpose(4, 1, 3, 0, 2).reshape(3 * s * s, hh, ww)
        return EncodedLatent(np.ascontiguousarray(lat), "chw", 8, False, 1.0, (h, w))

    def decode(self, encoded: EncodedLatent, received: np.ndarray | None = None) -> np.ndarray:
        mask = check_mask(encoded, received)
        h, w = encoded.image_size
        if encoded.latent.shape != self.latent_shape(h, w):
            raise CodecError(f"raw latent shape {encoded.latent.shape} != {self.latent_shape(h, w)}")
        s = self.factor
        _, hh, ww = encoded.latent.shape

        def unfold(a: np.ndarray) -> np.ndarray:
            return a.reshape(3, s, s, hh, ww).transpose(3, 1, 4, 2, 0).reshape(hh * s, ww * s, 3)

        img = unfold(np.where(mask, encoded.latent, 0)).astype(np.float64)
        known = unfold(mask)
        if not known.all():
            img = conceal(img, known)
        return np.clip(np.round(img[:h, :w]), 0, 255).astype(np.uint8)
