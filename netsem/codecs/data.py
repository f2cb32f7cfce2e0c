"""Training photographs: a folder of JPEG/PNG files plus scikit-image's bundled photos.

The evaluation photographs (astronaut, coffee, chelsea -- also bundled as ``cat`` -- and
rocket) are never used for training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

EVAL_IMAGES = ("astronaut", "coffee", "chelsea", "rocket")
# skimage.data photographs that need no download, minus the evaluation set (``cat`` is
# chelsea under another name).
SKIMAGE_TRAIN = (
    "hubble_deep_field", "immunohistochemistry", "retina",
    "camera", "brick", "grass", "gravel", "coins", "moon",
)


def load_eval_images() -> dict[str, np.ndarray]:
    import skimage.data

    return {n: np.ascontiguousarray(getattr(skimage.data, n)()[:, :, :3]) for n in EVAL_IMAGES}


def _rgb(a: np.ndarray) -> np.ndarray:
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.ascontiguousarray(a[:, :, :3].astype(np.uint8))


def load_training_images(
    photos: str | Path | None, skimage_extras: bool = True, scales: tuple[float, ...] = (1.0, 0.5)
) -> list[np.ndarray]:
    """Every photograph at each of ``scales`` (Lanczos), as (H, W, 3) uint8 arrays."""
    base: list[np.ndarray] = []
    if photos is not None:
        files = sorted(
            p for p in Path(photos).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")
        )
        for p in files:
            if p.stem.lower() in EVAL_IMAGES:
                raise ValueError(f"{p} is an evaluation photograph; do not train on it")
            with Image.open(p) as im:
                base.append(_rgb(np.asarray(im.convert("RGB"))))
    if skimage_extras:
        import skimage.data

        for n in SKIMAGE_TRAIN:
            base.append(_rgb(getattr(skimage.data, n)()))
    if not base:
        raise ValueError("no training photographs found")
    out: list[np.ndarray] = []
    for a in base:
        for s in scales:
            if s == 1.0:
                out.append(a)
                continue
            h, w = a.shape[:2]
            nh, nw = int(round(h * s)), int(round(w * s))
            if min(nh, nw) < 64:
                continue
            out.append(np.asarray(Image.fromarray(a).resize((nw, nh), Image.LANCZOS)))
    return out
