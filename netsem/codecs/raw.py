"""`raw`: 8-bit pixels, rearranged space-to-depth so that one latent channel is one colour of
a pixel grid subsampled by s in each direction.  A lost channel then leaves a regular hole
pattern that the decoder conceals by normalised-convolution interpolation of the received
pixels (also used for lost positions / blocks)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

from packetizers.frames import LatentFrame
from packetizers.kinds import LATENT_PARTITION_WORDS

from .base import Frame, check_image, check_image_size, check_latent, check_mask


def conceal(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill the unknown pixels of a uint8 (H, W, C) image from the known ones, finest scale
    first.  One colour plane at a time: the filters' float64 temporaries then take a third
    of what the whole image's would (a 12-Mpixel decode peaked at 2.4 GB at once)."""
    if known.all():
        return image
    if not known.any():
        return np.full_like(image, 128)
    # where a plane has no known pixel at all: the mean of every known pixel
    fallback = float(image[known].astype(np.float64).mean())
    out = np.empty_like(image)
    for c in range(image.shape[2]):
        plane = conceal_plane(image[..., c].astype(np.float64), known[..., c], fallback)
        out[..., c] = np.clip(np.round(plane), 0, 255)
    return out


def conceal_plane(plane: np.ndarray, known: np.ndarray, fallback: float) -> np.ndarray:
    """Fill the unknown pixels of a float (H, W) plane by normalised convolution with boxes
    of growing size; ``fallback`` where no box reaches a known pixel."""
    out = plane.copy()
    filled = known.copy()
    data = np.where(known, plane, 0.0)
    weight = known.astype(np.float64)
    size = 3
    limit = 2 * max(plane.shape) + 1
    while not filled.all() and size <= limit:
        num = uniform_filter(data, size=size, mode="nearest")
        den = uniform_filter(weight, size=size, mode="nearest")
        new = ~filled & (den > 1e-9)
        out[new] = num[new] / den[new]
        filled |= new
        size = 2 * size + 1
    out[~filled] = fallback
    return out


class RawCodec:
    name = "raw"
    layout = "chw"
    partitions = LATENT_PARTITION_WORDS
    bit_width = 8
    num_parameters = 0
    description = "8-bit pixels, space-to-depth 4x4 (48 channels), lost pixels interpolated"

    def __init__(self, factor: int = 4) -> None:
        self.factor = factor

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        s = self.factor
        return (3 * s * s, -(-height // s), -(-width // s))

    def to_frame(self, image: np.ndarray, payload_budget: int = 0) -> LatentFrame:
        image = check_image(image)
        h, w = image.shape[:2]
        s = self.factor
        ph, pw = (-h) % s, (-w) % s
        x = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge")
        hh, ww = x.shape[0] // s, x.shape[1] // s
        # (hh, s, ww, s, 3) -> (3, s, s, hh, ww): channel = colour * s*s + dy * s + dx
        lat = x.reshape(hh, s, ww, s, 3).transpose(4, 1, 3, 0, 2).reshape(3 * s * s, hh, ww)
        return LatentFrame(np.ascontiguousarray(lat), "chw", 8, False, 1.0, (h, w))

    def from_frame(self, encoded: Frame) -> np.ndarray:
        """Raises CodecError, and nothing else, for a frame this codec cannot decode (its
        fields may come from a peer's datagram headers)."""
        h, w = check_image_size(getattr(encoded, "image_size", None))
        check_latent(encoded, self.name, layout="chw", shape=self.latent_shape(h, w), bit_width=8, signed=False)
        mask = check_mask(encoded)
        s = self.factor
        _, hh, ww = encoded.latent.shape

        def unfold(a: np.ndarray) -> np.ndarray:
            return a.reshape(3, s, s, hh, ww).transpose(3, 1, 4, 2, 0).reshape(hh * s, ww * s, 3)

        img = unfold(np.where(mask, encoded.latent, 0).astype(np.uint8))
        return np.ascontiguousarray(conceal(img, unfold(mask))[:h, :w])
