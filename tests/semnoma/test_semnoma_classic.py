"""The classic chain's digital SIC: decodes when the SINR allows, fails when it does not."""

import numpy as np
import torch

from netsem.semnoma.channel import Uplink
from netsem.semnoma.classic import candidates, transmit


def images():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (4, 2, 1, 1, 3))
    return np.clip(base + rng.integers(-20, 20, (4, 2, 32, 32, 3)), 0, 255).astype(np.uint8)


def uplink(snr, powers=(0.8, 0.2), channel="awgn"):
    return Uplink.draw(torch.full((4,), float(snr)), 512, channel, powers, torch.Generator().manual_seed(1))


def test_sic_decodes_both_users_when_the_sinr_allows_it():
    pool = candidates(images(), 512)
    qpsk = next(c for c in pool if "qpsk LDPC 2/3" in c.setting)
    # near user decoded first at SINR 0.8 / (0.2 + 1/P) ~ 6 dB, then the far one alone at 20 - 7 = 13 dB
    assert transmit(qpsk, uplink(20)).all()
    # at -5 dB nothing decodes
    assert not transmit(qpsk, uplink(-5)).any()


def test_equal_powers_break_sic_for_a_dense_constellation():
    pool = candidates(images(), 512)
    dense = next(c for c in pool if "64qam LDPC 3/4" in c.setting)
    # 0.5 / 0.5: the first user meets 0 dB SINR, 64-QAM 3/4 cannot decode, nor the second under it
    assert not transmit(dense, uplink(30, (0.5, 0.5))).any()
    assert transmit(dense, uplink(40, (0.99, 0.01))).all()
