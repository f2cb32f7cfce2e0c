"""Encoder-side latent refinement (`--refine`): a better latent for the unchanged decoder, never
worse than the analysis's own by the measure it optimises, decoded by any receiver."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import skimage.data

from netsem.codecs.base import CodecError
from netsem.codecs.learned import LearnedCodec
from netsem.codecs.refine import reporting_progress
from netsem.codecs.registry import LEARNED, get_codec, refinable
from netsem.metrics import psnr_db
from netsem.pipeline.frames import load_codec, payload_budget
from packetizers.packetizer import Packetizer
from packetizers.wire import PartitionKind

CROP = skimage.data.chelsea()[100:196, 150:278]  # 96 x 128: six by eight latent positions


def _wire_bytes(frame) -> int:
    return sum(map(len, Packetizer(PartitionKind.SEGMENT).packetize(frame, 0)))


def test_a_refined_fixed_width_latent_decodes_closer_with_the_plain_receiver():
    plain = get_codec("cnn-sem-impute-q1")  # a coarse quantizer step: much to gain
    refined = get_codec("cnn-sem-impute-q1", refine=8)
    before, after = plain.to_frame(CROP), refined.to_frame(CROP)
    assert after.latent.shape == before.latent.shape and after.latent.dtype == before.latent.dtype
    assert np.abs(after.latent).max() <= plain.config.amplitude and (after.latent != before.latent).any()
    # the receiver is the unrefined codec: nothing about refinement travels
    assert psnr_db(CROP, plain.from_frame(after)) > psnr_db(CROP, plain.from_frame(before)) + 0.1
    again = get_codec("cnn-sem-impute-q1", refine=8, engine="torch").to_frame(CROP)
    np.testing.assert_array_equal(again.latent, after.latent)  # no randomness but a fixed seed


def test_a_refined_range_coded_latent_costs_less_for_its_quality():
    """J = lambda x 255^2 x MSE + bits per pixel, the measure refinement lowers, on the wire."""
    name = "cnn-sem-impute-q1-ec"
    lmbda = LEARNED["cnn-sem-impute-q1"].lmbda
    assert lmbda is not None

    def cost(codec) -> float:
        frame = codec.to_frame(CROP, payload_budget(1200))
        mse = np.mean((codec.from_frame(frame).astype(float) - CROP) ** 2)
        return lmbda * mse + _wire_bytes(frame) * 8 / CROP[..., 0].size

    assert cost(get_codec(name, refine=8)) < cost(get_codec(name))


def test_refine_is_refused_where_it_cannot_run():
    assert refinable("cnn-sem-impute-ec") and refinable("cnn") and not refinable("jpeg") and not refinable("swin")
    with pytest.raises(CodecError, match="--refine"):
        load_codec("jpeg", refine=4)
    with pytest.raises(CodecError, match="cnn"):
        get_codec("swin", refine=4)
    small = LearnedCodec("cnn-sem", LEARNED["cnn-sem"].weights, tile_above_pixels=64 * 64, refine=2)
    with pytest.raises(CodecError, match="refine works on images up to"):
        small.to_frame(CROP)


def test_refine_through_the_cli():
    run = subprocess.run([sys.executable, "-m", "netsem", "simulate", "skimage:chelsea", "--quality", "1",
                          "--refine", "2", "--json"], capture_output=True, text=True, check=True)
    assert '"refine": 2' in run.stdout
    bad = subprocess.run([sys.executable, "-m", "netsem", "simulate", "--codec", "jpeg", "--refine", "2"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "--refine" in bad.stderr and "Traceback" not in bad.stderr


def test_refinement_reports_each_step_to_whoever_asked():
    seen = []
    with reporting_progress(lambda done, total: seen.append((done, total))):
        get_codec("cnn-sem-impute-q1-ec", refine=3).to_frame(CROP)
    get_codec("cnn-sem-impute-q1", refine=2).to_frame(CROP)  # outside the block: nobody is told
    assert seen == [(1, 3), (2, 3), (3, 3)]
