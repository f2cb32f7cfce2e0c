"""Where an image's important content is: spectral-residual saliency (Hou & Zhang, CVPR 2007).

The seed names DINO or Grad-CAM for I_f; neither has weights offline here, so importance comes
from the spectral residual: the log amplitude spectrum of a 64-pixel-wide gray thumbnail minus
its 3x3 local mean is what is *unexpected* in the image; back in the image domain (with the
original phase), squared and smoothed, it peaks on objects and edges that stand out from
their surroundings. No learned weights, deterministic, about 1 ms per image.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, uniform_filter

THUMBNAIL = 64


def saliency_map(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) float32 in [0, 1] (1 = most salient)."""
    h, w = image.shape[:2]
    gray = Image.fromarray(np.ascontiguousarray(image)).convert("L")
    tw = THUMBNAIL
    th = max(8, round(THUMBNAIL * h / w))
    small = np.asarray(gray.resize((tw, th), Image.BILINEAR), dtype=np.float64)
    spectrum = np.fft.fft2(small)
    log_amplitude = np.log(np.abs(spectrum) + 1e-9)
    residual = log_amplitude - uniform_filter(log_amplitude, size=3, mode="wrap")
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    saliency = gaussian_filter(saliency, sigma=2.5)
    saliency -= saliency.min()
    peak = saliency.max()
    if peak > 0:
        saliency /= peak
    full = Image.fromarray(saliency.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR)
    return np.clip(np.asarray(full, dtype=np.float32), 0, 1)


def block_importance(saliency: np.ndarray, block: int) -> np.ndarray:
    """Mean saliency of each `block` x `block` tile: (H, W) -> (H/block, W/block); H, W multiples of block."""
    h, w = saliency.shape
    return saliency.reshape(h // block, block, w // block, block).mean(axis=(1, 3))
