"""Loading and saving the images netsem sends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

DEFAULT_IMAGE = "astronaut"  # scikit-image ships it: no download, never used for training


class ImageError(Exception):
    """An image that cannot be read (one-line message)."""


BUNDLED_PREFIX = "skimage:"  # e.g. skimage:coffee, a photograph scikit-image ships


def load_image(path: str | None) -> tuple[np.ndarray, str]:
    """RGB uint8 (H, W, 3) and a label; None loads the bundled default photograph, and
    `skimage:NAME` one of scikit-image's bundled photographs."""
    if path is None:
        path = BUNDLED_PREFIX + DEFAULT_IMAGE
    if path.startswith(BUNDLED_PREFIX):
        from skimage import data

        name = path[len(BUNDLED_PREFIX):]
        loader = getattr(data, name, None)
        if name.startswith("_") or not callable(loader):
            raise ImageError(f"scikit-image has no photograph named {name!r} (try astronaut, coffee, chelsea, rocket)")
        image = np.asarray(loader())
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ImageError(f"scikit-image's {name!r} is not an RGB photograph")
        return np.ascontiguousarray(image[:, :, :3]), f"{name} (scikit-image)"
    file = Path(path)
    if not file.is_file():
        raise ImageError(f"image not found: {path}")
    try:
        with Image.open(file) as image:
            return np.asarray(image.convert("RGB")), file.name
    except (UnidentifiedImageError, OSError) as error:
        raise ImageError(f"cannot read image {path}: {error}") from None


def save_image(image: np.ndarray, path: str) -> None:
    Image.fromarray(image).save(path)
