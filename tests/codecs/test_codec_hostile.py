"""A receiver decodes latents whose every field a peer's datagram headers chose: each codec's
decode raises CodecError, with a one-line reason, for anything it cannot decode, and nothing
else ever escapes."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsem.codecs import LatentFrame, get_codec
from netsem.codecs.base import MAX_IMAGE_PIXELS, CodecError
from netsem.pipeline.frames import received_frame
from packetizers.wire import Layout

torch.set_num_threads(2)
LATENT_CODECS = ["raw", "cnn-sem", "cnn-sem-impute", "swin", "swin-p0"]


def image(h=40, w=56):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def reassembled(enc: LatentFrame, **header) -> SimpleNamespace:
    """What the reassembler hands over for ``enc``'s datagrams, header fields overridden."""
    grid = enc.token_grid
    fields = dict(layout=enc.layout, grid_h=grid[0], grid_w=grid[1],
                  bit_width=enc.bit_width, signed=enc.signed, scale=enc.scale,
                  image_height=enc.image_size[0], image_width=enc.image_size[1],
                  codec_id=0, stream_id=0, importance=0, kb_version=0, frame_id=0)
    fields.update(header)
    return SimpleNamespace(header=SimpleNamespace(**fields), latent=enc.latent,
                           received=np.ones(enc.latent.shape, bool))


def refused(codec, encoded: LatentFrame, mask=None) -> str:
    with pytest.raises(CodecError) as info:
        codec.from_frame(encoded if mask is None else dataclasses.replace(encoded, received=mask))
    message = str(info.value)
    assert message and "\n" not in message
    return message


@pytest.mark.parametrize("name", ["swin", "swin-p0"])
@pytest.mark.parametrize("grid", [(0, 0), (0, 35), (35, 0), (5, 7), (7, 5)])
def test_a_swin_frame_with_a_missing_or_wrong_token_grid_is_refused(name, grid):
    codec = get_codec(name)
    enc = codec.to_frame(image())  # 3 x 4 tokens
    frame = reassembled(enc, grid_h=grid[0], grid_w=grid[1])
    try:
        encoded = received_frame(frame)  # a 0 x 0 grid arrives as "no grid"
    except CodecError:
        return  # the grid contradicts the token count: refused before the codec
    assert "token grid" in refused(codec, encoded)


