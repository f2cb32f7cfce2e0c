"""The seb codec: Seb indices out, KB lookup and f_TP in; what a receiver refuses and why."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from netsem.codecs.base import CodecError
from netsem.codecs.registry import codec_by_id, get_codec
from netsem.metrics import psnr_db
from netsem.seb.kb import FINE_CAPACITY
from netsem.seb.segment import pack_segment, parse_segment


def test_registered_and_coded_as_the_seed_says(seb_codec, seb_images):
    assert codec_by_id(16).name == "seb" and get_codec("seb").partitions == ("segment",)
    _, image = seb_images[0]
    encoded = seb_codec.encode(image, 1100)
    frame = encoded.frame
    regions = (128 // 32) ** 2
    assert encoded.fine_regions.sum() == int(np.ceil(0.2 * regions))  # top 20 % fine
    assert frame.kb_version == seb_codec.kb.version == 1
    # the fine regions are the most salient ones
    region_importance = encoded.patch_importance.reshape(4, 2, 4, 2).mean(axis=(1, 3))
    assert region_importance[encoded.fine_regions].min() >= region_importance[~encoded.fine_regions].max()
    # class 1 = the most salient half, in its own segments, first
    parsed = [parse_segment(s, regions, seb_codec.kb.groups) for s in frame.segments]
    important = np.zeros(regions, bool)
    for seg in parsed:
        important[seg.regions] = seg.klass == 1
    assert important.sum() == regions // 2
    assert list(frame.segment_importance) == [seg.klass for seg in parsed]
    decoded = seb_codec.from_frame(frame)
    assert decoded.shape == image.shape and decoded.dtype == np.uint8


def test_uep_modes_change_protection_not_source(seb_images):
    from netsem.seb.codec import SebCodec

    _, image = seb_images[2]
    frames = {mode: SebCodec(uep=mode).encode(image, 1100) for mode in ("saliency", "random", "none")}
    assert set(frames["none"].frame.segment_importance) == {0}
    assert np.array_equal(frames["saliency"].fine_index, frames["random"].fine_index)
    decoded = {mode: SebCodec(uep=mode).from_frame(e.frame) for mode, e in frames.items()}
    assert np.array_equal(decoded["saliency"], decoded["random"]) and np.array_equal(decoded["random"], decoded["none"])


def test_lost_segments_are_concealed_not_fatal(seb_codec, seb_images):
    _, image = seb_images[1]
    frame = seb_codec.encode(image, 100).frame  # small segments: several per image
    assert len(frame.segments) >= 3
    whole = psnr_db(image, seb_codec.from_frame(frame))
    half = dataclasses.replace(frame, segments=tuple(s if k % 2 else None for k, s in enumerate(frame.segments)))
    nothing = dataclasses.replace(frame, segments=(None,) * len(frame.segments))
    assert whole > psnr_db(image, seb_codec.from_frame(half)) > psnr_db(image, seb_codec.from_frame(nothing)) - 1


def test_receiver_refuses_other_kb_versions_and_unknown_sebs(seb_codec, seb_images):
    _, image = seb_images[0]
    frame = seb_codec.encode(image, 1100).frame
    with pytest.raises(CodecError, match="KB version 7, this receiver holds version 1"):
        seb_codec.from_frame(dataclasses.replace(frame, kb_version=7))
    # a segment naming a free slot of the KB (192 of 256 fine slots are used)
    regions = 16
    seg = parse_segment(frame.segments[0], regions, seb_codec.kb.groups)
    free = int(np.flatnonzero(~seb_codec.kb.fine.active[0])[0])
    assert free < FINE_CAPACITY
    fi = seg.fine_index.copy()
    if len(fi) == 0:
        pytest.skip("first segment holds no fine region")
    fi[0, 0, 0] = free
    forged = pack_segment(seg.klass, regions, seg.regions, seg.fine, fi, seg.coarse_index)
    with pytest.raises(CodecError, match=f"fine Seb {free} of slice 0 is not in KB version 1"):
        seb_codec.from_frame(dataclasses.replace(frame, segments=(forged,) + frame.segments[1:]))
    with pytest.raises(CodecError, match="repeats a region"):
        seb_codec.from_frame(dataclasses.replace(frame, segments=(frame.segments[0],) * len(frame.segments)))
    with pytest.raises(CodecError, match="segment 0"):
        seb_codec.from_frame(dataclasses.replace(frame, segments=(b"\x05",) + frame.segments[1:]))


def test_tiled_synthesis_equals_whole(seb_codec, monkeypatch):
    """Large maps are decoded in tiles (bounded memory for a peer's huge image size): the same
    pixels but for float rounding (a convolution over another extent may round differently)."""
    import netsem.seb.codec as module

    features = np.random.default_rng(0).normal(0, 1, (seb_codec.model.config.dim, 12, 20)).astype(np.float32)
    whole = seb_codec.synthesise(features)
    monkeypatch.setattr(module, "TILE_FEATURES", 5)
    diff = np.abs(seb_codec.synthesise(features).astype(int) - whole)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
