"""Images to the sizes seed 004's networks take (no torch)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from netsem.semnoma.config import DOWNSAMPLE


def fit_image(image: np.ndarray, size: int) -> np.ndarray:
    """The centre square of an (H, W, 3) uint8 photograph, resized to size x size (Lanczos)."""
    if size < DOWNSAMPLE or size % DOWNSAMPLE:
        raise ValueError(f"--size must be a positive multiple of {DOWNSAMPLE} (got {size})")
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top:top + side, left:left + side]
    if side == size:
        return np.array(square)
    return np.array(Image.fromarray(square).resize((size, size), Image.LANCZOS))
