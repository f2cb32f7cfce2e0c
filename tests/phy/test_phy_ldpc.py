"""5G LDPC: the `ldpc`-package decoder against Sionna's on the same LLRs, and the waterfall.

BPSK-equivalent AWGN LLRs for the 1200-byte code (k = 4812, n = 9624, rate 1/2).
"""

import numpy as np
import pytest
from scipy.special import erfc

from netsem.phy import phy_stage
from netsem.phy.ldpc5g import Ldpc5gCode


@pytest.fixture(scope="module")
def code():
    return Ldpc5gCode(4812, 9624, iterations=20)


def _llrs(code, ebno_db, count, seed):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, 2, (count, code.k)).astype(np.uint8)
    c = code.encode(u)
    sigma2 = 1 / (2 * 0.5 * 10 ** (ebno_db / 10))
    y = (1 - 2 * c.astype(float)) + rng.normal(0, np.sqrt(sigma2), c.shape)
    return u, -2 * y / sigma2


def test_encoder_output_is_a_codeword(code):
    u, llr = _llrs(code, 40.0, 4, 1)  # practically noiseless
    for kind in ("bp", "sionna"):
        bits, ok = code.decode(llr, kind)
        assert np.array_equal(bits, u) and ok.all()


def test_bp_decoder_matches_sionna_bler(code):
    """Eb/N0 1.1 dB (mid-waterfall), 48 codewords, the same LLRs into both decoders.

    Both are flooding sum-product with 20 iterations, so decisions agree codeword by codeword
    (measured: identical); tolerance: BLER within 0.1 and >= 90 % of outcomes equal.
    """
    u, llr = _llrs(code, 1.1, 48, 2)
    bp, ok = code.decode(llr, "bp")
    sn, _ = code.decode(llr, "sionna")
    fail_bp = (bp != u).any(axis=1)
    fail_sn = (sn != u).any(axis=1)
    assert 0.02 < fail_sn.mean() < 0.98  # the point is in the waterfall, so the test can tell
    assert abs(fail_bp.mean() - fail_sn.mean()) <= 0.1
    assert np.mean(fail_bp == fail_sn) >= 0.9
    assert not np.any(ok & fail_bp)  # a converged codeword is never wrong
    assert ok.mean() >= 1 - fail_bp.mean() - 0.15  # and few right ones end unconverged


def test_waterfall_through_the_stage():
    """SISO AWGN, LDPC 1/2, QPSK (SNR = Es/N0 = Eb/N0), 1200-byte datagrams.

    Reference (FACTS.md, Sionna): BLER 0.73 at 1.0 dB, 0.03 at 1.25 dB, 0 from 1.5 dB.
    Here: >= 0.9 at 0.5 dB, 0 at 2.0 dB, while the raw (pre-FEC) BER of the coded bits at
    2 dB is Q(sqrt(Es/N0)) = 10.4 % (each coded bit gets Es/2).
    """
    data = [bytes(np.random.default_rng(i).integers(0, 256, 1200, dtype=np.uint8)) for i in range(16)]
    bler = {}
    for snr in (0.5, 2.0):
        stage = phy_stage(f"siso awgn snr {snr}dB ldpc 1/2 qpsk", seed=3)
        outs = stage.process_batch(data, [0.0] * len(data))
        bler[snr] = np.mean([o.datagram is None for o in outs])
        if snr == 2.0:
            raw = stage.stats["raw_bit_errors"] / stage.stats["coded_bits"]
            assert raw == pytest.approx(0.5 * erfc(np.sqrt(10 ** 0.2 / 2)), rel=0.05)
            assert all(o.datagram == d for o, d in zip(outs, data))
    assert bler[0.5] >= 0.9 and bler[2.0] == 0.0


@pytest.mark.parametrize("k, n", [(4812, 9624), (1024, 3072), (400, 600), (3000, 3200), (100, 480)])
def test_numpy_encoder_is_bit_exact_with_sionnas(k, n):
    """The numpy encoder (fast, batched over the bits of a byte) gives Sionna's codewords."""
    import torch
    from sionna.phy.fec.ldpc import LDPC5GEncoder

    code = Ldpc5gCode(k, n)
    u = np.random.default_rng(k).integers(0, 2, (6, k)).astype(np.uint8)
    with torch.no_grad():
        reference = LDPC5GEncoder(k, n)(torch.from_numpy(u.astype(np.float32))).numpy().astype(np.uint8)
    assert np.array_equal(code.encode(u), reference)
