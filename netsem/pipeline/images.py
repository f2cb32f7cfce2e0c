"""Loading and saving the images netsem sends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

DEFAULT_IMAGE = "astronaut"  # scikit-image ships it: no download, never used for training


class ImageError(Exception):
    """An image that cannot be read (one-line message)."""


def load_image(path: str | None) -> tuple[np.ndarray, str]:
    """RGB uint8 (H, W, 3) and a label; None loads the bundled default photograph."""
    if path is None:
        from skimage import data

        return np.ascontiguousarray(data.astronaut()), f"{DEFAULT_IMAGE} (scikit-image)"
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
