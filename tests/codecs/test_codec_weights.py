"""Weights load by name, offline; missing or corrupt files give a one-line CodecError."""

from __future__ import annotations

import shutil
import socket

import pytest

from netsem.codecs import get_codec
from netsem.codecs.base import CodecError
from netsem.codecs.registry import LEARNED
from netsem.codecs.weights import WEIGHTS_DIR


def test_every_learned_codec_ships_a_small_weight_file():
    for spec in LEARNED.values():
        assert spec.weights.parent == WEIGHTS_DIR
        assert spec.weights.is_file(), spec.weights
        assert spec.weights.stat().st_size <= 10 * 1024 * 1024
        head = spec.weights.read_bytes()[:8]
        assert int.from_bytes(head, "little") < 1 << 20  # safetensors header length, no pickle


def test_loading_by_name_needs_no_network(monkeypatch):
    def refuse(*a, **k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for name in ("cnn", "cnn-sem", "swin"):
        codec = get_codec(name, weights=LEARNED[name].weights)  # bypass the cache
        assert codec.name == name and codec.num_parameters > 100_000


def test_missing_weight_file(tmp_path):
    with pytest.raises(CodecError) as err:
        get_codec("cnn-sem", weights=tmp_path / "nope.safetensors")
    msg = str(err.value)
    assert "missing" in msg and "\n" not in msg


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_weight_file(tmp_path, damage):
    src = LEARNED["cnn"].weights.read_bytes()
    bad = tmp_path / "cnn.safetensors"
    bad.write_bytes({"garbage": b"\x00not a safetensors file" * 10,
                     "truncated": src[: len(src) // 2], "empty": b""}[damage])
    with pytest.raises(CodecError) as err:
        get_codec("cnn", weights=bad)
    assert "corrupt" in str(err.value) and "\n" not in str(err.value)


def test_weights_for_another_network_are_refused(tmp_path):
    other = tmp_path / "cnn.safetensors"
    shutil.copy(LEARNED["cnn-sem"].weights, other)  # SEM config stored in its metadata
    with pytest.raises(CodecError) as err:
        get_codec("cnn", weights=other)
    assert "config" in str(err.value)
