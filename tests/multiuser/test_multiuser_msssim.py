"""MS-SSIM: one scale is scikit-image's Gaussian SSIM (to 1e-12); 1 for identical images;
falls as noise grows; scales and window chosen from the image size."""

import numpy as np
import skimage.data
from skimage.metrics import structural_similarity

from netsem.multiuser.msssim import ms_ssim, scales_for, window_for


def noisy(image, sigma, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def test_one_scale_is_gaussian_ssim():
    a = skimage.data.astronaut()[:96, :128]
    b = noisy(a, 25)
    ref = structural_similarity(a, b, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=255)
    assert abs(ms_ssim(a, b, scales=1) - ref) < 1e-12


def test_identity_and_monotone():
    a = skimage.data.coffee()[:200, :200]
    assert ms_ssim(a, a) == 1.0
    values = [ms_ssim(a, noisy(a, s)) for s in (5, 15, 40)]
    assert values[0] > values[1] > values[2]
    small = a[:32, :32]
    batch = ms_ssim(np.stack([small, small]), np.stack([small, noisy(small, 20)]))
    assert batch.shape == (2,) and batch[0] == 1.0 and batch[1] < 1.0


def test_scales():
    assert (scales_for(32), window_for(32, 3)) == (3, 7)
    assert (scales_for(256), window_for(256, 5)) == (5, 11)
    assert scales_for(176) == 5
