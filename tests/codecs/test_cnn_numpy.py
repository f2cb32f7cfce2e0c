"""The numpy engine of the cnn codecs (`cnn_numpy`) computes what `models.CNNNet` computes in
torch: each layer kind on odd sizes, and every shipped cnn codec end to end, to float rounding."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F
from PIL import Image

from netsem.codecs import cnn_numpy
from netsem.codecs.config import CNN_STAGES, NetConfig
from netsem.codecs.learned import LearnedCodec
from netsem.codecs.models import build_net
from netsem.codecs.registry import LEARNED

CNN_CODECS = [name for name, spec in LEARNED.items() if name.startswith("cnn")]


@pytest.mark.parametrize("cin,cout,size", [(3, 16, (13, 10)), (24, 8, (9, 14)), (16, 3, (8, 8))])
def test_stride2_convolutions_equal_torch(cin, cout, size):
    rng = np.random.default_rng(cin)
    x = rng.standard_normal((*size, cin)).astype(np.float32)
    w = rng.standard_normal((cout, cin, 5, 5)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    ref = F.conv2d(torch.from_numpy(x).permute(2, 0, 1)[None], torch.from_numpy(w), torch.from_numpy(b), 2, 2)
    got = cnn_numpy.conv5x5_stride2(x, cnn_numpy._conv_taps(w), b)
    np.testing.assert_allclose(got, ref[0].permute(1, 2, 0).numpy(), rtol=1e-4, atol=1e-4)
    wt = rng.standard_normal((cin, cout, 5, 5)).astype(np.float32)
    ref = F.conv_transpose2d(torch.from_numpy(x).permute(2, 0, 1)[None], torch.from_numpy(wt), torch.from_numpy(b),
                             2, 2, 1)
    got = cnn_numpy.transposed5x5_stride2(x, cnn_numpy._transposed_phases(wt), b)
    np.testing.assert_allclose(got, ref[0].permute(1, 2, 0).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("down", sorted(CNN_STAGES))
def test_each_depth_runs_alike_in_numpy_and_torch(down):
    config = NetConfig(arch="cnn", latent_channels=6, hidden=8, down=down, sem_scale=True, sem_broadcast=True,
                       impute=True)
    torch.manual_seed(down)
    net = build_net(config).eval()
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.encoder) == CNN_STAGES[down]
    runtime = cnn_numpy.CNNRuntime(config, {k: v.detach().numpy() for k, v in net.state_dict().items()})
    x = np.random.default_rng(down).random((48, 64, 3), np.float32)
    with torch.no_grad():
        y = net.analysis(torch.from_numpy(x).permute(2, 0, 1)[None])
        image = net.decode_map(net.decoder_input(y))
    assert y.shape[-2:] == (48 // down, 64 // down)
    np.testing.assert_allclose(runtime.analysis(x), y[0].permute(1, 2, 0).numpy(), atol=1e-4)
    np.testing.assert_allclose(runtime.decode_map(runtime.decoder_input(runtime.analysis(x))),
                               image[0].permute(1, 2, 0).numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="downsamples by 8 or 16"):
        build_net(NetConfig(arch="cnn", down=4))


def photo() -> np.ndarray:
    # not a multiple of 16: the padding is part of what must agree
    return np.asarray(Image.fromarray(skimage.data.coffee()).resize((200, 136), Image.LANCZOS))


@pytest.mark.parametrize("name", CNN_CODECS)
def test_every_cnn_codec_decodes_alike_in_numpy_and_torch(name):
    spec = LEARNED[name]
    fast, ref = (LearnedCodec(name, spec.weights, engine=e) for e in ("numpy", "torch"))
    assert fast.num_parameters == ref.num_parameters
    img = photo()
    enc, enc_ref = fast.to_frame(img), ref.to_frame(img)
    # a value may cross a rounding boundary by float rounding, very rarely
    assert np.mean(enc.latent != enc_ref.latent) < 1e-3
    assert np.abs(enc.latent.astype(int) - enc_ref.latent).max() <= 1
    rng = np.random.default_rng(1)
    mask = np.ones(enc.latent.shape, bool)
    mask[rng.random(enc.latent.shape[0]) < 0.3] = False  # whole channels lost
    mask[:, :3, :] &= rng.random(mask[:, :3, :].shape) < 0.5  # and scattered elements
    for frame in (enc, enc.with_received(mask)):
        a, b = fast.from_frame(frame), ref.from_frame(frame)
        diff = np.abs(a.astype(int) - b)
        assert diff.max() <= 1 and np.mean(diff > 0) < 1e-3, name


def test_the_default_codec_sends_without_importing_torch():
    code = ("import sys; from netsem.codecs.registry import get_codec; import skimage.data; "
            "c = get_codec('cnn-sem-impute-ec'); f = c.to_frame(skimage.data.astronaut()[:64, :96]); "
            "out = c.from_frame(f); assert out.shape == (64, 96, 3); print('torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"
