"""Bring your own codec, stage and loss model: a plug-in package installed with pip from a
folder is found through its entry points by `netsem models`, `send`, `recv` and the API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from processes import Program, free_port  # noqa: E402

PACKAGE = Path(__file__).resolve().parent / "demo_package"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> str:
    """The demo package installed with pip into a folder of its own (the venv stays as it is)."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                             "--no-index", "--target", str(target), str(PACKAGE)],
                            capture_output=True, text=True, timeout=300, cwd=build)
    assert result.returncode == 0, result.stderr
    return str(target)


def netsem(plugin_path: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([plugin_path, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "netsem", *args], capture_output=True, text=True, timeout=300,
                          env=env, cwd=REPO)


def test_models_lists_the_plugin_codec_with_its_origin(plugin_path):
    result = netsem(plugin_path, "models")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "half-pixels" in line)
    assert "netsem-demo-plugin" in row and "96x256x384" not in row  # its own latent: 3 x 256 x 384
    assert "3x256x384" in row


def test_the_plugin_codec_runs_end_to_end_over_sockets_with_plugin_stage_and_loss_model(plugin_path):
    result = netsem(plugin_path, "send", "skimage:coffee", "--codec", "half-pixels", "--stage", "tag-bit",
                    "--loss-model", "every-nth n=4", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["codec"] == "half-pixels"
    assert report["link"]["dropped_by_cause"] == {"every-nth": report["datagrams_sent"] // 4}
    assert report["datagrams_received"] == report["datagrams_sent"] - report["datagrams_sent"] // 4
    assert 10 < report["psnr_db"] < report["lossless_psnr_db"]


def test_recv_decodes_the_plugin_codec_as_a_separate_process(plugin_path, tmp_path):
    port = free_port()
    env_path = os.pathsep.join([plugin_path, os.environ.get("PYTHONPATH", "")])
    os.environ["PYTHONPATH"], previous = env_path, os.environ.get("PYTHONPATH")
    try:
        recv = Program("recv", "--listen", f"127.0.0.1:{port}", "--out", str(tmp_path), "--json")
    finally:
        if previous is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = previous
    try:
        sent = netsem(plugin_path, "send", "skimage:chelsea", "--codec", "half-pixels", "--to", f"127.0.0.1:{port}",
                      "--json")
        assert sent.returncode == 0, sent.stderr
        report = recv.report_where(60, frame_id=json.loads(sent.stdout)["frame_id"])
        assert report["codec"] == "half-pixels" and report["complete"] and Path(report["image"]).exists()
    finally:
        recv.stop(signal.SIGINT)


def test_the_api_takes_codec_stage_and_loss_model_objects():
    sys.path.insert(0, str(PACKAGE))
    try:
        from netsem_demo_plugin import EveryNth, HalfPixels, TagBit
    finally:
        sys.path.remove(str(PACKAGE))
    import netsem

    report = netsem.simulate("skimage:coffee", codec=HalfPixels(), stages=[TagBit()], loss_model=EveryNth(3), seed=2)
    assert report.codec == "half-pixels" and report.link["dropped_by_cause"] == {"every-nth": report.datagrams_sent // 3}
    assert netsem.codec_names().count("half-pixels") == 1
