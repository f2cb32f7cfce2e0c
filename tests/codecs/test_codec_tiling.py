"""Large images: tiled inference of the learned codecs equals the untiled computation, small
images are not tiled, and the metrics equal scikit-image's in bounded memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from netsem.codecs.learned import TILE_ABOVE_PIXELS, LearnedCodec, tile_spans
from netsem.codecs.registry import LEARNED
from netsem.metrics import psnr_db, ssim

torch.set_num_threads(2)


def codec(name: str, **options) -> LearnedCodec:
    s = LEARNED[name]
    return LearnedCodec(s.name, s.weights, s.description, **options)


def photo(width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(skimage.data.astronaut()).resize((width, height), Image.LANCZOS))


@pytest.mark.parametrize("length,size,halo,align,wraps", [
    (47, 8, 2, 1, False), (188, 32, 3, 1, False), (5, 32, 2, 1, False),
    (63, 8, 16, 8, True), (188, 32, 16, 8, True), (250, 24, 8, 8, True), (12, 32, 16, 8, True),
])
def test_tiles_keep_every_position_once_with_aligned_context(length, size, halo, align, wraps):
    spans = tile_spans(length, size, halo, align, wraps)
    kept = np.concatenate([np.arange(s.kept.start, s.kept.stop) for s in spans])
    np.testing.assert_array_equal(kept, np.arange(length))
    halo = -(-halo // align) * align
    for s in spans:
        ctx = s.context
        assert np.all(np.diff(ctx) > 0) and ctx[0] >= 0 and ctx[-1] < length
        np.testing.assert_array_equal(ctx[s.kept_in_context], np.arange(s.kept.start, s.kept.stop))
        # every piece of context starts on the network's grid, or is the whole map's end
        starts = ctx[np.r_[0, np.flatnonzero(np.diff(ctx) > 1) + 1]]
        assert np.all(starts % align == 0)
        near = np.arange(max(0, s.kept.start - halo), min(length, s.kept.stop + halo))
        assert np.isin(near, ctx).all()
        if wraps and 0 in ctx and length - 1 not in ctx:
            pytest.fail("a tile at one end must see the other")
        if wraps and ctx[0] == 0 and ctx[-1] == length - 1 and len(ctx) < length:
            # wrapped: the far end's context is at least the halo
            gap = np.flatnonzero(np.diff(ctx) > 1)
            assert len(gap) == 1
            assert min(gap[0] + 1, len(ctx) - gap[0] - 1) >= min(halo, length)


def test_small_images_are_not_tiled_and_large_ones_are():
    c = codec("cnn-sem")
    assert len(c._tiles(c.latent_grid(512, 768), 2)) == 1
    side = int(np.sqrt(TILE_ABOVE_PIXELS)) + 16
    assert len(c._tiles(c.latent_grid(side, side), 2)) > 1


@pytest.mark.parametrize("name,engine", [("cnn-sem", "auto"), ("cnn-sem-impute", "auto"), ("cnn-sem-masked", "auto"),
                                         ("swin", "auto"), ("cnn-sem", "numpy"), ("cnn-sem-impute", "numpy"),
                                         ("cnn-sem-impute-q4", "auto"), ("cnn-sem-impute-q4", "numpy")])
def test_tiled_encode_and_decode_equal_the_untiled_ones(name, engine):
    # 640x448 with tiles of 8 latent positions (128 pixels): seams everywhere, and for swin
    # tiles touching one border only, whose shifted windows wrap to the other.  Under "auto" a
    # cnn's whole image runs in numpy and its tiles in torch; "numpy" runs the tiles in numpy's
    # worker threads. q4 is 8x down: the same halos in latent positions (see CNNNet).
    img = photo(640, 448)
    whole = codec(name, tile_above_pixels=1 << 40, engine=engine)
    tiled = codec(name, tile_above_pixels=0, tile_latents=8, engine=engine)
    assert len(tiled._tiles(tiled.latent_grid(448, 640), 2)) > 4
    enc, enc_tiled = whole.to_frame(img), tiled.to_frame(img)
    # float rounding may move a value across a rounding boundary, very rarely
    assert np.mean(enc.latent != enc_tiled.latent) < 1e-3
    assert np.abs(enc.latent.astype(int) - enc_tiled.latent).max() <= 1
    # half of the channels lost in the top rows only: each tile receives a different share,
    # while the rescale counts the received elements over the whole map
    c, gh, gw = whole.config.latent_channels, *whole.latent_grid(448, 640)
    lossy = np.ones((c, gh, gw), bool)
    lossy[::2, : gh // 3] = False
    if whole.layout == "nd":
        lossy = lossy.transpose(1, 2, 0).reshape(gh * gw, c)
    for mask in (None, lossy):
        a, b = whole.from_frame(enc.with_received(mask)), tiled.from_frame(enc.with_received(mask))
        assert np.abs(a.astype(int) - b).max() <= 1
        assert np.mean(a != b) < 1e-4
        assert abs(psnr_db(img, a) - psnr_db(img, b)) < 1e-3


def hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise KeyError("VmHWM")


def test_a_large_image_is_coded_in_bounded_memory():
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (Linux)
        before = hwm_mb()
    except OSError:
        pytest.skip("needs /proc/self/clear_refs")
    c = codec("cnn-sem")
    img = photo(2048, 1536)  # 3.1 Mpixel: the untiled codec peaked at 1.6 GB over its baseline
    out = c.from_frame(c.to_frame(img))
    assert hwm_mb() - before < 800
    assert psnr_db(img, out) > 30


@pytest.mark.parametrize("shape", [(512, 512, 3), (300, 451, 3), (7, 7, 3), (9, 200, 3), (1100, 13, 3)])
def test_metrics_equal_skimage(shape):
    rng = np.random.default_rng(shape[0])
    ref = np.asarray(Image.fromarray(skimage.data.coffee()).resize(shape[1::-1]))
    noisy = np.clip(ref + rng.normal(0, 12, shape), 0, 255).astype(np.uint8)
    for other in (noisy, np.zeros_like(ref), rng.integers(0, 256, shape, dtype=np.uint8)):
        assert psnr_db(ref, other) == peak_signal_noise_ratio(ref, other, data_range=255)
        want = structural_similarity(ref, other, channel_axis=2, data_range=255)
        assert abs(ssim(ref, other) - want) < 1e-9
    assert psnr_db(ref, ref) == float("inf") and abs(ssim(ref, ref) - 1.0) < 1e-12


def test_metrics_refuse_what_skimage_refuses():
    a = np.zeros((6, 40, 3), np.uint8)
    with pytest.raises(ValueError):
        ssim(a, a)
    with pytest.raises(ValueError):
        psnr_db(a, np.zeros((6, 41, 3), np.uint8))
