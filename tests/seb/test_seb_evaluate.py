"""The evaluation's own pieces: the important-half mask and the equal-channel-use rate."""

from __future__ import annotations

import numpy as np
import pytest

from netsem.seb.evaluate import MAX_RATE, _rate_for, important_mask


def test_important_mask_is_the_salient_half_of_the_regions(seb_images):
    _, image = seb_images[0]
    mask = important_mask(image)
    assert mask.shape == image.shape[:2]
    assert mask.mean() == pytest.approx(0.5)
    # whole 32x32 regions
    blocks = mask.reshape(4, 32, 4, 32)
    assert (blocks.all(axis=(1, 3)) | (~blocks).all(axis=(1, 3))).all()


def test_equal_channel_use_rate_and_its_ceiling():
    datagrams = [b"x" * 1000]
    assert _rate_for(datagrams, 8000) == pytest.approx(0.5)  # 8000 bits over 2 x 8000 coded bits
    assert _rate_for(datagrams, 100) == MAX_RATE  # too many bits for the uses: the ceiling, more uses
    assert _rate_for(datagrams, 10**6) == 0.2  # the 5G floor
    assert np.isfinite(MAX_RATE) and MAX_RATE < 948 / 1024
