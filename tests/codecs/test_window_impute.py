"""The window imputer (netsem.codecs.window_impute): its moments, its estimate, the torch twin,
and what the shipped moments do for the default codec's receiver."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import skimage.data
import torch

from netsem.codecs import cnn_numpy
from netsem.codecs.base import CodecError
from netsem.codecs.layers import WindowImputer
from netsem.codecs.learned import LearnedCodec
from netsem.codecs.registry import LEARNED, get_codec
from netsem.codecs.window_impute import MAX_WINDOW_GROUPS, RIDGE, WindowMoments, WindowPlan, impute, imputer_path
from netsem.metrics import psnr_db


def correlated_field(rng: np.random.Generator, h: int, w: int, c: int) -> np.ndarray:
    """A stationary (h, w, c) field correlated across channels and neighbouring positions."""
    base = rng.standard_normal((h + 2, w + 2, c))
    smooth = sum(base[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)) / 3.0
    mix = np.eye(c) + 0.5 * rng.standard_normal((c, c)) / np.sqrt(c)
    return (smooth @ mix).astype(np.float32)


def test_moments_of_white_noise_are_identity_at_lag_zero_and_zero_elsewhere():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((64, 64, 4)).astype(np.float32)
    m = WindowMoments.count([z], 3)
    assert m.lags.shape == (5, 5, 4, 4)
    # 4096 samples: each entry's standard error is ~1/64; 5 sigma
    assert np.abs(m.lags[2, 2] - np.eye(4)).max() < 0.08
    others = np.delete(m.lags.reshape(25, 4, 4), 12, axis=0)
    assert np.abs(others).max() < 0.08
    s = m.matrix()
    assert s.shape == (36, 36) and np.allclose(s, s.T)


def test_window_of_one_is_the_per_position_estimate():
    rng = np.random.default_rng(1)
    z = correlated_field(rng, 20, 24, 6)
    plan = WindowPlan(WindowMoments.count([correlated_field(rng, 40, 40, 6)], 1))
    mask = np.ones(z.shape, bool)
    mask[:, :, [1, 4]] = False
    mask[:7, :, 2] = False  # a band of rows of another channel
    covariance = (plan.s + plan.ridge * np.eye(6)).astype(np.float32)
    expected = cnn_numpy.impute(np.where(mask, z, 0), mask, covariance)
    assert np.allclose(impute(np.where(mask, z, 0), mask, plan), expected, atol=1e-5)


def shifted_copies(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w, 9): channel i is one white field seen at the i-th offset of a 3x3 window, plus noise
    (enough that the copies are not collinear): at one position the channels are independent,
    across neighbours they repeat each other."""
    u = rng.standard_normal((h + 2, w + 2))
    z = np.stack([u[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], -1)
    return (z + 0.3 * rng.standard_normal(z.shape)).astype(np.float32)


def test_the_window_estimates_lost_channels_better_than_one_position():
    rng = np.random.default_rng(2)
    fit = [shifted_copies(rng, 64, 64) for _ in range(8)]
    z = shifted_copies(rng, 32, 32)
    mask = np.ones(z.shape, bool)
    mask[:, :, [0, 3, 5]] = False
    errors = {}
    for window in (1, 3):
        plan = WindowPlan(WindowMoments.count(fit, window))
        est = impute(np.where(mask, z, 0), mask, plan)
        assert np.array_equal(est[mask], z[mask])  # received elements pass through
        errors[window] = float(np.mean((est - z)[~mask] ** 2))
    # one position knows nothing of a lost channel (error ~ its variance, 1.09); from the window, two
    # or more noisy copies of it (~0.09 + 0.09 / 2 inside the map; more on the border, where fewer)
    assert errors[1] > 0.9 and errors[3] < 0.3, errors


def test_torch_twin_agrees_and_passes_gradients_to_received_values():
    rng = np.random.default_rng(3)
    plan = WindowPlan(WindowMoments.count([correlated_field(rng, 40, 40, 5)], 3))
    z = correlated_field(rng, 12, 10, 5)
    mask = np.ones(z.shape, bool)
    mask[:, :, 2] = False
    mask[4:9, :, 0] = False
    mask[0, 0, :] = False  # a position that lost everything still gets an estimate from its neighbours
    expected = impute(np.where(mask, z, 0), mask, plan)
    zt = torch.from_numpy(np.where(mask, z, 0)).permute(2, 0, 1)[None].requires_grad_(True)
    mt = torch.from_numpy(mask.astype(np.float32)).permute(2, 0, 1)[None]
    out = WindowImputer(plan)(zt, mt)
    assert np.allclose(out[0].permute(1, 2, 0).detach().numpy(), expected, atol=1e-5)
    out[0, 2].sum().backward()  # the lost channel's estimates
    assert zt.grad[0, 1].abs().sum() > 0 and zt.grad[0, 2].abs().sum() == 0


def test_ridge_is_relative_to_the_moments_scale():
    rng = np.random.default_rng(4)
    field = correlated_field(rng, 30, 30, 4)
    small = WindowPlan(WindowMoments.count([field * 1e-3], 3))
    large = WindowPlan(WindowMoments.count([field], 3))
    assert small.ridge == pytest.approx(RIDGE * np.mean(np.diag(small.s)))
    mask = np.ones(field.shape, bool)
    mask[:, :, 1] = False
    # scaling the latent scales the estimate: the solve does not depend on the units
    a = impute(np.where(mask, field, 0) * 1e-3, mask, small)
    b = impute(np.where(mask, field, 0), mask, large)
    assert np.allclose(a * 1e3, b, atol=1e-4)


def test_the_default_codec_ships_moments_and_its_receiver_keeps_more():
    spec = LEARNED["cnn-sem-impute-q6"]
    assert imputer_path(spec.weights).is_file()
    image = np.ascontiguousarray(skimage.data.astronaut()[:256, :256])
    window = get_codec("cnn-sem-impute-q6")
    alone = get_codec("cnn-sem-impute-q6", window_impute=False)
    assert window.window_plan is not None and alone.window_plan is None
    frame = window.to_frame(image)
    full = window.from_frame(frame)
    assert np.array_equal(full, alone.from_frame(frame))  # nothing lost: nothing imputed

    rng = np.random.default_rng(0)
    gains = []
    for _ in range(4):
        received = np.ones(frame.latent.shape, bool)
        received[rng.choice(frame.latent.shape[0], 24, replace=False)] = False  # 40 % of the channels
        lossy = frame.with_received(received)
        gains.append(psnr_db(image, window.from_frame(lossy)) - psnr_db(image, alone.from_frame(lossy)))
    # measured +0.21 to +0.65 dB per draw on this crop; every draw must gain
    assert min(gains) > 0.1, gains


def test_engines_agree_with_the_window_imputer():
    image = np.ascontiguousarray(skimage.data.coffee()[:128, :192])
    numpy_codec = get_codec("cnn-sem-impute-q6", engine="numpy")
    torch_codec = get_codec("cnn-sem-impute-q6", engine="torch")
    frame = numpy_codec.to_frame(image)
    received = np.ones(frame.latent.shape, bool)
    received[::3] = False
    received[1, :5] = False
    lossy = frame.with_received(received)
    a, b = numpy_codec.from_frame(lossy), torch_codec.from_frame(lossy)
    assert np.abs(a.astype(int) - b).max() <= 1


def test_a_corrupt_or_mismatched_imputer_file_is_a_codec_error(tmp_path):
    spec = LEARNED["cnn-sem-impute-q6"]
    weights = tmp_path / spec.weights.name
    shutil.copy(spec.weights, weights)
    imputer_path(weights).write_bytes(b"not a safetensors file")
    with pytest.raises(CodecError, match="imputer file .* is corrupt"):
        LearnedCodec("cnn-sem-impute-q6", weights)
    WindowMoments(3, np.zeros((5, 5, 7, 7))).save(imputer_path(weights), {})
    with pytest.raises(CodecError, match="for 7 channels, the network has 60"):
        LearnedCodec("cnn-sem-impute-q6", weights)
    imputer_path(weights).unlink()
    assert LearnedCodec("cnn-sem-impute-q6", weights).window_plan is None  # none shipped: per position


def test_a_frame_of_many_window_patterns_falls_back_to_each_position_alone():
    rng = np.random.default_rng(5)
    plan = WindowPlan(WindowMoments.count([correlated_field(rng, 40, 40, 6)], 3))
    z = correlated_field(rng, 60, 8, 6)
    mask = rng.random(z.shape) > 0.3  # every row its own pattern: a hostile peer's one-row bands
    groups = plan.groups(mask)
    flat = mask.reshape(-1, 6)
    patterns = len(np.unique(flat[~flat.all(axis=1)], axis=0))
    assert patterns > MAX_WINDOW_GROUPS and len(groups) == patterns  # one small solve per centre pattern
    assert all(len(g.received) <= 6 for g in groups)  # the centre's channels only
    alone = WindowPlan(WindowMoments(1, plan.moments.lags[2:3, 2:3]))
    assert np.allclose(impute(np.where(mask, z, 0), mask, plan), impute(np.where(mask, z, 0), mask, alone),
                       atol=1e-5)
