"""QAM mapping, CRC24A, and uncoded BER against closed forms (AWGN and Rayleigh).

Tolerance: measured BER within 10 % (relative) of the closed form; each point has >= 2000
expected bit errors (AWGN) or >= 40000 independent fades (Rayleigh), so 10 % is > 4 sigma.
"""

import numpy as np
import pytest
from scipy.special import erfc

from netsem.phy.crc import crc24a
from netsem.phy.mimo import draw_channel, transmit
from netsem.phy.modem import qam_demap, qam_map, qam_points


def q(x):
    return 0.5 * erfc(x / np.sqrt(2))


def rayleigh_q(a2, snr):
    """E[Q(sqrt(a2 * g))] for g exponential with mean snr."""
    c = a2 * snr / 2
    return 0.5 * (1 - np.sqrt(c / (1 + c)))


def ber_awgn(m, ebno):
    if m == 2:
        return q(np.sqrt(2 * ebno))
    x = np.sqrt(4 * ebno / 5)
    return 0.75 * q(x) + 0.5 * q(3 * x) - 0.25 * q(5 * x)


def ber_rayleigh(m, ebno):
    if m == 2:
        return rayleigh_q(2, ebno)
    a2 = 4 / 5
    return 0.75 * rayleigh_q(a2, ebno) + 0.5 * rayleigh_q(9 * a2, ebno) - 0.25 * rayleigh_q(25 * a2, ebno)


@pytest.mark.parametrize("m", [2, 4, 6])
def test_points_match_sionna(m):
    from sionna.phy.mapping import Constellation

    ours = qam_points(m)
    theirs = Constellation("qam", m).points.numpy()
    assert np.allclose(ours, theirs, atol=1e-6)
    assert np.mean(np.abs(ours) ** 2) == pytest.approx(1.0)


def test_crc24a_matches_sionna():
    import torch
    from sionna.phy.fec.crc import CRCEncoder

    data = bytes(np.random.default_rng(3).integers(0, 256, 57, dtype=np.uint8))
    bits = torch.tensor(np.unpackbits(np.frombuffer(data, np.uint8)), dtype=torch.float32)[None]
    coded = CRCEncoder("CRC24A")(bits).numpy()[0].astype(np.uint8)
    assert np.packbits(coded[-24:]).tobytes() == crc24a(data)
    assert crc24a(b"") == b"\x00\x00\x00" and crc24a(data) != crc24a(data[:-1] + b"\x00")


@pytest.mark.parametrize("m, ebno_db", [(2, 0.0), (2, 4.0), (2, 6.0), (4, 4.0), (4, 8.0)])
def test_uncoded_ber_awgn(m, ebno_db):
    rng = np.random.default_rng(10 + m)
    ebno = 10 ** (ebno_db / 10)
    n0 = 1 / (m * ebno)
    expected = ber_awgn(m, ebno)
    nbits = int(np.ceil(3000 / expected / m)) * m
    bits = rng.integers(0, 2, nbits).astype(np.uint8)
    tx = transmit(rng, qam_map(bits, m), np.eye(1, dtype=complex), n0=n0, precoder_kind="none", power="equal",
                  detector="zf", csi_error=0.0)
    ber = np.mean((qam_demap(tx.estimates, tx.noise_var, m) > 0) != bits)
    assert ber == pytest.approx(expected, rel=0.10)


@pytest.mark.parametrize("m, ebno_db", [(2, 5.0), (2, 15.0), (4, 10.0), (4, 20.0)])
def test_uncoded_ber_rayleigh(m, ebno_db):
    rng = np.random.default_rng(20 + m)
    ebno = 10 ** (ebno_db / 10)
    n0 = 1 / (m * ebno)
    expected = ber_rayleigh(m, ebno)
    nsym = max(200_000, int(3000 / expected / m))
    bits = rng.integers(0, 2, nsym * m).astype(np.uint8)
    h = draw_channel(rng, 1, 1, "rayleigh", size=nsym)[:, 0, 0]  # one fade per symbol
    assert np.mean(np.abs(h) ** 2) == pytest.approx(1.0, rel=0.02)
    noise = (rng.standard_normal(nsym) + 1j * rng.standard_normal(nsym)) * np.sqrt(n0 / 2)
    y = h * qam_map(bits, m) + noise
    llr = qam_demap(y / h, n0 / np.abs(h) ** 2, m)
    ber = np.mean((llr > 0) != bits)
    assert ber == pytest.approx(expected, rel=0.10)


def test_rician_k_interpolates():
    rng = np.random.default_rng(5)
    h0 = draw_channel(rng, 1, 1, "rician", 0.0, size=100_000)[:, 0, 0]
    h10 = draw_channel(rng, 1, 1, "rician", 10.0, size=100_000)[:, 0, 0]
    assert np.mean(np.abs(h0) ** 2) == pytest.approx(1.0, rel=0.02)
    assert np.mean(np.abs(h10) ** 2) == pytest.approx(1.0, rel=0.02)
    # K = 10 fades far less deeply than K = 0 (Rayleigh): P(|h|^2 < 0.1) is 9.5 % vs ~0.0 %
    assert np.mean(np.abs(h0) ** 2 < 0.1) == pytest.approx(1 - np.exp(-0.1), abs=0.005)
    assert np.mean(np.abs(h10) ** 2 < 0.1) < 0.001
