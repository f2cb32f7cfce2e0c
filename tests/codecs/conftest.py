"""Fixtures of the codec tests."""

import pytest
import skimage.data
from PIL import Image


@pytest.fixture(scope="module")
def small_photo(tmp_path_factory) -> str:
    """A 256x192 piece of scikit-image's coffee as a PNG file: what `--bpp` does to a photograph, at a
    quarter of the work (it encodes and decodes several codecs)."""
    path = tmp_path_factory.mktemp("photo") / "coffee-256x192.png"
    Image.fromarray(skimage.data.coffee()[100:292, 150:406]).save(path)
    return str(path)
