"""MS-SSIM (Wang, Simoncelli, Bovik 2003), our perceptual metric: LPIPS and the seed's VGG
perceptual loss need pretrained weights that cannot be had offline here.

    MS-SSIM = SSIM_M^{w_M} x prod_{j=1..M-1} cs_j^{w_j}

with SSIM's contrast-structure term cs (and at the coarsest scale the whole SSIM, luminance
included, as Wang's reference code does; K1 = 0.01, K2 = 0.03, data range 255, Gaussian window
sigma = 1.5) averaged over the window positions inside the image at each scale, 2x2 average pooling between scales, the standard weights (0.0448, 0.2856, 0.3001,
0.2363, 0.1333), computed per colour channel and averaged; negative cs or l values count as 0
(as pytorch-msssim does). On images of at least 176 pixels this is the standard 5-scale,
11x11-window MS-SSIM. A 32x32 image cannot hold five scales of 11x11 windows, so smaller
images use as many scales as keep the coarsest at least 8 pixels (32x32: three scales, 32 /
16 / 8), the window shrunk to the largest odd size that fits the coarsest scale (7x7, sigma
still 1.5), and the first M weights renormalised to sum to 1. Numbers on 32x32 images are
therefore comparable among themselves, not with MS-SSIM values quoted for large images.
With one scale it is SSIM with a Gaussian window (tested against scikit-image's).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate1d

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SIGMA = 1.5
WINDOW = 11
MIN_COARSEST = 8
K1, K2, DATA_RANGE = 0.01, 0.03, 255.0


def scales_for(side: int) -> int:
    """Scales used for an image whose shorter side is `side` pixels."""
    scales = 1
    while scales < len(WEIGHTS) and side // 2**scales >= MIN_COARSEST:
        scales += 1
    return scales


def window_for(side: int, scales: int) -> int:
    coarsest = side // 2 ** (scales - 1)
    size = min(WINDOW, coarsest)
    return size if size % 2 else size - 1


def gaussian(size: int, sigma: float = SIGMA) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Gaussian-weighted means over every window lying inside the image (last two axes)."""
    r = len(g) // 2
    out = correlate1d(a, g, axis=-2, mode="constant")[..., r : a.shape[-2] - r, :]
    return correlate1d(out, g, axis=-1, mode="constant")[..., r : a.shape[-1] - r]


def _terms(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean SSIM and mean contrast-structure term per leading index: (...,) each."""
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    mx, my = _filter_valid(x, g), _filter_valid(y, g)
    vx = _filter_valid(x * x, g) - mx * mx
    vy = _filter_valid(y * y, g) - my * my
    cxy = _filter_valid(x * y, g) - mx * my
    luminance = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    cs = (2 * cxy + c2) / (vx + vy + c2)
    return (luminance * cs).mean(axis=(-2, -1)), cs.mean(axis=(-2, -1))


def _halve(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[-2] // 2 * 2, a.shape[-1] // 2 * 2
    a = a[..., :h, :w]
    return 0.25 * (a[..., 0::2, 0::2] + a[..., 1::2, 0::2] + a[..., 0::2, 1::2] + a[..., 1::2, 1::2])


def ms_ssim(reference: np.ndarray, images: np.ndarray, scales: int | None = None) -> np.ndarray:
    """MS-SSIM of each image against its reference: (N, H, W, 3) or (H, W, 3) uint8 -> (N,) or a float."""
    single = np.asarray(reference).ndim == 3
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(images, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {x.shape} and {y.shape}")
    if single:
        x, y = x[None], y[None]
    x, y = np.moveaxis(x, -1, 1), np.moveaxis(y, -1, 1)  # (N, C, H, W)
    side = min(x.shape[-2:])
    scales = scales or scales_for(side)
    size = window_for(side, scales)
    if size < 3:
        raise ValueError(f"MS-SSIM needs images of at least {2 ** (scales - 1) * 3} pixels for {scales} scales")
    g = gaussian(size)
    weights = np.asarray(WEIGHTS[:scales]) / np.sum(WEIGHTS[:scales])
    value = np.ones(x.shape[:2])
    for j in range(scales):
        whole, cs = _terms(x, y, g)
        if j == scales - 1:
            value *= np.maximum(whole, 0.0) ** weights[j]
        else:
            value *= np.maximum(cs, 0.0) ** weights[j]
            x, y = _halve(x), _halve(y)
    result = value.mean(axis=1)
    return float(result[0]) if single else result
