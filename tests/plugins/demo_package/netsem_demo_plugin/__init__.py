"""A package that brings netsem a codec, a stage and a loss model through entry points.

`half-pixels`: every other pixel of every other row (a 4x smaller 8-bit image), one colour
plane per channel in netsem's chw layout; lost positions are filled from their neighbours.
`tag-bit`: a stage that flips nothing and notes each datagram's size. `every-nth`: a loss
model that drops every n-th packet. Imports only numpy and netsem's frame types.
"""

import numpy as np
from scipy.ndimage import uniform_filter

from netsem import LatentFrame, StageOutcome


class HalfPixels:
    name = "half-pixels"
    partitions = ("channel", "token", "spatial")
    description = "every other pixel, 8 bits (a test plug-in)"

    def __init__(self, weights=None):
        self.weights = weights

    def to_frame(self, image, payload_budget=0):
        latent = np.ascontiguousarray(image[::2, ::2].transpose(2, 0, 1))
        return LatentFrame(latent, "chw", 8, False, 1.0, image.shape[:2])

    def from_frame(self, frame):
        latent = frame.latent.astype(np.float64)
        known = frame.mask.astype(np.float64)
        filled = uniform_filter(latent * known, size=(1, 3, 3)) / np.maximum(uniform_filter(known, size=(1, 3, 3)), 1e-9)
        latent = np.where(frame.mask, latent, filled)
        height, width = frame.image_size
        full = latent.transpose(1, 2, 0).repeat(2, axis=0).repeat(2, axis=1)[:height, :width]
        return np.clip(np.round(full), 0, 255).astype(np.uint8)


class TagBit:
    name = "tag-bit"

    def process(self, datagram, time):
        return StageOutcome(datagram, f"{len(datagram)} bytes")


def tag_bit_stage(options, rng):
    return TagBit()


class EveryNth:
    def __init__(self, n):
        self.n, self.count = n, 0

    def lost(self):
        self.count += 1
        return "every-nth" if self.count % self.n == 0 else None


def every_nth_loss(options, rng):
    return EveryNth(int(options.get("n", "5")))
