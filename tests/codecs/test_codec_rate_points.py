"""The rate points of the default codec (`--quality`): a coarser quantizer step travels in the
frame's scale, fewer bits go on the wire at each lower point, and rate-distortion training runs
with its rate proxy."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
import torch
from click.testing import CliRunner

import netsem
from netsem.cli import cli
from netsem.codecs.channel_skip import SHORTLIST, lowest_rate
from netsem.codecs.config import NetConfig
from netsem.codecs.data import load_eval_images
from netsem.codecs.registry import BPP_CODECS, LEARNED, QUALITY_CODECS, RATE_POINTS, get_codec
from netsem.codecs.train import RateProxy, TrainOptions, train
from netsem.metrics import psnr_db
from netsem.pipeline.frames import payload_budget
from netsem.pipeline.session import SessionOptions, prepare
from packetizers.packetizer import Packetizer
from packetizers.wire import PartitionKind


@pytest.mark.parametrize("q", sorted(RATE_POINTS))
def test_a_rate_point_sends_its_quantizer_step_in_the_frame(q):
    codec = get_codec(f"cnn-sem-impute-q{q}")
    step = RATE_POINTS[q][1]
    assert codec.config.quant_step == step
    frame = codec.to_frame(skimage.data.coffee()[:96, :128])
    a = codec.config.amplitude
    assert np.isclose(frame.scale, step / a) and np.abs(frame.latent).max() <= a
    # the decoder is given the integers times the step, i.e. the latent in its own units
    y = np.ascontiguousarray(frame.latent.transpose(1, 2, 0).astype(np.float32)) * np.float32(step)
    rt = codec.runtime
    ref = rt.decode_map(rt.decoder_input(y, np.ones(y.shape, bool)))
    ref = np.round(np.clip(ref[:96, :128], 0, 1) * np.float32(255)).astype(np.uint8)
    np.testing.assert_array_equal(codec.from_frame(frame), ref)


def test_each_lower_quality_sends_fewer_bytes_and_looks_worse():
    # What QUALITY_POINTS claims, on the four scikit-image evaluation photographs whole: each quality takes more
    # bits per pixel on the wire and gives more PSNR, on the mean. Not on each photograph: the 8x-down points,
    # trained for rate with the proxy at its own rate, spend where the picture needs it and the 16x-down ones a
    # fixed share (rocket's sky: q7 0.34 bpp for 26.98 dB, q2 0.29 for 27.05; astronaut: q7 0.74 for 27.53,
    # q3 0.79 for 27.90), and on crops of them the ladder's neighbours trade places.
    images = load_eval_images()
    bpp, psnr = np.zeros(len(QUALITY_CODECS)), np.zeros(len(QUALITY_CODECS))
    for i, q in enumerate(sorted(QUALITY_CODECS)):
        codec = get_codec(QUALITY_CODECS[q])
        for image in images.values():
            frame = codec.to_frame(image, payload_budget(1200))
            wire = sum(map(len, Packetizer(PartitionKind.SEGMENT).packetize(frame, 0)))
            bpp[i] += wire * 8 / image[..., 0].size / len(images)
            psnr[i] += psnr_db(image, codec.from_frame(frame)) / len(images)
    assert list(bpp) == sorted(bpp) and len(set(bpp)) == len(bpp), bpp
    assert list(psnr) == sorted(psnr), psnr


def test_quality_picks_the_rate_point_and_refuses_another_codec():
    run = subprocess.run([sys.executable, "-m", "netsem", "simulate", "--quality", "1", "--json"],
                         capture_output=True, text=True, check=True)
    assert f'"codec": "{QUALITY_CODECS[1]}"' in run.stdout and QUALITY_CODECS[1] == "cnn-sem-impute-q1-ec"
    bad = CliRunner().invoke(cli, ["simulate", "--quality", "2", "--codec", "jpeg"])
    assert bad.exit_code == 2 and "--quality" in bad.output and isinstance(bad.exception, SystemExit)


def test_the_rate_proxy_charges_spread_latents_more_bits():
    proxy = RateProxy(4)
    narrow, wide = torch.randn(2, 4, 8, 8), 8 * torch.randn(2, 4, 8, 8)
    assert proxy.bits(narrow) < proxy.bits(wide)
    assert proxy.bits(torch.zeros(1, 4, 2, 2)) > 0


def test_rate_distortion_training_starts_from_the_codec_it_refines(tmp_path):
    base = NetConfig(arch="cnn", latent_channels=4, hidden=8, bit_width=6, impute=True)
    images = [(np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)]
    opts = TrainOptions(steps=3, batch=2, crop=32, warmup=1, log_every=1, lmbda=0.01, checkpoint_every=1e9)
    first = train("base", base, images, tmp_path, TrainOptions(steps=2, batch=2, crop=32, warmup=1, log_every=1),
                  progress=False)
    coarse = NetConfig(**{**base.__dict__, "quant_step": 4.0})
    out = train("coarse", coarse, images, tmp_path, opts, init=first, progress=False)
    assert "bpp~" in (tmp_path / "coarse.log").read_text()
    wide = NetConfig(**{**base.__dict__, "hidden": 16})
    with pytest.raises(ValueError):
        train("other", wide, images, tmp_path, opts, init=first, progress=False)
    assert out.exists() and LEARNED["cnn-sem-impute-q1"].config.quant_step == RATE_POINTS[1][1]


def test_a_later_phase_goes_on_with_the_rate_proxy_the_earlier_one_learned(tmp_path):
    import json

    from safetensors import safe_open

    config = NetConfig(arch="cnn", latent_channels=4, hidden=8, bit_width=6, impute=True, quant_step=2.0)
    images = [(np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)]

    def proxy(path):
        with safe_open(str(path), "np") as f:
            return json.loads(f.metadata()["rate_proxy"])

    first = train("a", config, images, tmp_path, TrainOptions(steps=3, batch=2, crop=32, warmup=1, lr=0.05, lmbda=0.01,
                                                              checkpoint_every=1e9), progress=False)
    learned = proxy(first)
    assert not np.allclose(learned, np.log(4.0))  # it moved from its initial scales
    # a phase that cannot move it (learning rate 0) writes back what it started from
    later = train("b", config, images, tmp_path, TrainOptions(steps=1, batch=2, crop=32, warmup=1, lr=0.0, lmbda=0.01,
                                                              checkpoint_every=1e9), init=first, progress=False)
    np.testing.assert_allclose(proxy(later), learned, atol=1e-5)
    # at another quantizer step the proxy's units differ: it starts afresh
    other = train("c", NetConfig(**{**config.__dict__, "quant_step": 4.0}), images, tmp_path,
                  TrainOptions(steps=1, batch=2, crop=32, warmup=1, lr=0.0, lmbda=0.01, checkpoint_every=1e9),
                  init=first, progress=False)
    np.testing.assert_allclose(proxy(other), np.log(4.0), atol=1e-5)


def test_the_rate_proxy_learns_at_its_own_rate(tmp_path):
    import json

    from safetensors import safe_open

    config = NetConfig(arch="cnn", latent_channels=4, hidden=8, bit_width=6, impute=True, quant_step=2.0)
    images = [(np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)]

    def moved(scale):
        out = train(f"s{scale}", config, images, tmp_path, TrainOptions(
            steps=4, batch=2, crop=32, warmup=1, lr=1e-3, lmbda=0.01, rate_lr_scale=scale, checkpoint_every=1e9),
            progress=False)
        with safe_open(str(out), "np") as f:
            return np.abs(np.array(json.loads(f.metadata()["rate_proxy"])) - np.log(4.0)).max()

    # Adam moves a parameter about one learning rate a step: 4 steps at 1e-3 or at 50 times it
    assert moved(1.0) < 5e-3 < 0.05 < moved(50.0)


def test_a_run_cut_with_stop_after_replays_the_start_of_the_whole_run(tmp_path):
    import json
    import re

    from safetensors import safe_open

    config = NetConfig(arch="cnn", latent_channels=4, hidden=8, bit_width=6, impute=True, quant_step=2.0)
    images = [(np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)]

    def run(name, steps=4, **kw):
        out = train(name, config, images, tmp_path, TrainOptions(steps=steps, batch=2, crop=32, warmup=1, lr=1e-3,
                                                                 lmbda=0.01, log_every=1, checkpoint_every=1e9, **kw),
                    progress=False)
        lines = [re.sub(r" [0-9.]+ it/s elapsed .*", "", line)  # drop the timing
                 for line in (tmp_path / f"{name}.log").read_text().splitlines() if line.startswith("step")]
        with safe_open(str(out), "np") as f:
            return lines, f.metadata()

    whole, _ = run("whole")
    cut, meta = run("cut", stop_after=2)
    # the same losses and learning rates (the schedule still spans 4 steps), then it stops
    assert cut == whole[:2] and len(whole) == 4
    assert meta["step"] == "2" and json.loads(meta["history"])[-1]["to"] == 2
    short, _ = run("short", steps=2)
    assert short[1] != cut[1]  # a 2-step run decays its learning rate sooner: the lines show the schedule


def test_mixed_quantization_decodes_what_the_receiver_gets_and_passes_the_gradient(tmp_path):
    from netsem.codecs.models import build_net

    net = build_net(NetConfig(arch="cnn", latent_channels=4, hidden=8, bit_width=4, quant_step=2.0))
    y = torch.tensor([-40.0, -3.2, -0.9, 0.4, 1.1, 2.9, 40.0], requires_grad=True)
    sent = net.quantize_straight_through(y)
    # rounded to the step and clamped to the bit width (+-7 steps), as the codec sends them
    assert sent.tolist() == [-14.0, -4.0, -0.0, 0.0, 2.0, 2.0, 14.0]
    sent.sum().backward()
    assert y.grad.tolist() == [1.0] * 7
    images = [(np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)]
    out = train("mixed", NetConfig(arch="cnn", latent_channels=4, hidden=8, bit_width=6, impute=True), images,
                tmp_path, TrainOptions(steps=2, batch=2, crop=32, warmup=1, log_every=1, lmbda=0.01, quant="mixed",
                                       checkpoint_every=1e9), progress=False)
    assert out.exists() and "quant='mixed'" in (tmp_path / "mixed.log").read_text()


def _simulate(image: str, *words: str) -> dict:
    import json

    run = subprocess.run([sys.executable, "-m", "netsem", "simulate", image, "--json", *words],
                         capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def test_bpp_takes_the_best_measured_codec_with_the_fewest_channels_left_out_that_fit(small_photo):
    picked = _simulate(small_photo, "--bpp", "0.8", "--expect-loss", "0%")  # scored by PSNR alone
    assert picked["bpp"] <= 0.8 and picked["codec"] in BPP_CODECS
    (measured,) = [note for note in picked["notes"] if note.startswith("--bpp 0.8 measured on this image: ")]
    tried = re.findall(r"(\S+) with (\d+) channels? not sent (\S+) dB", measured)
    assert 2 <= len(tried) <= SHORTLIST and len({codec for codec, _, _ in tried}) == len(tried)
    assert tried[0][:2] == (picked["codec"], str(picked["skip_channels"]))  # the best measured, listed first
    scores = [float(score) for _, _, score in tried]
    assert scores == sorted(scores, reverse=True) and abs(scores[0] - picked["psnr_db"]) < 0.006  # nothing lost
    if picked["skip_channels"]:  # the fewest channels left out whose datagrams fit
        fewer = SessionOptions(image=small_photo, codec=picked["codec"], skip=picked["skip_channels"] - 1)
        assert prepare(fewer).bpp > 0.8
    lowest = netsem.simulate(small_photo, bpp=0.001)  # the Python API takes --bpp as well
    assert (lowest.codec, lowest.skip_channels) == lowest_rate()
    assert any("even the least rate" in n for n in lowest.notes)
    with pytest.raises(ValueError, match="without codec"):
        netsem.Chain(codec="jpeg", bpp=0.5).options()
    assert netsem.Chain(bpp=0.5, expected_loss=[10, 40]).options().expected_loss == (10.0, 40.0)  # each as likely
    with pytest.raises(ValueError, match="each 0 to 100"):
        netsem.Chain(bpp=0.5, expected_loss=140).options()
    for words in (["--bpp", "0.5", "--quality", "2"], ["--bpp", "0.5", "--codec", "jpeg"], ["--bpp", "0"]):
        bad = CliRunner().invoke(cli, ["simulate", *words])  # in this process: the same command, no imports to pay
        assert bad.exit_code == 2 and isinstance(bad.exception, SystemExit), (words, bad.output)
