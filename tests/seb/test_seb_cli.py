"""`netsem seb-sequence` and `netsem seb-eval` as a user runs them (click), and their one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from netsem.seb.cli import seb_eval, seb_sequence


@pytest.fixture()
def two_images(tmp_path, seb_images):
    paths = []
    for k, (_, image) in enumerate(seb_images[:2]):
        path = tmp_path / f"m{k}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return paths


def test_sequence_over_udp_with_capture_the_dissector_reads(tmp_path, two_images):
    capture, rows = tmp_path / "seb.pcapng", tmp_path / "rows.json"
    result = CliRunner().invoke(seb_sequence, [*two_images, *two_images, "--netem", "loss random 10%", "--pcap",
                                               str(capture), "--json", str(rows), "--plot", str(tmp_path / "seq.png"),
                                               "--mtu", "400", "--trigger", "0", "--compare"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "KB versions applied" in result.output and "receiver:" in result.output
    data = json.loads(rows.read_text())
    assert len(data["rows"]) == 4 and (tmp_path / "seq.png").stat().st_size > 1000
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    from pathlib import Path

    lua = Path(__file__).resolve().parents[2] / "tools" / "wireshark" / "netsem.lua"
    out = subprocess.run(["tshark", "-X", f"lua_script:{lua}", "-r", str(capture), "-d", "udp.port==47474,netsem",
                          "-T", "fields", "-e", "netsem.msg_type", "-e", "netsem.kb_version", "-e", "netsem.importance"],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    fields = [line.split("\t") for line in out if line]
    assert fields
    assert {f[0] for f in fields} == {"0", "1"}  # data and KB-update datagrams
    assert {f[2] for f in fields if f[0] == "0"} == {"0", "1"}  # both importance classes on the wire


def test_sequence_offline_without_updates(two_images):
    result = CliRunner().invoke(seb_sequence, [*two_images, "--transport", "offline", "--no-updates"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "KB updates 0" in result.output and "KB versions applied []" in result.output


def test_an_evolved_kb_is_saved_and_starts_the_next_run(tmp_path, two_images):
    saved = tmp_path / "kb.safetensors"
    first = CliRunner().invoke(seb_sequence, [*two_images, *two_images, "--transport", "offline", "--trigger", "0",
                                              "--save-kb", str(saved)], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    from netsem.seb.kb import KnowledgeBase

    kb = KnowledgeBase.load(saved)
    assert kb.version > 1 and (tmp_path / "kb.json").is_file()
    second = CliRunner().invoke(seb_sequence, [*two_images, "--transport", "offline", "--no-updates", "--kb", str(saved),
                                               "--json", str(tmp_path / "rows.json")], catch_exceptions=False)
    assert second.exit_code == 0, second.output
    rows = json.loads((tmp_path / "rows.json").read_text())["rows"]
    assert {r["kb_version"] for r in rows} == {kb.version} and all(r["psnr"] for r in rows)


@pytest.mark.parametrize("args, words", [
    (["--netem", "loss banana"], "loss"),
    (["--phy", "siso awgn snr 3dB ldpc 7"], "ldpc"),
    (["--phy-important", "siso awgn snr 3dB"], "needs phy"),
    (["/nonexistent.png"], "nonexistent"),
])
def test_misuse_is_one_line(args, words):
    result = CliRunner().invoke(seb_sequence, args + ["--transport", "offline"])
    assert result.exit_code == 2 and words in result.output.splitlines()[-1], result.output


def test_eval_writes_tables_and_plot(tmp_path):
    result = CliRunner().invoke(seb_eval, ["--axis", "both", "--channels", "awgn", "--snrs-awgn", "4", "--losses", "0,50",
                                           "--seeds", "0", "--size", "64", "--crops", "1", "--out", str(tmp_path)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = (tmp_path / "summary.csv").read_text().splitlines()
    schemes = {line.split(",")[3] for line in summary[1:]}
    assert {"seb-uep", "seb-no-uep", "jpeg", "jpeg2000", "cnn-sem", "seb-dup", "seb-plain"} <= schemes
    assert (tmp_path / "seb_eval.png").stat().st_size > 1000
    rows = [line.split(",") for line in summary[1:]]
    lossless = {r[3]: float(r[4]) for r in rows if r[0] == "loss" and float(r[2]) == 0}
    assert all(np.isfinite(v) for v in lossless.values())
