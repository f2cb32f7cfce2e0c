"""The per-user channel is the analog PHY face's SISO channel: identical outputs for the same
generator on unit-power input; noise level; erased symbols come out as 0."""

import pytest
import torch

from netsem.multiuser.channel import CHANNELS, phy_spec_text, receive, transmit
from netsem.phy.analog import AnalogChannel


@pytest.mark.parametrize("channel", CHANNELS)
def test_same_as_analog_face(channel):
    x = transmit(torch.randn(16, 300, generator=torch.Generator().manual_seed(0)))
    ours = receive(x, channel, 7.0, torch.Generator().manual_seed(5))
    face = AnalogChannel(phy_spec_text(channel, 7.0), torch.Generator().manual_seed(5))(x)
    assert torch.allclose(ours, face, atol=1e-5)


def test_awgn_noise_and_erasures():
    x = transmit(torch.randn(64, 2000, generator=torch.Generator().manual_seed(1)))
    y = receive(x, "awgn", 10.0, torch.Generator().manual_seed(2))
    n0 = 0.1
    # LMMSE scales by 1 / (1 + N0): error per real dimension = N0 / (2 (1 + N0)) + bias^2 x power
    expected = (n0 / (1 + n0)) / 2
    assert (y - x).pow(2).mean().item() == pytest.approx(expected, rel=0.03)
    erased = torch.zeros(64, 1000, dtype=torch.bool)
    erased[:, ::3] = True
    z = receive(x, "awgn", 10.0, torch.Generator().manual_seed(2), erased)
    assert (z.reshape(64, 1000, 2)[erased] == 0).all()
    assert torch.equal(z.reshape(64, 1000, 2)[~erased], y.reshape(64, 1000, 2)[~erased])
