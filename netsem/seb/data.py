"""Seed 001's photographs: what the KB and the networks learn from, and the changing-content
sequence they are evaluated on (never trained on).

The seed built its KB from ImageNet and evaluated on Cityscapes then two UVG sequences; none
is offline here. Stand-ins, documented in tools/training/SEB.md:

- training (f_SE, f_TP, the initial KB): the shared `mate-*` photographs (nature close-ups)
  and scikit-image's training photographs (`netsem.codecs.data.SKIMAGE_TRAIN`);
- the evaluation sequence, three groups of different content, one after the other:
  1. scikit-image's evaluation photographs (astronaut, coffee, chelsea, rocket),
  2. the shared `plasma-*` photographs (landscapes and abstract wallpapers; shipped in
     `netsem/data/photos/` at a 512-pixel short side, so the sequence needs nothing outside the package),
  3. scikit-image's stereo motorcycle pair, clock, colour wheel and cell micrograph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from netsem.codecs.data import SKIMAGE_TRAIN, _rgb

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "photos"  # training only (tools/)
SHIPPED_PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"  # the sequence's group 2, in the package
TRAIN_PREFIX = "mate-"
GROUP_2_PREFIX = "plasma-"
GROUP_1 = ("astronaut", "coffee", "chelsea", "rocket")
GROUP_3 = ("stereo_motorcycle", "clock", "colorwheel", "cell")


def _photos(folder: Path, prefix: str) -> list[tuple[str, np.ndarray]]:
    out = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(prefix) and p.suffix.lower() in (".jpg", ".jpeg", ".png"):
            with Image.open(p) as im:
                out.append((p.stem, _rgb(np.asarray(im.convert("RGB")))))
    return out


def _skimage(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    return _rgb(image)


def _scaled(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS))


def training_images(photos: str | Path = PHOTOS, scales: tuple[float, ...] = (0.5, 0.25)) -> list[np.ndarray]:
    """The training photographs at each scale (the wallpapers are 1920+ px wide: halved and
    quartered, a 128 px crop holds objects, not just texture)."""
    base = [image for _, image in _photos(Path(photos), TRAIN_PREFIX)] + [_skimage(n) for n in SKIMAGE_TRAIN]
    if not base:
        raise ValueError(f"no training photographs in {photos}")
    return [s for image in base for scale in scales if min((s := _scaled(image, scale)).shape[:2]) >= 128]


def sequence_groups(photos: str | Path = SHIPPED_PHOTOS, size: int = 256, crops: int = 3, seed: int = 0
                    ) -> list[list[tuple[str, np.ndarray]]]:
    """The evaluation sequence: three groups of `size` x `size` crops (`crops` per photograph,
    at seeded positions, from each photograph scaled so its short side is 2 x size)."""
    rng = np.random.default_rng(seed)
    groups = [[(n, _skimage(n)) for n in GROUP_1], _photos(Path(photos), GROUP_2_PREFIX),
              [(n, _skimage(n)) for n in GROUP_3]]
    out = []
    for group in groups:
        frames = []
        for name, image in group:
            image = _scaled(image, min(1.0, 2 * size / min(image.shape[:2])))
            if min(image.shape[:2]) < size:
                image = _scaled(image, size / min(image.shape[:2]))
            h, w = image.shape[:2]
            for k in range(crops):
                y, x = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
                frames.append((f"{name}#{k}", np.ascontiguousarray(image[y:y + size, x:x + size])))
        out.append(frames)
    return out
