"""`webp`: tiles that each decode alone, sized to the datagram, lost ones concealed, hostile
ones refused or concealed."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from netsem.codecs import get_codec
from netsem.codecs.base import CodecError
from netsem.codecs.webp import TILE_SIDES
from netsem.metrics import psnr_db
from netsem.pipeline.frames import payload_budget


def photo():
    return np.ascontiguousarray(skimage.data.chelsea()[:150, :210])  # edge tiles smaller


def test_every_tile_fits_the_datagram_and_the_whole_image_comes_back():
    codec = get_codec("webp", quality=75)
    budget = payload_budget(1200)
    frame = codec.to_frame(photo(), budget)
    quality, side = frame.codec_params
    assert quality == 75 and side in TILE_SIDES
    assert max(map(len, frame.segments)) <= budget
    if side != TILE_SIDES[0]:  # the next larger side would not have fitted
        larger = TILE_SIDES[TILE_SIDES.index(side) - 1]
        tiles = [photo()[y : y + larger, x : x + larger] for y in range(0, 150, larger) for x in range(0, 210, larger)]
        sizes = []
        for tile in tiles:
            buffer = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(tile)).save(buffer, format="WEBP", quality=75, method=4)
            sizes.append(len(buffer.getvalue()))
        assert max(sizes) > budget
    assert len(frame.segments) == -(-150 // side) * -(-210 // side)
    assert psnr_db(photo(), codec.from_frame(frame)) > 30


def test_a_lost_tile_is_concealed_from_its_neighbours_and_the_rest_is_untouched():
    codec = get_codec("webp", quality=75)
    frame = codec.to_frame(photo(), payload_budget(1200))
    side = frame.codec_params[1]
    cols = -(-210 // side)
    whole = codec.from_frame(frame)
    index = cols + 1  # an inner tile: neighbours on all four sides
    lost = dataclasses.replace(frame, segments=tuple(None if i == index else s for i, s in enumerate(frame.segments)))
    out = codec.from_frame(lost)
    hole = (slice(side, 2 * side), slice(side, 2 * side))
    keep = np.ones(photo().shape[:2], dtype=bool)
    keep[hole] = False
    np.testing.assert_array_equal(out[keep], whole[keep])
    gray = whole.copy()
    gray[hole] = 128
    assert psnr_db(photo()[hole], out[hole]) > psnr_db(photo()[hole], gray[hole]) + 3


def test_nothing_received_is_mid_gray():
    codec = get_codec("webp")
    frame = codec.to_frame(photo(), payload_budget(1200))
    out = codec.from_frame(dataclasses.replace(frame, segments=(None,) * len(frame.segments)))
    assert (out == 128).all()


def test_a_tile_of_another_size_or_not_webp_is_concealed_and_a_frame_that_does_not_tile_is_refused():
    codec = get_codec("webp")
    frame = codec.to_frame(photo(), payload_budget(1200))
    big = io.BytesIO()
    Image.fromarray(np.zeros((300, 300, 3), np.uint8)).save(big, format="WEBP")
    for bad in (big.getvalue(), b"RIFF\xff\xff\xff\x7fWEBPVP8 " + bytes(64), b"\x00"):
        segments = (bad, *frame.segments[1:])
        out = codec.from_frame(dataclasses.replace(frame, segments=segments))
        assert out.shape == photo().shape
    for params in ((75, 48), (75, 0)):
        with pytest.raises(CodecError):
            codec.from_frame(dataclasses.replace(frame, codec_params=params))
    with pytest.raises(CodecError):
        codec.from_frame(dataclasses.replace(frame, segments=frame.segments[:-1]))
    with pytest.raises(CodecError):
        get_codec("webp", quality=0)
