"""Multi-user batches of 32x32 images cut from photographs (the seed used CIFAR-10, which is
not available offline).

A sample is a square crop of a photograph, its side drawn log-uniformly between 32 pixels and
`max_side` (256, or the photograph's shorter side), resized to 32x32 (Lanczos) and flipped at
random: small crops are texture at full resolution, large ones a whole scene at thumbnail size,
as CIFAR-10's are. A batch of G x K users draws its crops from `photos_per_batch` photographs
(default 10, CIFAR-10's class count: about five users per photograph, as a random CIFAR batch
has about five images per class), so users that share content exist for the clustering to find.

Training photographs: `netsem.codecs.data.load_training_images` (the shared folder and
scikit-image's bundled training photos, each at scale 1 and 1/2). The test set is cut the same
way from the evaluation photographs (`EVAL_IMAGES`: astronaut, coffee, chelsea, rocket), never
trained on, with its own seed. Batch n of a seed is a function of (seed, n) alone, so a resumed
training run draws the very batches it would have drawn.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from netsem.multiuser.config import TILE

MAX_SIDE = 256
PHOTOS_PER_BATCH = 10
TEST_SEED = 20261205


def crop_batch(photos: list[np.ndarray], users: int, rng: np.random.Generator, *,
               photos_per_batch: int = PHOTOS_PER_BATCH, max_side: int = MAX_SIDE, size: int = TILE) -> np.ndarray:
    """(users, size, size, 3) uint8 crops; see the module docstring."""
    chosen = rng.choice(len(photos), size=min(photos_per_batch, len(photos)), replace=False)
    out = np.empty((users, size, size, 3), dtype=np.uint8)
    for i in range(users):
        photo = photos[chosen[rng.integers(len(chosen))]]
        h, w = photo.shape[:2]
        top_side = min(max_side, h, w)
        side = size if top_side <= size else round(math.exp(rng.uniform(math.log(size), math.log(top_side))))
        y, x = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
        crop = photo[y : y + side, x : x + side]
        if side != size:
            crop = np.asarray(Image.fromarray(crop).resize((size, size), Image.LANCZOS))
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if rng.random() < 0.5:
            crop = crop[::-1]
        out[i] = crop
    return out


def training_batch(photos: list[np.ndarray], users: int, seed: int, step: int) -> np.ndarray:
    return crop_batch(photos, users, np.random.default_rng([seed, step]))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) float in [0, 1] -> (N, H, W, 3) uint8, rounded."""
    return (images.detach().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def eval_photos() -> list[np.ndarray]:
    """The evaluation photographs at scales 1 and 1/2 (Lanczos), as the training set is."""
    from netsem.codecs.data import load_eval_images

    out = []
    for photo in load_eval_images().values():
        h, w = photo.shape[:2]
        out += [photo, np.asarray(Image.fromarray(photo).resize((w // 2, h // 2), Image.LANCZOS))]
    return out


def test_batches(batches: int, users: int, seed: int = TEST_SEED) -> list[np.ndarray]:
    """The fixed test set: `batches` batches of `users` crops of the evaluation photographs."""
    photos = eval_photos()
    return [crop_batch(photos, users, np.random.default_rng([seed, n])) for n in range(batches)]
