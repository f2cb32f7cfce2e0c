"""Image quality metrics on 8-bit RGB, with scikit-image's definitions.

The one place netsem measures image quality (sessions, sweeps, `evaluate`, the PHY
baseline; identical images are inf dB everywhere). `psnr_db` is skimage's
peak_signal_noise_ratio (data_range 255) and `ssim` its
structural_similarity (channel_axis=2, data_range 255: a 7x7 uniform window, sample
covariance, K1 = 0.01, K2 = 0.03, the mean over windows lying wholly inside the image, i.e.
the map cropped by (7 - 1) // 2, averaged over channels).  skimage makes about a dozen full-size
float64 copies (1.5 GB and 8 s for a 12-megapixel photograph); here the image is taken in
horizontal bands and the window sums are exact integer sums, so memory stays at a few tens of
MB whatever the size, and the values agree with skimage's to ~1e-14 (PSNR: bit for bit).
"""

from __future__ import annotations

import numpy as np

WIN = 7  # skimage's window for gaussian_weights=False
K1, K2, DATA_RANGE = 0.01, 0.03, 255.0
# Rows per band.  A 4000-pixel-wide band's int64 and float64 temporaries then take ~1 MB each
# and stay in cache: SSIM of a 12-Mpixel image took 2.0 s with 32, 2.3 s with 64 and 5 s with
# 512 (6 rows of each band are read twice).
BAND = 32


def psnr_db(reference: np.ndarray, image: np.ndarray) -> float:
    """PSNR in dB of two uint8 images of the same shape (inf when they are identical)."""
    reference, image = _same_shape(reference, image)
    sse = 0
    for start in range(0, reference.shape[0], BAND):
        d = reference[start : start + BAND].astype(np.int32) - image[start : start + BAND]
        sse += int(np.square(d).sum(dtype=np.int64))
    if sse == 0:
        return float("inf")
    # skimage's float64 mean of the squared errors is this exact integer sum divided by n
    mse = sse / reference.size
    return float(10 * np.log10(DATA_RANGE**2 / mse))


def psnr_from_mse(mse: float, peak: float = 1.0) -> float:
    """PSNR in dB of a mean squared error on values in [0, peak] (training logs); inf at 0."""
    return float("inf") if mse <= 0 else float(10 * np.log10(peak**2 / mse))


def ssim(reference: np.ndarray, image: np.ndarray) -> float:
    """Mean SSIM of two (H, W, C) uint8 images, H and W >= 7 (skimage's definition)."""
    reference, image = _same_shape(reference, image)
    if reference.ndim != 3:
        raise ValueError(f"expected (H, W, C) images, got shape {reference.shape}")
    h, w, channels = reference.shape
    if h < WIN or w < WIN:
        raise ValueError(f"SSIM needs images of at least {WIN}x{WIN} pixels, got {h}x{w}")
    windows = h - WIN + 1  # window positions down the image (each band: up to BAND of them)
    means = []
    for ch in range(channels):
        total = 0.0
        for top in range(0, windows, BAND):
            rows = slice(top, min(windows, top + BAND) + WIN - 1)
            total += float(_ssim_map(reference[rows, :, ch], image[rows, :, ch]).sum())
        means.append(total / (windows * (w - WIN + 1)))
    return float(np.mean(means))


def _ssim_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """SSIM of every 7x7 window lying inside two (R, W) uint8 bands: (R - 6, W - 6)."""
    x, y = x.astype(np.int64), y.astype(np.int64)
    n = WIN * WIN
    ux, uy = _window_sums(x) / n, _window_sums(y) / n
    uxx, uyy, uxy = _window_sums(x * x) / n, _window_sums(y * y) / n, _window_sums(x * y) / n
    cov_norm = n / (n - 1)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    a1 = 2 * ux * uy + c1
    a2 = 2 * vxy + c2
    b1 = ux**2 + uy**2 + c1
    b2 = vx + vy + c2
    return (a1 * a2) / (b1 * b2)


def _window_sums(a: np.ndarray) -> np.ndarray:
    """Exact sums of an (R, W) int64 array over its 7x7 windows: (R - 6, W - 6)."""
    c = np.zeros((a.shape[0] + 1, a.shape[1]), np.int64)
    np.cumsum(a, axis=0, out=c[1:])
    v = c[WIN:] - c[:-WIN]
    c = np.zeros((v.shape[0], v.shape[1] + 1), np.int64)
    np.cumsum(v, axis=1, out=c[:, 1:])
    return c[:, WIN:] - c[:, :-WIN]


def _same_shape(reference: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    reference, image = np.asarray(reference), np.asarray(image)
    if reference.shape != image.shape:
        raise ValueError(f"images differ in shape: {reference.shape} and {image.shape}")
    return reference, image
