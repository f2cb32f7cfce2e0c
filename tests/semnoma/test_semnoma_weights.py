"""The shipped seed-004 weights: safetensors, small, and they decode what they were trained for."""

import numpy as np
import pytest
import torch

from netsem.multiuser.data import to_tensor
from netsem.semnoma.channel import Uplink
from netsem.semnoma.classic import to_numpy
from netsem.semnoma.evaluate import held_out_pairs
from netsem.semnoma.scheme import noma_sic, oma
from netsem.semnoma.weights import SHIPPED, load_model, resolve
from netsem.metrics import psnr_db


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_models_load_and_are_small(name):
    model, meta = load_model(name)
    assert resolve(name).stat().st_size < 10 * 2**20
    assert meta["kind"] == ("refiner" if name == "refiner" else "jscc") and "training" in meta


@torch.no_grad()
def test_trained_models_decode_held_out_crops():
    """8 pairs of evaluation crops (never trained on), AWGN 20 dB. On 64 pairs the student
    measured 20.86 / 18.78 dB and the teacher 26.31 / 27.12 dB (README); these 8 pairs give
    21.0 / 17.1 and 27.5 / 23.7: the bounds leave 1-1.5 dB for the smaller sample."""
    images = held_out_pairs(8, 32)
    tensor = to_tensor(images.reshape(-1, 32, 32, 3)).reshape(8, 2, 3, 32, 32)
    uplink = Uplink.draw(torch.full((8,), 20.0), 512, "awgn", generator=torch.Generator().manual_seed(0))

    def psnr(out):
        decoded = to_numpy(out)
        return [np.mean([psnr_db(images[i, k], decoded[i, k]) for i in range(8)]) for k in (0, 1)]

    near, far = psnr(noma_sic(load_model("student")[0], tensor, uplink).images)
    assert near > 19.5 and far > 16.0
    teacher = psnr(oma(load_model("teacher")[0], tensor, uplink).images)
    assert min(teacher) > 22.5 and min(teacher) > near + 2
