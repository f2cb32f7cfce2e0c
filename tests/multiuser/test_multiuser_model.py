"""Sizes and symbol accounting; the common feature ignores the members' order; tiles; weight
files round-trip; a resumed training run continues exactly where the uninterrupted one goes."""

from pathlib import Path

import numpy as np
import pytest
import torch

from netsem.multiuser.config import GssmaConfig
from netsem.multiuser.model import Gssma
from netsem.multiuser.scheme import encode, reconstruct, tiles_of, untile
from netsem.multiuser.train import TrainOptions, train
from netsem.multiuser.weights import load_checkpoint, load_model, save_model

TINY = {"width1": 8, "width2": 16, "width_common": 16, "decoder_grid_width": 8, "heads": 2, "transformer_layers": 1}


@pytest.mark.parametrize("ratio, common, private", [(0.2, 1025, 819), (0.1, 510, 922), (0.0, 0, 1024)])
def test_symbols_per_image(ratio, common, private):
    c = GssmaConfig(common_ratio=ratio)
    assert (c.common_symbols, c.private_symbols) == (common, private)
    assert c.private_symbols + c.common_symbols // c.group_size == 1024  # what the transmitter spends per image


def test_shapes_and_member_order():
    torch.manual_seed(0)
    model = Gssma(GssmaConfig(**TINY)).eval()
    x = torch.rand(10, 3, 32, 32)
    with torch.no_grad():
        enc = encode(model, x, 10, 2, cluster=False)
        assert enc.private.shape == (10, 2 * 819) and enc.common.shape == (2, 2 * 1025)
        z = model.encode_semantic(x)
        a = model.encode_common(z, torch.tensor([[0, 1, 2, 3, 4]]))
        b = model.encode_common(z, torch.tensor([[4, 2, 0, 3, 1]]))
        assert torch.allclose(a, b, atol=1e-5)
        assert reconstruct(model, enc, "rayleigh", 10.0, torch.Generator().manual_seed(0)).shape == (10, 3, 32, 32)


def test_tiles_round_trip():
    x = torch.rand(3, 3, 64, 96)
    t = tiles_of(x)
    assert t.shape == (18, 3, 32, 32) and torch.equal(t[1], x[0, :, :32, 32:64])
    assert torch.equal(untile(t, 64, 96), x)


def test_weights_round_trip(tmp_path: Path):
    model = Gssma(GssmaConfig(**TINY, common_ratio=0.1))
    save_model(tmp_path / "m.safetensors", model, {"training": "{}"})
    loaded, meta = load_model(tmp_path / "m.safetensors")
    assert loaded.config == model.config and meta["kind"] == "gssma"
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-3 * (1 + a.abs().max().item())), name  # fp16 storage


def test_resume_continues_the_same_run(tmp_path: Path):
    """4 steps in one go against 2 + 2 with a checkpoint between: the same weights (fp32
    checkpoint; tolerance for summation order 1e-6)."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (80, 96, 3), dtype=np.uint8) for _ in range(12)]
    config = GssmaConfig(**TINY)
    opts = {"lr": 1e-3, "groups": 2, "log_every": 1000, "checkpoint_every": 1e9, "validate_batches": 1}
    def quiet(line):
        pass

    whole = train(config, photos, TrainOptions(steps=4, **opts), tmp_path / "a.safetensors",
                  checkpoint=tmp_path / "a.ckpt", log=quiet)
    train(config, photos, TrainOptions(steps=2, **opts), tmp_path / "b.safetensors", checkpoint=tmp_path / "b.ckpt",
          log=quiet)
    resumed = train(config, photos, TrainOptions(steps=4, **opts), tmp_path / "b.safetensors",
                    checkpoint=tmp_path / "b.ckpt", log=quiet)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    model = Gssma(config)
    step, _, history = load_checkpoint(tmp_path / "b.ckpt", model, torch.optim.Adam(model.parameters()))
    assert step == 4 and [h["step"] for h in history] == [2, 4]
