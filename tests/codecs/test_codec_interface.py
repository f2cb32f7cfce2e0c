"""Shapes, dtypes, bit widths and the erasure model of every registered latent codec."""

from __future__ import annotations

import numpy as np
import pytest

from netsem.codecs import LatentFrame, codec_by_id, codec_id_of, codec_names, get_codec
from netsem.codecs.base import CodecError
from netsem.codecs.registry import ENTROPY_CODED
from packetizers.frames import FrameError

NAMES = [name for name in codec_names()  # the latent codecs (byte streams cut into segments aside)
         if "segment" not in get_codec(name).partitions and name not in ENTROPY_CODED]


def image(h=40, w=56, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 4, y * 5, (x + y) * 2], axis=2) % 256
    return np.clip(base + rng.integers(-20, 20, (h, w, 3)), 0, 255).astype(np.uint8)


def test_registry_lists_the_issue_codecs_with_unique_ids():
    assert {"raw", "cnn", "cnn-sem", "swin", "deepjscc"} <= set(NAMES)
    ids = [codec_id_of(get_codec(n)) for n in codec_names()]
    assert len(set(ids)) == len(ids)
    for n in codec_names():
        assert codec_by_id(codec_id_of(get_codec(n))).name == n
    with pytest.raises(CodecError):
        codec_by_id(65535)
    with pytest.raises(CodecError):
        get_codec("no-such-codec")


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_and_bit_width(name):
    codec = get_codec(name)
    img = image()
    enc = codec.to_frame(img)
    assert isinstance(enc, LatentFrame)
    assert enc.layout.name.lower() == codec.layout
    assert enc.image_size == (40, 56)
    assert np.issubdtype(enc.latent.dtype, np.integer)
    lo, hi = enc.value_range
    assert enc.latent.min() >= lo and enc.latent.max() <= hi
    if codec.layout == "chw":
        assert enc.latent.ndim == 3 and enc.token_grid == (0, 0)
    else:
        gh, gw = enc.token_grid
        assert enc.latent.shape[0] == gh * gw and enc.latent.ndim == 2
    assert enc.latent.shape == tuple(codec.latent_shape(40, 56))
    out = codec.from_frame(enc.with_received(np.ones(enc.latent.shape, bool)))
    assert out.shape == img.shape and out.dtype == np.uint8


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("raw", "deepjscc")])  # the networks of models.py
def test_full_mask_decode_equals_decode_of_quantized_latent(name):
    codec = get_codec(name)
    enc = codec.to_frame(image(seed=1))
    q = enc.latent.astype(np.float32)
    if codec.layout == "nd":
        gh, gw = enc.token_grid
        q = q.reshape(gh, gw, -1).transpose(2, 0, 1)
    y = np.ascontiguousarray(q.transpose(1, 2, 0)) * np.float32(enc.scale * codec.config.amplitude)
    rt = codec.runtime
    ref = rt.decode_map(rt.decoder_input(y, np.ones(y.shape, bool) if codec.config.needs_mask else None))
    ref = np.round(np.clip(ref[:40, :56], 0, 1) * np.float32(255)).astype(np.uint8)
    np.testing.assert_array_equal(codec.from_frame(enc.with_received(np.ones(enc.latent.shape, bool))), ref)
    np.testing.assert_array_equal(codec.from_frame(enc), ref)


@pytest.mark.parametrize("name", ["cnn-sem", "swin", "raw"])
def test_missing_elements_are_erased_whatever_arrived_in_them(name):
    codec = get_codec(name)
    enc = codec.to_frame(image(seed=2))
    rng = np.random.default_rng(0)
    mask = rng.random(enc.latent.shape) > 0.3
    junk = np.where(mask, enc.latent, rng.integers(*enc.value_range, enc.latent.shape))
    zeroed = np.where(mask, enc.latent, 0).astype(enc.latent.dtype)
    a = codec.from_frame(LatentFrame(junk.astype(enc.latent.dtype), enc.layout, enc.bit_width,
                                   enc.signed, enc.scale, enc.image_size, enc.token_grid).with_received(mask))
    b = codec.from_frame(LatentFrame(zeroed, enc.layout, enc.bit_width, enc.signed, enc.scale,
                                   enc.image_size, enc.token_grid).with_received(mask))
    np.testing.assert_array_equal(a, b)
    if name != "raw":
        assert not np.array_equal(a, codec.from_frame(enc))


def test_wrong_mask_shape_and_bad_images_are_refused():
    codec = get_codec("cnn")
    enc = codec.to_frame(image())
    with pytest.raises(FrameError):
        codec.from_frame(enc.with_received(np.ones((1, 2, 3), bool)))
    with pytest.raises(CodecError):
        codec.to_frame(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(CodecError):
        codec.to_frame(np.zeros((8, 8, 5), np.uint8))


def test_odd_sizes_are_padded_inside_and_cropped_back():
    codec = get_codec("cnn-sem")
    for h, w in [(17, 33), (1, 1), (64, 48)]:
        enc = codec.to_frame(image(h, w))
        assert enc.latent.shape == (codec.config.latent_channels, -(-h // 16), -(-w // 16))
        assert codec.from_frame(enc).shape == (h, w, 3)


def test_learned_codec_reconstructs_a_photo():
    import skimage.data

    img = skimage.data.chelsea()[:128, :192]
    codec = get_codec("cnn-sem")
    out = codec.from_frame(codec.to_frame(img))
    mse = np.mean((out.astype(float) - img) ** 2)
    assert 10 * np.log10(255**2 / mse) > 24  # trained weights, not noise


def test_raw_is_lossless_and_conceals_a_lost_channel():
    codec = get_codec("raw")
    img = image(37, 53)
    enc = codec.to_frame(img)
    assert enc.latent.shape == (48, 10, 14) and enc.bit_width == 8 and not enc.signed
    np.testing.assert_array_equal(codec.from_frame(enc), img)
    mask = np.ones(enc.latent.shape, bool)
    mask[5] = False  # red, phase (dy, dx) = (1, 1)
    out = codec.from_frame(enc.with_received(mask))
    lost = np.zeros(img.shape, bool)
    lost[1::4, 1::4, 0] = True
    np.testing.assert_array_equal(out[~lost], img[~lost])
    assert np.abs(out[lost].astype(int) - img[lost]).mean() < 20
