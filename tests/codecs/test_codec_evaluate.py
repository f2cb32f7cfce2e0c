"""Unit dropping used by `netsem evaluate`, and the command on a tiny run."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from netsem.codecs import LatentFrame
from netsem.codecs.evaluate import unit_mask


def enc_chw():
    return LatentFrame(np.zeros((8, 6, 10), np.int8), "chw", 6, True, 1.0, (96, 160))


def enc_nd():
    return LatentFrame(np.zeros((60, 8), np.int8), "nd", 6, True, 1.0, (96, 160), (6, 10))


def test_channel_token_spatial_units():
    rng = np.random.default_rng(0)
    m = unit_mask(enc_chw(), "channel", 0.5, rng)
    per_channel = m.reshape(8, -1)
    assert (per_channel.all(1) | ~per_channel.any(1)).all() and not m.all() and m.any()
    m = unit_mask(enc_chw(), "token", 0.5, rng)
    assert (m == m[0:1]).all() and not m.all()
    m = unit_mask(enc_chw(), "spatial", 0.5, rng, block=3)
    assert (m == m[0:1]).all()
    for by in range(0, 6, 3):
        for bx in range(0, 10, 3):
            blk = m[0, by : by + 3, bx : bx + 3]
            assert blk.all() or not blk.any()
    assert not m.all() and m.any()
    assert unit_mask(enc_chw(), "channel", 0.0, rng).all()


def test_nd_units_follow_tokens_and_dims():
    rng = np.random.default_rng(1)
    m = unit_mask(enc_nd(), "channel", 0.5, rng)
    assert (m == m[0:1]).all() and not m.all()  # a dim lost for every token
    m = unit_mask(enc_nd(), "token", 0.5, rng)
    assert (m == m[:, 0:1]).all() and not m.all()  # a token lost with all its dims


def test_evaluate_command_runs_and_writes_json(tmp_path):
    from netsem.codecs.cli import evaluate

    out = tmp_path / "r.json"
    res = CliRunner().invoke(evaluate, ["--codecs", "raw", "--partitions", "channel",
                                        "--rates", "0,0.5", "--seeds", "1", "--images", "chelsea",
                                        "--jpeg-match", "", "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    rows = {(r["rate"]): r for r in data["rows"]}
    assert rows[0.0]["psnr"] > 90 and rows[0.5]["psnr"] < rows[0.0]["psnr"]
    assert abs(rows[0.0]["bpp"] - 8 * 48 * 75 * 113 / (300 * 451)) < 1e-9
