"""The analog (torch) face: power normalisation, gradients, noise level, MIMO, and NOMA SIC.

NOMA references are exact per-dimension QPSK formulas (AWGN, hard SIC); tolerance 10 %
relative with >= 2000 expected errors per point.
"""

import numpy as np
import pytest
import torch
from scipy.special import erfc

from netsem.phy.analog import (
    AnalogChannel,
    complex_to_real,
    noma_downlink,
    noma_uplink,
    normalize_power,
    real_to_complex,
    waterfill,
)
from netsem.phy.modem import qam_points


def q(x):
    return 0.5 * erfc(x / np.sqrt(2))


def test_pairing_and_power():
    x = torch.randn(3, 10) * 5
    z = real_to_complex(x)
    assert z.shape == (3, 5) and torch.allclose(complex_to_real(z), x)
    assert torch.allclose(normalize_power(z).abs().pow(2).mean(-1), torch.ones(3))


def test_awgn_noise_level_and_gradient():
    x = torch.randn(64, 2000, requires_grad=True)
    y = AnalogChannel("siso awgn snr 10dB detector zf", torch.Generator().manual_seed(0))(x)
    ref = complex_to_real(normalize_power(real_to_complex(x)))
    mse = (y - ref).pow(2).mean().item()
    assert mse == pytest.approx(0.1 / 2, rel=0.03)  # N0 / 2 per real dimension
    y.pow(2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_analog_mimo_lmmse_beats_zf_and_waterfill_matches_numpy():
    from netsem.phy.mimo import waterfill as np_waterfill

    x = torch.randn(400, 256)
    ref = complex_to_real(normalize_power(real_to_complex(x)))
    mse = {}
    for det in ("zf", "lmmse"):
        ch = AnalogChannel(f"mimo 2x2 rayleigh snr 0dB precoder none detector {det}", torch.Generator().manual_seed(1))
        mse[det] = (ch(x) - ref).pow(2).mean().item()
    assert mse["lmmse"] < 0.5 * mse["zf"]
    gains = torch.tensor([[5.0, 0.5], [0.2, 0.1], [100.0, 90.0]])
    ours = waterfill(gains)
    for row, g in zip(ours, gains):
        assert np.allclose(row.numpy(), np_waterfill(g.numpy()), atol=1e-6)


def _qpsk(n, gen):
    idx = torch.randint(0, 4, (n,), generator=gen)
    return torch.as_tensor(qam_points(2).copy(), dtype=torch.complex64)[idx][None, :]


def _ber(est, truth):
    return 0.5 * ((est.real > 0) != (truth.real > 0)).float().mean().item() + \
        0.5 * ((est.imag > 0) != (truth.imag > 0)).float().mean().item()


def test_noma_downlink_sic_matches_theory():
    a, snr_far, snr_near = 0.75, 10.0, 12.0
    gen = torch.Generator().manual_seed(4)
    n = 400_000
    s_far, s_near = _qpsk(n, gen), _qpsk(n, gen)
    out = noma_downlink(s_far, s_near, far_power=a, snr_far_db=snr_far, snr_near_db=snr_near, sic="hard", generator=gen)
    genie = noma_downlink(s_far, s_near, far_power=a, snr_far_db=snr_far, snr_near_db=snr_near, sic="genie",
                          generator=gen)
    a1, a2 = np.sqrt(a / 2), np.sqrt((1 - a) / 2)  # per-dimension amplitudes
    sf = np.sqrt(10 ** (-snr_far / 10) / 2)
    sn = np.sqrt(10 ** (-snr_near / 10) / 2)
    far_theory = 0.5 * (q((a1 + a2) / sf) + q((a1 - a2) / sf))
    # near user, hard SIC: x ~ N(a1 + b2 a2, sn^2) given b1 = +1
    def prob(lo, hi, mean):
        return q((lo - mean) / sn) - q((hi - mean) / sn)
    err_plus = prob(0, a1, a1 + a2) + prob(-np.inf, -a1, a1 + a2)
    err_minus = prob(a1, np.inf, a1 - a2) + prob(-a1, 0, a1 - a2)
    near_theory = 0.5 * (err_plus + err_minus)
    genie_theory = q(a2 / sn)
    assert _ber(out.far, s_far) == pytest.approx(far_theory, rel=0.1)
    assert _ber(out.near, s_near) == pytest.approx(near_theory, rel=0.1)
    assert _ber(genie.near, s_near) == pytest.approx(genie_theory, rel=0.1)
    assert near_theory > 1.3 * genie_theory  # SIC error propagation is visible and modelled


def test_noma_uplink_sic_and_gradient():
    gen = torch.Generator().manual_seed(5)
    n = 200_000
    s1, s2 = _qpsk(n, gen), _qpsk(n, gen)
    strong, weak = noma_uplink(s1, s2, snr_strong_db=15.0, snr_weak_db=5.0, sic="genie", generator=gen)
    # genie SIC: the weak user sees only noise, BER = Q(sqrt(SNR_weak))
    assert _ber(weak, s2) == pytest.approx(q(np.sqrt(10 ** 0.5)), rel=0.1)
    # the strong user, weak as interference: exact per-dim formula
    p1, p2 = np.sqrt(10 ** 1.5 / 2), np.sqrt(10 ** 0.5 / 2)
    sig = np.sqrt(0.5)
    assert _ber(strong, s1) == pytest.approx(0.5 * (q((p1 + p2) / sig) + q((p1 - p2) / sig)), rel=0.15)
    # a learned canceller would get gradients through the callable
    feat = torch.randn(1, 64, requires_grad=True)
    z = torch.complex(feat[:, :32], feat[:, 32:])
    _, weak = noma_uplink(z, z * 0.5, snr_strong_db=10, snr_weak_db=5, sic=lambda r: 0.9 * r, generator=gen)
    weak.abs().sum().backward()
    assert feat.grad is not None and feat.grad.abs().sum() > 0
