"""The 60-channel CNN codecs' bit budget and what their receiver does with lost channels
(imputation, inverted-dropout rescale), plus the training helpers that make them."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from netsem.codecs import get_codec
from netsem.codecs.layers import Imputer
from netsem.codecs.models import NetConfig, build_net, override_config, rescale_received
from netsem.codecs.registry import LEARNED
from netsem.codecs.train import CropSampler, TrainOptions, drop_mask
from netsem.codecs.weights import load_state, save_state

torch.set_num_threads(2)
ROOT = Path(__file__).resolve().parents[2]
EVAL_SIZES = [(512, 512), (400, 600), (300, 451), (427, 640), (512, 768)]  # + the 768x512 frame


@pytest.mark.parametrize("name", ["cnn", "cnn-sem"])
def test_cnn_latent_is_60_channels_and_under_1_5_bits_per_pixel(name):
    codec = get_codec(name)
    assert codec.latent_shape(512, 768) == (60, 32, 48)
    for h, w in EVAL_SIZES:
        n = int(np.prod(codec.latent_shape(h, w)))
        assert n * codec.bit_width / (h * w) <= 1.5, (h, w)


def test_imputer_passes_received_channels_and_fills_lost_ones_by_linear_mmse():
    torch.manual_seed(0)
    imp = Imputer(6)
    with torch.no_grad():
        imp.l.copy_(torch.randn(6, 6) * 0.5 + torch.eye(6))
    z = torch.randn(2, 6, 3, 4)
    full = torch.ones_like(z)
    assert torch.equal(imp(z, full), z)  # nothing lost: exactly the input
    cm = torch.tensor([[1, 0, 1, 1, 0, 1], [1, 1, 1, 1, 1, 0]], dtype=torch.float32)
    mask = cm[:, :, None, None].expand_as(z)
    out = imp(z * mask, mask)
    s = imp.covariance().double()
    for b in range(2):
        r = cm[b].bool()
        lost = ~r
        assert torch.equal(out[b, r], z[b, r])
        zr = z[b, r].reshape(int(r.sum()), -1).double()
        want = s[lost][:, r] @ torch.linalg.solve(s[r][:, r], zr)
        torch.testing.assert_close(out[b, lost].reshape(int(lost.sum()), -1).double(), want,
                                   rtol=1e-4, atol=1e-4)


def test_imputer_handles_a_channel_lost_at_some_positions_only():
    # a datagram that carried half of a channel: the other half still arrives
    torch.manual_seed(1)
    imp = Imputer(5)
    with torch.no_grad():
        imp.l.copy_(torch.randn(5, 5) * 0.3 + torch.eye(5))
    z = torch.randn(1, 5, 2, 3)
    mask = torch.ones_like(z)
    mask[0, 1, 0] = 0  # channel 1 lost in the first row only
    out = imp(z * mask, mask)
    assert torch.equal(out[0, :, 1], z[0, :, 1])
    s = imp.covariance().double()
    r = torch.tensor([True, False, True, True, True])
    want = s[1, r] @ torch.linalg.solve(s[r][:, r], z[0, r, 0].double())
    torch.testing.assert_close(out[0, 1, 0].double(), want, rtol=1e-4, atol=1e-4)


def test_imputer_leaves_wholly_lost_positions_zero_and_has_gradients():
    imp = Imputer(4)
    z = torch.randn(1, 4, 2, 2, requires_grad=True)
    mask = torch.ones(1, 4, 2, 2)
    mask[:, :, 0, 1] = 0  # a lost token: every channel at one position
    mask[:, 2] = 0  # and a lost channel
    out = imp(z * mask, mask)
    assert torch.all(out[:, :, 0, 1] == 0)
    out.sum().backward()
    assert imp.l.grad is not None and torch.isfinite(imp.l.grad).all()


def test_rescale_is_inverted_dropout_per_image():
    z = torch.ones(2, 4, 1, 2)
    m = torch.ones_like(z)
    m[0, :2] = 0  # image 0 lost half its elements, image 1 nothing
    out = rescale_received(z * m, m)
    assert torch.allclose(out[0, 2:], torch.full((2, 1, 2), 2.0))
    assert torch.equal(out[1], z[1])
    with pytest.raises(ValueError):
        build_net(NetConfig(hidden=8, latent_channels=4, impute=True, rescale=True))


@pytest.mark.parametrize("name,handling", [("cnn", "rescale"), ("cnn-sem", "rescale"), ("cnn-sem-impute", "impute"),
                                           ("cnn-sem-masked", "masked")])
def test_decoder_uses_the_mask_it_is_given(name, handling):
    codec = get_codec(name)
    assert getattr(codec.config, handling) and codec.config.needs_mask
    img = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    enc = codec.to_frame(img)
    mask = np.ones(enc.latent.shape, bool)
    mask[::3] = False  # every third channel lost
    y = np.ascontiguousarray(np.where(mask, enc.latent, 0).astype(np.float32).transpose(1, 2, 0))
    rt = codec.runtime
    ref = rt.decode_map(rt.decoder_input(y, mask.transpose(1, 2, 0)))
    blind = rt.decode_map(rt.decoder_input(y, None))
    to8 = lambda t: np.round(np.clip(t[:48, :64], 0, 1) * np.float32(255)).astype(np.uint8)  # noqa: E731
    out = codec.from_frame(enc.with_received(mask))
    np.testing.assert_array_equal(out, to8(ref))
    assert not np.array_equal(out, to8(blind))


def test_old_configs_without_the_receiver_fields_still_load():
    old = json.dumps({"arch": "cnn", "bit_width": 6, "broadcast_k": 3, "down": 16, "hidden": 128,
                      "latent_channels": 64, "masked": False, "sem_broadcast": True,
                      "sem_scale": True})
    cfg = NetConfig.from_json(old)
    assert not cfg.impute and not cfg.rescale and not cfg.needs_mask


def test_config_overrides():
    cfg = override_config(LEARNED["cnn-sem"].config, ["broadcast_k=5", "impute=false", "rescale=1"])
    assert cfg.broadcast_k == 5 and not cfg.impute and cfg.rescale
    for bad in (["nope=1"], ["impute"], ["impute=maybe"]):
        with pytest.raises(ValueError):
            override_config(cfg, bad)


@pytest.mark.parametrize("mode", ["channel", "mixed"])
def test_drop_masks_are_seeded_and_made_of_whole_units(mode):
    opts = TrainOptions(drop=mode, drop_apply=1.0, drop_max=0.6)
    shape = (16, 12, 8, 8)
    a = drop_mask(shape, opts, torch.Generator().manual_seed(3), torch.device("cpu"))
    b = drop_mask(shape, opts, torch.Generator().manual_seed(3), torch.device("cpu"))
    assert a.shape == shape and a.dtype == torch.float32 and torch.equal(a, b)
    assert 0 < a.mean() < 1
    for m in a:
        chan = (m == m[:, :1, :1]).all()  # constant over positions: channel units
        tok = (m == m[:1]).all()  # constant over channels: token / spatial units
        assert chan or tok
        if mode == "channel":
            assert chan
    none = drop_mask(shape, dataclasses.replace(opts, drop_apply=0.0),
                     torch.Generator().manual_seed(3), torch.device("cpu"))
    assert none.all()
    assert drop_mask(shape, dataclasses.replace(opts, drop="none"), torch.Generator(),
                     torch.device("cpu")) is None


def test_crop_sampler_is_seeded():
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, (40, 50, 3), dtype=np.uint8),
            rng.integers(0, 255, (33, 70, 3), dtype=np.uint8)]
    a = CropSampler(imgs, 32, torch.device("cpu"), 5).batch(8)
    b = CropSampler(imgs, 32, torch.device("cpu"), 5).batch(8)
    assert a.shape == (8, 3, 32, 32) and torch.equal(a, b) and 0 <= a.min() and a.max() <= 1
    # every crop is a (possibly flipped) window of one of the images
    for crop in (a * 255).round().to(torch.uint8):
        found = False
        for img in imgs:
            t = torch.from_numpy(img).permute(2, 0, 1)
            for c in (crop, crop.flip(2), crop.flip(1), crop.flip(1).flip(2)):
                win = t.unfold(1, 32, 1).unfold(2, 32, 1)  # (3, nh, nw, 32, 32)
                if (win == c[:, None, None]).all(0).all(-1).all(-1).any():
                    found = True
        assert found


def _slicer():
    path = ROOT / "tools" / "training" / "slice_channels.py"
    spec = importlib.util.spec_from_file_location("slice_channels", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("src_masked,dst_masked", [(False, False), (True, True), (False, True)])
def test_slicing_keeps_the_chosen_channels(src_masked, dst_masked):
    sl = _slicer()
    src = NetConfig(hidden=8, latent_channels=6, sem_scale=True, sem_broadcast=True,
                    masked=src_masked)
    dst = dataclasses.replace(src, latent_channels=4, masked=dst_masked, impute=True)
    torch.manual_seed(0)
    net = build_net(src)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    keep = torch.tensor([0, 2, 3, 5])
    sliced = sl.slice_state(state, src, dst, keep)
    new = build_net(dst)
    sliced["impute.l"] = torch.eye(4)
    new.load_state_dict(sliced, strict=True)
    assert torch.equal(new.head.weight, net.head.weight[keep])
    assert torch.equal(new.head.mlp[6].bias, net.head.mlp[6].bias[keep])
    w = net.decoder[0].weight
    assert torch.equal(new.decoder[0].weight[:4], w[keep])
    if dst_masked:
        want = w[6 + keep] if src_masked else torch.zeros_like(w[keep])
        assert torch.equal(new.decoder[0].weight[4:], want)


def test_slice_script_end_to_end(tmp_path, monkeypatch):
    from PIL import Image

    sl = _slicer()
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)).save(photos / "a.png")
    cfg = NetConfig(hidden=8, latent_channels=6, sem_scale=True, sem_broadcast=True)
    net = build_net(cfg)
    src = tmp_path / "src.safetensors"
    save_state(src, net.state_dict(), {"config": cfg.to_json(), "step": "7", "history": "[]"})
    dst = tmp_path / "dst.safetensors"
    monkeypatch.setattr("sys.argv", ["slice", str(src), str(dst), "--channels", "4", "--set",
                                     "impute=true", "--photos", str(photos), "--crops", "2",
                                     "--crop", "32"])
    sl.main()
    state, meta = load_state(dst)
    out = NetConfig.from_json(meta["config"])
    assert out == dataclasses.replace(cfg, latent_channels=4, impute=True)
    assert meta["step"] == "7"
    hist = json.loads(meta["history"])
    assert hist[-1]["sliced"]["channels"] == [6, 4] and len(hist[-1]["sliced"]["dropped"]) == 2
    build_net(out).load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
