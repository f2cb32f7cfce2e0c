"""CLI misuse prints one clear line and exits non-zero; --json gives the documented keys."""

import json
import subprocess
import sys

import pytest

REPORT_KEYS = {"codec", "partition", "interleave", "netem", "seed", "psnr_db", "ssim", "lossless_psnr_db",
               "datagrams_sent", "datagrams_received", "units_total", "units_received", "bytes_on_wire", "bpp",
               "encode_s", "network_s", "decode_s", "total_s", "versions"}


def netsem(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netsem", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def tiny_png(tmp_path_factory) -> str:
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("cli") / "coffee.png"
    Image.fromarray(data.coffee()[::4, ::4]).save(path)
    return str(path)


@pytest.mark.parametrize(
    "args,message",
    [
        (["send", "/no/such/image.png"], "image not found: /no/such/image.png"),
        (["send", "--codec", "nope"], "unknown codec 'nope'"),
        (["send", "--netem", "loss sometimes"], "sometimes"),
        (["simulate", "--netem", "frobnicate 3"], "frobnicate"),
        (["send", "--mtu", "70000"], "70000"),
        (["recv", "--listen", "nonsense", "--out", "/tmp/x"], "HOST:PORT"),
        (["send", "--netem", "loss 100%"], "delivered none of the"),
        (["simulate", "--netem", "loss 100%"], "delivered none of the"),
        (["send", "--phy", "mimo 2x2 snr 99dB"], "snr 99dB"),
        (["send", "--codec", "jpeg", "--partition", "token"], "jpeg does not support the token partition"),
        (["simulate", "--partition", "segment"], "does not support the segment partition"),
        (["simulate", "--codec", "jpeg", "--jpeg-quality", "0"], "0 is not in the range"),
        (["sweep", "--codec", "cnn", "--partition", "segment", "--out", "/tmp/x.csv"], "nothing to run"),
    ],
)
def test_misuse_prints_one_line_and_exits_non_zero(args, message):
    result = netsem(*args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert message in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("Error")]) == 1


def test_unreadable_image_is_one_line(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    result = netsem("send", str(bad))
    assert result.returncode != 0 and "cannot read image" in result.stderr and "Traceback" not in result.stderr


def test_unreachable_receiver_is_reported_without_hanging(tiny_png):
    result = netsem("send", tiny_png, "--to", "127.0.0.1:9")
    assert result.returncode != 0 and "refused" in result.stderr


def test_json_report_has_the_documented_keys(tiny_png):
    result = netsem("simulate", tiny_png, "--codec", "raw", "--json", "--netem", "loss random 10%", "--seed", "2")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert REPORT_KEYS <= report.keys()
    assert report["netem"] == "loss random 10%" and report["datagrams_received"] < report["datagrams_sent"]
