"""CLI misuse prints one clear line and exits non-zero; --json gives the documented keys."""

import json
import subprocess
import sys

import numpy as np
import pytest

from netsem.pipeline import DEFAULT_CODEC

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
        (["simulate", "--codec", "cnn-sem", "--partition", "segment"], "does not support the segment partition"),
        (["simulate", "--partition", "channel"], f"{DEFAULT_CODEC} does not support the channel partition"),
        (["simulate", "--codec", "jpeg", "--jpeg-quality", "0"], "0 is not in the range"),
        (["sweep", "--codec", "cnn", "--partition", "segment", "--out", "/tmp/x.csv"], "nothing to run"),
        (["sweep", "--seeds", "5-1", "--out", "/tmp/x.csv"], "'5-1' names no seed"),
        (["sweep", "--interleave", "sideways", "--out", "/tmp/x.csv"], "on, off or both"),
        (["sweep", "--bpp", "1", "--codec", "jpeg,cnn-sem-ec", "--out", "/tmp/x.csv"], "not cnn-sem-ec"),
        (["sweep", "--bpp", "0.5,0", "--out", "/tmp/x.csv"], "positive bits per pixel"),
        (["sweep", "--bpp", "1", "--skip-channels", "4", "--out", "/tmp/x.csv"], "give --bpp or --skip-channels"),
        (["sweep", "--codec", "jpeg", "--jpeg-quality", "match:bpp", "--out", "/tmp/x.csv"], "give --bpp"),
        (["sweep", "--expect-loss", "10%", "--out", "/tmp/x.csv"], "give it with --bpp"),
        (["sweep", "--bpp", "1", "--expect-loss", "lots", "--out", "/tmp/x.csv"], "or 'configured'"),
        (["sweep", "--bpp", "1", "--expect-loss", "configured", "--netem", "loss state 1% 10%", "--out", "/tmp/x.csv"],
         "has no configured mean loss"),
        (["send", "--to", "127.0.0.1:9", "--out", "/tmp/x.png"], "write frames with `netsem recv --out`"),
        (["send", "/proc/sys"], "holds no image files"),
        (["send", "/no/such/*.png"], "no file matches /no/such/*.png"),
        (["recv", "--out", "/tmp/x", "--deadline", "soon"], "is not a duration"),
        (["recv", "--out", "/tmp/x", "--max-pixels", "lots"], "is not a pixel count"),
        (["send", "--rate", "fast"], "is not a rate"),
    ],
)
def test_misuse_prints_one_line_and_exits_non_zero(args, message):
    result = netsem(*args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert message in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("Error")]) == 1


def test_conversions_of_the_input_are_said_once_and_a_folder_is_a_sequence(tmp_path):
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    rgba = np.zeros((24, 32, 4), np.uint8)
    Image.fromarray(rgba).save(folder / "a-alpha.png")
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(folder / "b-gray.png")
    Image.fromarray((np.arange(24 * 32).reshape(24, 32) * 80).astype(np.uint16)).save(folder / "c-16bit.png")
    result = netsem("simulate", str(folder), "--codec", "raw", "--json")
    assert result.returncode == 0, result.stderr
    assert "note: a-alpha.png: alpha channel dropped" in result.stderr
    assert "note: b-gray.png: gray image sent as RGB" in result.stderr
    assert "note: c-16bit.png: 16-bit gray reduced to 8 bits" in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line.get("image") for line in lines[:3]] == ["a-alpha.png", "b-gray.png", "c-16bit.png"]
    assert lines[3]["summary"]["frames"] == 3 and lines[3]["summary"]["frames_received"] == 3


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


def test_sweep_interleave_both_means_on_and_off():
    from netsem.pipeline.cli import interleave_choices

    assert interleave_choices(("both",)) == (True, False)
    assert interleave_choices(("off", "on,both")) == (False, True)


def test_sweep_axes_may_be_repeated_or_comma_separated(monkeypatch, tiny_png, tmp_path):
    """`--bpp 0.5 --bpp 1` runs both targets (click keeps only the last of a repeated single option)."""
    from click.testing import CliRunner

    import netsem.pipeline.sweep_runner as runner
    from netsem.cli import cli

    grids = []

    def capture(grid, *args, **kwargs):
        grids.append(grid)
        raise OSError("captured")  # the sweep stops here: one clear line, nothing run

    monkeypatch.setattr(runner, "run_sweep", capture)
    words = ["sweep", tiny_png, "--bpp", "0.5", "--bpp", "1,2", "--mtu", "600", "--mtu", "1200", "--loss", "0",
             "--loss", "10,20", "--out", str(tmp_path / "x.csv")]
    result = CliRunner().invoke(cli, words)
    assert result.exit_code == 1 and "captured" in result.output
    (grid,) = grids
    assert grid.bpps == (0.5, 1.0, 2.0) and grid.mtus == (600, 1200)
    assert grid.netem == ("", "loss random 10%", "loss random 20%")
    assert CliRunner().invoke(cli, [*words[:2], "--phy", "siso awgn", "--snr", "0", "--snr", "5,10",
                                    "--out", str(tmp_path / "y.csv")]).exit_code == 1
    assert grids[1].snrs == (0.0, 5.0, 10.0)
