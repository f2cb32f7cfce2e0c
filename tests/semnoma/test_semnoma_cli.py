"""`netsem noma-*` as click runs them, and their one-line errors."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from netsem.semnoma.cli import noma_eval, noma_recv, noma_send, noma_simulate
from netsem.semnoma.weights import save_model


@pytest.fixture()
def files(tmp_path, small_model, pair):
    model = tmp_path / "m.safetensors"
    save_model(model, small_model, {})
    paths = []
    for k, image in enumerate(pair):
        paths.append(tmp_path / f"u{k}.png")
        Image.fromarray(image).save(paths[-1])
    return str(model), [str(p) for p in paths]


def run(command, *args):
    return CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)


def test_simulate_reports_both_users(tmp_path, files):
    model, images = files
    result = run(noma_simulate, *images, "--model", model, "--size", 32, "--channel", "rayleigh", "--snr", 15,
                 "--netem", "loss random 10%", "--json", tmp_path / "r.json", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = json.loads(Path(tmp_path / "r.json").read_text())
    frame = report["frames"][0]
    assert [u["user"] for u in frame["users"]] == [0, 1] and all(u["psnr"] > 0 for u in frame["users"])
    assert (tmp_path / "out" / "frame1-user1.png").exists() and "user 1 (power 0.2)" in result.output


@pytest.mark.parametrize("args, words", [
    (["IMG0"], "1 images for 2 users"),
    (["IMG0", "IMG1", "--powers", "0.5,0.6"], "sum to 1"),
    (["IMG0", "IMG1", "--size", "30"], "multiple of 4"),
    (["IMG0", "IMG1", "--netem", "loss banana"], "--netem"),
    (["IMG0", "IMG1", "--model", "/nonexistent.safetensors"], "--model"),
    (["IMG0", "/nonexistent.png"], "cannot read image"),
])
def test_simulate_misuse_is_one_line(files, args, words):
    model, images = files
    args = [images[0] if a == "IMG0" else images[1] if a == "IMG1" else a for a in args]
    if "--model" not in args:
        args += ["--model", model]
    result = run(noma_simulate, *args)
    assert result.exit_code == 2 and words in result.output.splitlines()[-1], result.output


def test_send_to_nobody_and_bad_user(files):
    model, images = files
    result = run(noma_send, images[0], "--user", 0, "--to", "127.0.0.1:9", "--model", model, "--size", 32)
    assert result.exit_code == 1 and "refused" in result.output.splitlines()[-1]
    result = run(noma_send, images[0], "--user", 2, "--to", "127.0.0.1:9", "--model", model)
    assert result.exit_code == 2 and "--user" in result.output.splitlines()[-1]


def test_recv_gives_up_when_nothing_arrives(files):
    model, _ = files
    result = run(noma_recv, "--listen", "127.0.0.1:0", "--idle", 0.2, "--model", model)
    assert result.exit_code == 1 and "0 frame(s)" in result.output


def test_eval_rejects_unknown_schemes():
    result = run(noma_eval, "--schemes", "noma,banana")
    assert result.exit_code == 2 and "banana" in result.output.splitlines()[-1]


def test_misuse_is_refused_before_torch_loads():
    """Option errors are checked before a network (and torch, ~1 s) is loaded."""
    import subprocess
    import sys

    code = ("import sys; from click.testing import CliRunner; from netsem.semnoma.cli import noma_simulate, noma_send;"
            "a = CliRunner().invoke(noma_simulate, ['x.png', 'y.png', '--powers', '0.5,0.6']);"
            "b = CliRunner().invoke(noma_send, ['/nonexistent.png', '--user', '0', '--to', '127.0.0.1:9']);"
            "print(a.exit_code, b.exit_code, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["2", "2", "False"]
