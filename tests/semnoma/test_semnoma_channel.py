"""The uplink's draws, SIC order, interference and context against their definitions."""

import math

import pytest
import torch

from netsem.semnoma.channel import Uplink, mmse
from netsem.semnoma.config import AirSpec


def draw(channel="awgn", snr=10.0, batch=4, symbols=64, powers=(0.8, 0.2), seed=0):
    return Uplink.draw(torch.full((batch,), snr), symbols, channel, powers, torch.Generator().manual_seed(seed))


def test_awgn_gains_order_interference_and_context():
    up = draw(snr=10.0)
    assert torch.allclose(up.gains.abs() ** 2, torch.tensor([[8.0, 2.0]]).expand(4, 2))
    assert (up.order() == torch.tensor([0, 1])).all()
    # the near user is decoded first and meets the far user's power; the far one meets nobody
    assert torch.allclose(up.interference(), torch.tensor([[2.0, 0.0]]).expand(4, 2))
    ctx = up.context()
    assert torch.allclose(ctx[0, 0], torch.tensor([10 * math.log10(8) / 20, 10 * math.log10(3) / 20, 0.0]))
    assert torch.allclose(up.context(orthogonal=True)[..., 1], torch.zeros(4, 2))


def test_rayleigh_statistics_and_noise_power():
    """E|h|^2 = 1 (tolerance 0.05 at 20 000 draws: 3.5 standard errors), noise CN(0, 1)."""
    up = draw("rayleigh", batch=10_000, symbols=50, seed=3)
    assert abs(float(up.fading.abs().pow(2).mean()) - 1) < 0.05
    assert abs(float(up.noise.abs().pow(2).mean()) - 1) < 0.01
    # SIC order follows each image's received power
    power = up.gains.abs()
    assert (power.gather(1, up.order())[:, 0] >= power.gather(1, up.order())[:, 1]).all()


def test_superposition_and_mmse_are_the_formulas():
    up = draw(batch=2, symbols=8, snr=20.0)
    s = torch.randn(2, 2, 8, dtype=torch.complex64)
    y = up.superpose(s)
    assert torch.allclose(y, up.gains[:, 0:1] * s[:, 0] + up.gains[:, 1:2] * s[:, 1] + up.noise)
    r = mmse(y, up.gains[:, 0], up.interference()[:, 0])
    g = up.gains[:, 0:1]
    assert torch.allclose(r, g.conj() * y / (g.abs() ** 2 + 1 + up.interference()[:, 0:1]))


def test_air_spec_is_a_function_of_seed_and_frame():
    a, b = AirSpec(channel="rayleigh", seed=5), AirSpec(channel="rayleigh", seed=5)
    assert torch.equal(a.uplink(7, 16).noise, b.uplink(7, 16).noise)
    assert not torch.equal(a.uplink(7, 16).fading, a.uplink(8, 16).fading)


@pytest.mark.parametrize("options, words", [
    ({"powers": "0.5,0.6"}, "sum to 1"), ({"channel": "rician"}, "unknown channel"), ({"snr": "ten"}, "noma options"),
    ({"colour": "red"}, "unknown noma option"), ({"users": "3"}, "power coefficients")])
def test_air_spec_rejects_nonsense(options, words):
    with pytest.raises(ValueError, match=words):
        AirSpec.parse(options)
