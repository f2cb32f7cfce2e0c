"""Channels an imputing -ec codec leaves out (`skip`): one-byte units any receiver reads as lost,
the same frame whether skipped at encode or afterwards, the fitted order worth more than chance,
and the fitted curves `--bpp` chooses by."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from netsem.cli import cli
from netsem.codecs import get_codec
from netsem.codecs.base import CodecError
from netsem.codecs.channel_skip import (
    NOT_SENT,
    SHORTLIST,
    curves,
    drop_orders,
    expected_loss_of,
    loss_words,
    lowest_rate,
    shortlist,
)
from netsem.codecs.registry import BPP_CODECS, LEARNED
from netsem.metrics import psnr_db
from netsem.pipeline.frames import payload_budget
from netsem.pipeline.session import REHEARSALS, REHEARSED, SessionOptions, prepare, rehearsed_psnr
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


def test_the_curves_fall_in_rate_as_channels_are_left_out_and_shortlist_what_can_fit():
    fitted = curves()
    assert set(fitted) == set(BPP_CODECS) == set(drop_orders())
    assert all(sorted(order) == list(range(60)) for order in drop_orders().values())
    for curve in fitted.values():
        assert curve.skips[0] == 0 and all(0 <= skip < 60 for skip in curve.skips)
        assert all(a > b for a, b in zip(curve.bpp, curve.bpp[1:]))  # each channel left out saves bytes
        middle = (curve.skips[1] + curve.skips[2]) / 2  # between two fitted points: between their PSNRs
        assert curve.psnr_at(middle) == pytest.approx((curve.psnr_db[1][0] + curve.psnr_db[2][0]) / 2)
        assert curve.skipped_within(curve.bpp[0] + 1) == 0 and curve.skipped_within(0.0) is None
        assert curve.skipped_within(curve.bpp[1]) == curve.skips[1]
        halfway = curve.skipped_within((curve.bpp[1] + curve.bpp[2]) / 2)  # between two fitted rates
        assert halfway == pytest.approx((curve.skips[1] + curve.skips[2]) / 2)
    listed = shortlist(0.8, 1.0)
    assert len(listed) == SHORTLIST
    promise = [fitted[c].psnr_at(fitted[c].skipped_within(0.8)) for c in listed]
    assert promise == sorted(promise, reverse=True)
    assert all(fitted[c].psnr_at(fitted[c].skipped_within(0.8)) <= promise[-1] for c in set(fitted) - {*listed})
    # an image twice as costly as the fitting photographs: the target is half as far up each curve
    assert shortlist(0.8, 2.0) == shortlist(0.4, 1.0) != listed
    codec, skip = lowest_rate()
    assert skip > 0 and fitted[codec].bpp[-1] == min(c.bpp[-1] for c in fitted.values())
    assert shortlist(fitted[codec].bpp[-1] / 2, 1.0) == []  # below every curve: nothing to shortlist


def test_leaving_channels_out_costs_more_when_datagrams_are_lost():
    """The fit's PSNR lost at 40 % of the sent channels lost, with many channels left out against
    none (the imputer has fewer to work from): what --expect-loss adds to each measured choice."""
    fitted = curves()
    few = np.mean([curve.loss_penalty(0, 40) for curve in fitted.values()])
    many = np.mean([curve.loss_penalty(30, 40) for curve in fitted.values()])
    assert few < 0 and many < few - 0.3, (few, many)
    assert all(curve.loss_penalty(10, 0) == 0 for curve in fitted.values())
    for curve in fitted.values():  # between two fitted losses: between their PSNRs (5 % is not 0 %)
        assert curve.psnr_at(10, 5) == pytest.approx((curve.psnr_at(10, 0) + curve.psnr_at(10, 10)) / 2)
        assert curve.psnr_at(10, 60) == curve.psnr_at(10, 40)  # beyond the fit: its last loss
        # several losses, each as likely: the mean of the PSNR at each
        assert curve.psnr_at(10, (10, 40)) == pytest.approx((curve.psnr_at(10, 10) + curve.psnr_at(10, 40)) / 2)
        assert curve.loss_penalty(10, (0, 40)) == pytest.approx(curve.loss_penalty(10, 40) / 2)


def test_an_expected_loss_is_one_percent_or_several():
    assert expected_loss_of(10) == 10.0 and expected_loss_of([10]) == 10.0 and expected_loss_of([10, 40]) == (10, 40)
    assert loss_words(10.0) == "10 %" and loss_words((10.0, 40.0)) == "10 % or 40 % (the mean)"
    for bad in ([], [10, 140], -1):
        with pytest.raises(ValueError, match="each 0 to 100"):
            expected_loss_of(bad)


def _simulate(image: str, *words: str) -> dict:
    run = subprocess.run([sys.executable, "-m", "netsem", "simulate", image, "--json", *words],
                         capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def test_a_rehearsal_decodes_the_frame_under_seeded_datagram_losses(small_photo):
    """`--bpp`'s rehearsal: nothing lost is the lossless PSNR, more lost costs more (the same draws at each
    loss: what is lost at 10 % is lost at 40 % too), the same patterns every time, and something arrives."""
    item = prepare(SessionOptions(image=small_photo, codec="cnn-sem-impute-q6-ec", skip=8, seed=3))
    lossless = psnr_db(item.image, item.codec.from_frame(item.frame))
    assert rehearsed_psnr(item, 0) == pytest.approx(lossless)
    light, heavy, everything = (rehearsed_psnr(item, loss) for loss in (10, 40, 100))
    assert lossless > light > heavy > everything > 10, (lossless, light, heavy, everything)
    assert rehearsed_psnr(item, 40) == heavy and rehearsed_psnr(item, 40, patterns=1) != heavy


def _bpp_note(report: dict, loss: str) -> tuple[list, list]:
    """([(codec, skip, dB)] rehearsed, [(codec, skip, dB)] measured less the fit's loss) from --bpp's note,
    each best first."""
    (note,) = [note for note in report["notes"] if note.startswith("--bpp ")]
    rehearsed, shortlisted = note.split(f"; measured on this image less the fit's loss at {loss}: ")
    assert f"datagrams lost at {loss} ({REHEARSALS} seeded patterns)" in rehearsed
    lists = [[(name, int(skip), float(score)) for name, skip, score in
              re.findall(r"(\S+) with (\d+) channels? not sent (\S+) dB", part)] for part in (rehearsed, shortlisted)]
    for scored in lists:
        assert [score for *_, score in scored] == sorted((score for *_, score in scored), reverse=True)
    return lists[0], lists[1]


def test_skip_channels_and_bpp_through_the_cli(small_photo):
    plain = _simulate(small_photo, "--quality", "1")
    skipped = _simulate(small_photo, "--quality", "1", "--skip-channels", "15")
    assert skipped["skip_channels"] == 15 and skipped["bytes_on_wire"] < 0.85 * plain["bytes_on_wire"]
    assert skipped["units_received"] == skipped["units_total"] and skipped["psnr_db"] == skipped["lossless_psnr_db"]
    target = round(0.97 * plain["bpp"], 3)  # below the lowest trained point
    low = _simulate(small_photo, "--bpp", str(target))
    assert low["skip_channels"] > 0 and low["bpp"] <= target and low["codec"] in BPP_CODECS
    _bpp_note(low, "10 %")  # chosen for 10 % unless told
    lossy = _simulate(small_photo, "--bpp", str(target), "--expect-loss", "40%")
    assert lossy["bpp"] <= target and lossy["codec"] in BPP_CODECS
    rehearsed, shortlisted = _bpp_note(lossy, "40 %")
    # the best few by the fit's loss are rehearsed on the image, and the best rehearsed is sent
    assert {tried[:2] for tried in rehearsed} == {tried[:2] for tried in shortlisted[:REHEARSED]}
    assert rehearsed[0][:2] == (lossy["codec"], lossy["skip_channels"])
    assert rehearsed[0][2] < lossy["lossless_psnr_db"] - 0.5  # 40 % lost costs something
    spread = _simulate(small_photo, "--bpp", str(target), "--expect-loss", "0%,40%")  # half the time 40 % lost
    rehearsed, shortlisted = _bpp_note(spread, "0 % or 40 % (the mean)")
    (fitted,) = [score for name, skip, score in shortlisted if (name, skip) == rehearsed[0][:2]]
    half = curves()[spread["codec"]].loss_penalty(spread["skip_channels"], 40) / 2
    assert fitted == pytest.approx(spread["lossless_psnr_db"] + half, abs=0.006)
    # the rehearsal is `rehearsed_psnr` of the frame sent: the same datagrams, the same patterns
    sent = prepare(SessionOptions(image=small_photo, codec=spread["codec"], skip=spread["skip_channels"]))
    assert rehearsed[0][2] == pytest.approx((spread["lossless_psnr_db"] + rehearsed_psnr(sent, 40)) / 2, abs=0.006)
    for words, code in ((["--codec", "jpeg", "--skip-channels", "3"], 1),
                        (["--bpp", "0.5", "--skip-channels", "3"], 2),
                        (["--codec", "cnn-sem-ec", "--skip-channels", "3"], 1), (["--expect-loss", "10%"], 2),
                        (["--bpp", "0.5", "--expect-loss", "120%"], 2), (["--bpp", "0.5", "--expect-loss", "x"], 2),
                        (["--bpp", "0.5", "--expect-loss", "10%,"], 2),
                        (["--bpp", "0.5", "--expect-loss", "10,200"], 2)):
        # in this process (a subprocess each cost ~1 s of imports): the same click command, the same exit
        bad = CliRunner().invoke(cli, ["simulate", *words])
        assert bad.exit_code == code and isinstance(bad.exception, SystemExit), (words, bad.output)


def test_the_senders_half_names_the_codec_and_channels_bpp_chose(small_photo):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:  # takes the datagrams, reads none
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "netsem", "send", small_photo, "--bpp", "0.3", "--to",
                              f"127.0.0.1:{port}", "--json"], capture_output=True, text=True, check=True)
    report = json.loads(run.stdout)
    assert report["codec"] in BPP_CODECS and report["skip_channels"] > 0 and report["bpp"] <= 0.3