@pytest.mark.parametrize("name", LATENT_CODECS)
def test_a_latent_that_does_not_fit_the_image_size_is_refused(name):
    codec = get_codec(name)
    enc = codec.to_frame(image())
    for size in [(40, 57), (80, 56), (17, 56), (1, 1), (4096, 4096)]:
        grid = (-(-size[0] // 16), -(-size[1] // 16)) if codec.layout == "nd" else (0, 0)
        if grid is not None and grid[0] * grid[1] != enc.latent.shape[0]:
            grid = enc.token_grid  # keep the grid consistent with the tokens: only the size lies
        lying = LatentFrame(enc.latent, enc.layout, enc.bit_width, enc.signed, enc.scale, size, grid)
        if lying.latent.shape == tuple(codec.latent_shape(*size)) and grid == enc.token_grid:
            continue  # the same latent geometry (40x57 pads to the same grid)
        refused(codec, lying)


@pytest.mark.parametrize("name", LATENT_CODECS)
@pytest.mark.parametrize("scale", [float("nan"), float("inf"), float("-inf"), 0.0, -0.03125])
def test_a_non_finite_or_non_positive_scale_is_refused(name, scale):
    codec = get_codec(name)
    enc = codec.to_frame(image())
    frame = reassembled(enc, scale=scale)
    assert "step" in refused(codec, received_frame(frame))


@pytest.mark.parametrize("name", LATENT_CODECS)
def test_bit_width_signedness_layout_size_and_values_are_checked(name):
    codec = get_codec(name)
    enc = codec.to_frame(image())

    def variant(**kw):
        fields = dict(latent=enc.latent, layout=enc.layout, bit_width=enc.bit_width, signed=enc.signed,
                      scale=enc.scale, image_size=enc.image_size, token_grid=enc.token_grid)
        fields.update(kw)
        return LatentFrame(**fields)

    refused(codec, variant(bit_width=enc.bit_width + 1))
    refused(codec, variant(signed=not enc.signed))
    refused(codec, variant(image_size=(0, 56)))
    refused(codec, variant(image_size=(MAX_IMAGE_PIXELS, 2)))
    lo, hi = enc.value_range
    big = enc.latent.astype(np.int16)
    big.flat[0] = hi + 1
    refused(codec, variant(latent=big))
    if codec.layout == "chw":
        refused(codec, variant(layout="nd", latent=enc.latent.reshape(enc.latent.shape[0], -1)))
    else:
        c = enc.latent.shape[1]
        refused(codec, variant(layout="chw", latent=enc.latent.T.reshape(c, *enc.token_grid), token_grid=(0, 0)))
    refused(codec, variant(), np.ones(enc.latent.shape, np.float32))  # a mask must be boolean


# header fields a peer may change, and what it may write in them: boundary values one field at
# a time (a 0 x 0 grid is how a swin frame once escaped as TypeError), then random pairs
EDGES = {
    "layout": [Layout.CHW, Layout.ND], "grid_h": [0, 1, 3, 4, 65535], "grid_w": [0, 1, 3, 4, 65535],
    "bit_width": [1, 5, 6, 7, 8, 16], "signed": [False, True],
    "scale": [float("nan"), float("inf"), float("-inf"), 0.0, -1.0, 1e-30, 1e30, 1 / 31],
    "image_height": [0, 1, 15, 16, 17, 40, 41, 65535], "image_width": [0, 1, 15, 16, 17, 56, 57, 65535],
}


def decode_with(name: str, size: tuple[int, int], changes: dict, loss: float = 0.0, seed: int = 0) -> None:
    """Decode a real frame's header with ``changes``: only CodecError may escape."""
    codec = get_codec(name)
    enc = codec.to_frame(image(*size))
    header = vars(reassembled(enc).header)
    header.update({k: v for k, v in changes.items() if k != "dims"})
    dims = changes.get("dims", enc.latent.shape)
    dims = dims[:2] if header["layout"] == Layout.ND else dims
    bits = header["bit_width"]
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if header["signed"] else (0, (1 << bits) - 1)
    rng = np.random.default_rng(seed)
    latent = enc.latent if tuple(dims) == enc.latent.shape else rng.integers(lo, hi + 1, dims)
    latent = np.clip(latent, lo, hi)  # the unpacker yields values of the header's bit width
    frame = SimpleNamespace(header=SimpleNamespace(**header), latent=latent, received=rng.random(dims) >= loss)
    try:
        out = codec.from_frame(received_frame(frame))
    except CodecError as error:
        assert str(error) and "\n" not in str(error)
        return
    assert out.shape == (header["image_height"], header["image_width"], 3) and out.dtype == np.uint8


@pytest.mark.parametrize("name", LATENT_CODECS)
@pytest.mark.parametrize("field", EDGES)
def test_each_header_field_at_its_edges_raises_nothing_but_codec_error(name, field):
    for value in EDGES[field]:
        decode_with(name, (40, 56), {field: value})


FIELDS = {
    "layout": st.sampled_from([Layout.CHW, Layout.ND]),
    "grid_h": st.integers(0, 12), "grid_w": st.integers(0, 12),
    "bit_width": st.integers(1, 16), "signed": st.booleans(),
    "scale": st.floats(allow_nan=True, allow_infinity=True, width=32),
    "image_height": st.integers(0, 200), "image_width": st.integers(0, 200),
    "dims": st.lists(st.integers(0, 70), min_size=2, max_size=3),
}
CHANGES = st.lists(st.one_of(*(st.tuples(st.just(k), v) for k, v in FIELDS.items())), min_size=1, max_size=2).map(dict)


@pytest.mark.parametrize("name", LATENT_CODECS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.tuples(st.integers(1, 120), st.integers(1, 120)), changes=CHANGES,
       loss=st.sampled_from([0.0, 0.3, 1.0]), seed=st.integers(0, 9))
def test_decoding_hostile_headers_raises_nothing_but_codec_error(name, size, changes, loss, seed):
    decode_with(name, size, changes, loss, seed)
