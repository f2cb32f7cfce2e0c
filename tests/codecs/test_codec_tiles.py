"""`webp` and `jpeg2000-tiles`: tiles that each decode alone, sized to the datagram, lost ones
concealed, hostile ones refused or concealed."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from netsem.codecs import get_codec, jpeg2000_tiles, webp
from netsem.codecs.base import CodecError
from netsem.metrics import psnr_db
from netsem.pipeline.frames import payload_budget

MODULES = {"webp": webp, "jpeg2000-tiles": jpeg2000_tiles}
TILED = pytest.mark.parametrize("name", list(MODULES))


def photo():
    return np.ascontiguousarray(skimage.data.chelsea()[:150, :210])  # edge tiles smaller


@TILED
def test_every_tile_fits_the_datagram_the_next_larger_side_would_not_and_the_image_comes_back(name):
    budget = payload_budget(1200)
    frame = get_codec(name, quality=60).to_frame(photo(), budget)
    quality, side = frame.codec_params
    sides = type(get_codec(name)).tile_sides
    assert quality == 60 and side in sides
    assert max(map(len, frame.segments)) <= budget
    if side != sides[0]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(type(get_codec(name)), "tile_sides", (sides[sides.index(side) - 1],))
            assert max(map(len, get_codec(name, quality=60).to_frame(photo(), budget).segments)) > budget
    assert len(frame.segments) == -(-150 // side) * -(-210 // side)
    assert psnr_db(photo(), get_codec(name).from_frame(frame)) > 28


@TILED
def test_a_lost_tile_is_concealed_from_its_neighbours_and_the_rest_is_untouched(name):
    codec = get_codec(name, quality=75)
    frame = codec.to_frame(photo(), 500)  # small tiles: one with neighbours on all four sides
    side = frame.codec_params[1]
    cols = -(-210 // side)
    whole = codec.from_frame(frame)
    index = cols + 1
    lost = dataclasses.replace(frame, segments=tuple(None if i == index else s for i, s in enumerate(frame.segments)))
    out = codec.from_frame(lost)
    hole = (slice(side, 2 * side), slice(side, 2 * side))
    keep = np.ones(photo().shape[:2], dtype=bool)
    keep[hole] = False
    np.testing.assert_array_equal(out[keep], whole[keep])
    gray = whole.copy()
    gray[hole] = 128
    assert psnr_db(photo()[hole], out[hole]) > psnr_db(photo()[hole], gray[hole]) + 3


@TILED
def test_nothing_received_is_mid_gray(name):
    codec = get_codec(name)
    frame = codec.to_frame(photo(), payload_budget(1200))
    assert (codec.from_frame(dataclasses.replace(frame, segments=(None,) * len(frame.segments))) == 128).all()


@TILED
def test_a_frame_that_does_not_tile_or_names_another_side_is_refused(name):
    codec = get_codec(name)
    frame = codec.to_frame(photo(), payload_budget(1200))
    for params in ((75, 48), (75, 0)):
        with pytest.raises(CodecError):
            codec.from_frame(dataclasses.replace(frame, codec_params=params))
    with pytest.raises(CodecError):
        codec.from_frame(dataclasses.replace(frame, segments=frame.segments[:-1]))
    with pytest.raises(CodecError):
        get_codec(name, quality=0)


def test_a_webp_tile_of_another_size_or_not_webp_is_concealed():
    codec = get_codec("webp")
    frame = codec.to_frame(photo(), payload_budget(1200))
    big = io.BytesIO()
    Image.fromarray(np.zeros((300, 300, 3), np.uint8)).save(big, format="WEBP")
    for bad in (big.getvalue(), b"RIFF\xff\xff\xff\x7fWEBPVP8 " + bytes(64), b"\x00"):
        out = codec.from_frame(dataclasses.replace(frame, segments=(bad, *frame.segments[1:])))
        assert out.shape == photo().shape


def test_a_jpeg2000_tile_part_that_names_another_tile_is_treated_as_lost():
    codec = get_codec("jpeg2000-tiles")
    frame = codec.to_frame(photo(), payload_budget(1200))
    segments = list(frame.segments)
    lost_first = codec.from_frame(dataclasses.replace(frame, segments=(None, *segments[1:])))
    for bad in (segments[1], segments[0][:-1], b"\xff\x90" + bytes(20), b"\x00"):  # tile 1's, one short, junk
        out = codec.from_frame(dataclasses.replace(frame, segments=(bad, *segments[1:])))
        np.testing.assert_array_equal(out, lost_first)


@pytest.mark.parametrize("size, side", [((150, 210), 64), ((512, 768), 32), ((1000, 37), 128), ((31, 17), 32)])
def test_the_jpeg2000_main_header_the_receiver_writes_is_the_senders(size, side):
    codestream = jpeg2000_tiles._encode(np.zeros((*size, 3), np.uint8), side, 30.0)
    assert jpeg2000_tiles._main_header(*size, side) == codestream[: codestream.find(jpeg2000_tiles.SOT)]
