"""Weights load by name, offline; missing or corrupt files give a one-line CodecError."""

from __future__ import annotations

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


def test_any_trained_variant_loads_with_the_config_its_file_records(tmp_path):
    """`netsem train cnn --set latent_channels=8` gives a file `--weights` loads as it is."""
    import numpy as np

    from netsem.codecs.config import NetConfig
    from netsem.codecs.models import build_net
    from netsem.codecs.weights import save_state

    variant = NetConfig(arch="cnn", latent_channels=8, hidden=16, bit_width=5, rescale=True)
    path = tmp_path / "narrow.safetensors"
    save_state(path, build_net(variant).state_dict(), {"config": variant.to_json()})
    codec = get_codec("cnn", weights=str(path))  # a str path, as the CLI passes it
    frame = codec.to_frame(np.zeros((32, 48, 3), np.uint8))
    assert frame.latent.shape == (8, 2, 3) and frame.bit_width == 5
    assert codec.from_frame(frame).shape == (32, 48, 3)


def test_a_file_whose_tensors_do_not_fit_its_own_config_is_refused(tmp_path):
    from netsem.codecs.weights import load_state, save_state

    state, meta = load_state(LEARNED["cnn"].weights)
    other = tmp_path / "liar.safetensors"
    save_state(other, state, {**meta, "config": meta["config"].replace('"latent_channels": 60', '"latent_channels": 30')})
    with pytest.raises(CodecError) as err:
        get_codec("cnn", weights=other)
    assert "does not match" in str(err.value) and "\n" not in str(err.value)
