"""Channels an imputing -ec codec leaves out (`skip`): one-byte units any receiver reads as lost,
the same frame whether skipped at encode or afterwards, the fitted order worth more than chance,
and a ladder `--bpp` walks."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from netsem.cli import cli
from netsem.codecs import get_codec
from netsem.codecs.base import CodecError
from netsem.codecs.channel_skip import NOT_SENT, drop_orders, ladder
from netsem.codecs.registry import LADDER_CODECS, LEARNED, QUALITY_CODECS
from netsem.metrics import psnr_db
from netsem.pipeline.frames import payload_budget
from packetizers.packetizer import Packetizer
from packetizers.reassembler import Reassembler
from packetizers.wire import PartitionKind

torch.set_num_threads(2)
NAME = "cnn-sem-impute-q0-ec"


def photo(h=256, w=256):
    from netsem.pipeline.images import load_image

    image, _ = load_image("skimage:coffee")  # an evaluation photograph: the order never saw it
    return image[100:100 + h, 150:150 + w]


@pytest.fixture(scope="module")
def full():
    return get_codec(NAME)


def _wire_bytes(frame) -> int:
    return sum(map(len, Packetizer(PartitionKind.SEGMENT).packetize(frame, 0)))


def test_skipped_channels_travel_as_one_byte_units_and_decode_as_lost(full):
    image = photo()
    skipping = get_codec(NAME, skip=12)
    frame, whole = skipping.to_frame(image, payload_budget(1200)), full.to_frame(image, payload_budget(1200))
    left_out = set(drop_orders()[NAME][:12])
    for channel, (sent, kept) in enumerate(zip(frame.segments, whole.segments)):
        assert sent == (NOT_SENT if channel in left_out else kept)
    assert _wire_bytes(frame) < 0.9 * _wire_bytes(whole)
    # over the wire the frame is complete: every datagram arrived, nothing waits for the left-out channels
    reassembler = Reassembler()
    for datagram in Packetizer(PartitionKind.SEGMENT).packetize(dataclasses.replace(frame, codec_id=1), 7):
        reassembler.receive(datagram, 0.0)
    (received,) = reassembler.poll(0.0)
    assert received.complete
    # the receiver is the codec without skip: the left-out channels are imputed like lost ones
    inner = full.inner
    latent = inner.to_frame(image)
    mask = np.ones(latent.latent.shape, bool)
    mask[sorted(left_out)] = False
    np.testing.assert_array_equal(full.from_frame(frame), inner.from_frame(latent.with_received(mask)))
    lost = dataclasses.replace(whole, segments=tuple(None if c in left_out else s
                                                     for c, s in enumerate(whole.segments)))
    np.testing.assert_array_equal(full.from_frame(frame), full.from_frame(lost))


def test_leaving_out_afterwards_gives_the_frame_of_the_codec_that_skips(full):
    image = photo()
    for budget in (payload_budget(1200), 60):  # whole channels, and bands of a few rows
        whole = full.to_frame(image, budget)
        skipped = get_codec(NAME, skip=20).to_frame(image, budget)
        assert full.leaving_out(whole, 20) == skipped
        assert full.leaving_out(whole, 0) == whole
    assert len(skipped.segments) > 60  # the small budget did cut channels into bands


def test_the_fitted_order_loses_less_than_channels_left_out_at_random(full):
    image = photo(384, 384)
    whole = full.to_frame(image)
    base = psnr_db(image, full.from_frame(whole))
    fitted = psnr_db(image, full.from_frame(full.leaving_out(whole, 15)))
    rng = np.random.default_rng(0)
    chance = []
    for _ in range(3):
        codec = get_codec(NAME)
        codec.drop_order = tuple(rng.permutation(60).tolist())
        chance.append(psnr_db(image, codec.from_frame(codec.leaving_out(whole, 15))))
    assert fitted > max(chance) and fitted > base - 0.5, (base, fitted, chance)


def test_refinement_knows_which_channels_are_not_sent():
    """J = lambda x 255^2 x MSE + bits per pixel with 12 channels left out: refinement that
    decodes them as lost in every pass lowers it."""
    image = photo(96, 128)
    lmbda = LEARNED["cnn-sem-impute-q0"].lmbda

    def cost(codec) -> float:
        frame = codec.to_frame(image, payload_budget(1200))
        mse = np.mean((codec.from_frame(frame).astype(float) - image) ** 2)
        return lmbda * mse + _wire_bytes(frame) * 8 / image[..., 0].size

    refined = get_codec(NAME, skip=12, refine=6)
    assert cost(refined) < cost(get_codec(NAME, skip=12))
    assert all(s == NOT_SENT for c, s in enumerate(refined.to_frame(image).segments) if c in drop_orders()[NAME][:12])


def test_skip_is_refused_where_it_cannot_work():
    with pytest.raises(CodecError, match="no drop order"):
        get_codec("cnn-sem-ec", skip=3)  # its receiver zeroes lost channels: nothing to impute them
    with pytest.raises(CodecError, match="skip takes 0..59"):
        get_codec(NAME, skip=60)


def test_the_ladder_rises_in_rate_and_quality_from_below_the_lowest_rate_point():
    steps = ladder()
    assert len(steps) >= 10
    assert all(a.bpp < b.bpp and a.psnr_db < b.psnr_db for a, b in zip(steps, steps[1:]))
    assert {s.codec for s in steps} <= set(LADDER_CODECS)
    assert steps[0].codec == QUALITY_CODECS[1] and steps[0].skip > 0  # below the lowest trained point
    assert all(0 <= s.skip < 60 for s in steps)
    assert set(drop_orders()) == set(LADDER_CODECS)
    assert all(sorted(order) == list(range(60)) for order in drop_orders().values())


def test_a_lossy_link_gets_steps_that_send_more_channels():
    calm, lossy = ladder(0), ladder(40)
    assert ladder(7) == ladder(10) and ladder(100) == lossy  # the nearest fitted loss

    def sent_at(steps, bpp: float) -> int:
        return 60 - max((s for s in steps if s.bpp <= bpp), key=lambda s: s.bpp).skip

    rates = np.linspace(0.25, 0.9, 14)
    assert np.mean([sent_at(lossy, r) for r in rates]) > np.mean([sent_at(calm, r) for r in rates]) + 2


def _simulate(*words: str) -> dict:
    run = subprocess.run([sys.executable, "-m", "netsem", "simulate", "skimage:coffee", "--json", *words],
                         capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def test_skip_channels_and_bpp_through_the_cli():
    plain, skipped = _simulate("--quality", "1"), _simulate("--quality", "1", "--skip-channels", "15")
    assert skipped["skip_channels"] == 15 and skipped["bytes_on_wire"] < 0.85 * plain["bytes_on_wire"]
    assert skipped["units_received"] == skipped["units_total"] and skipped["psnr_db"] == skipped["lossless_psnr_db"]
    target = round(0.97 * plain["bpp"], 3)  # below the lowest trained point
    low = _simulate("--bpp", str(target))
    assert low["skip_channels"] > 0 and low["bpp"] <= target
    assert (low["codec"], low["skip_channels"]) in {(step.codec, step.skip) for step in ladder()}
    lossy = _simulate("--bpp", str(target), "--expect-loss", "40%")
    assert (lossy["codec"], lossy["skip_channels"]) in {(step.codec, step.skip) for step in ladder(40)}
    assert lossy["bpp"] <= target
    for words, code in ((["--codec", "jpeg", "--skip-channels", "3"], 1), (["--bpp", "0.5", "--skip-channels", "3"], 2),
                        (["--codec", "cnn-sem-ec", "--skip-channels", "3"], 1), (["--expect-loss", "10%"], 2),
                        (["--bpp", "0.5", "--expect-loss", "120%"], 2), (["--bpp", "0.5", "--expect-loss", "x"], 2)):
        # in this process (a subprocess each cost ~1 s of imports): the same click command, the same exit
        bad = CliRunner().invoke(cli, ["simulate", *words])
        assert bad.exit_code == code and isinstance(bad.exception, SystemExit), (words, bad.output)


def test_the_senders_half_names_the_step_bpp_chose():
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:  # takes the datagrams, reads none
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "netsem", "send", "skimage:chelsea", "--bpp", "0.3", "--to",
                              f"127.0.0.1:{port}", "--json"], capture_output=True, text=True, check=True)
    report = json.loads(run.stdout)
    assert (report["codec"], report["skip_channels"]) in {(step.codec, step.skip) for step in ladder()}
    assert report["skip_channels"] > 0 and report["bpp"] <= 0.3
