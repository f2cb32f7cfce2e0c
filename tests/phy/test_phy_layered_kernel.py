"""The compiled layered min-sum kernel (numba) decides exactly as the numpy decoder: the same
hard decisions, convergence flags and iteration counts on the same LLRs, whatever the batch,
the transport-block groups, or the worker threads it is split over."""

import numpy as np
import pytest

from netsem.phy import layered
from netsem.phy.ldpc5g import MIN_SUM_ALPHA, Ldpc5gCode

pytestmark = pytest.mark.skipif(layered.decode_batch is None, reason="numba is not installed")


def _llrs(code, count, ebn0_db, seed):
    """BPSK over AWGN, as the decoder takes them: [columns, count], log P(0)/P(1), fillers zero."""
    rng = np.random.default_rng(seed)
    words = code.encode(rng.integers(0, 2, (count, code.k), dtype=np.uint8))
    sigma2 = 1 / (2 * (code.k / code.n) * 10 ** (np.asarray(ebn0_db, dtype=float) / 10))
    sigma2 = np.broadcast_to(sigma2, (count,))[:, None]
    received = (1 - 2.0 * words) + rng.standard_normal(words.shape) * np.sqrt(sigma2)
    full = np.zeros((code.pcm.shape[1], count), dtype=np.float32)
    full[code.positions] = (2 * received / sigma2).T
    return full


@pytest.mark.parametrize(("k", "n", "ebn0_db"), [(1024, 2048, (0.5, 2.5)), (4812, 9624, (0.8, 1.6)),
                                                 (500, 1500, (-1.0, 1.0))])
def test_compiled_kernel_decides_exactly_as_numpy(k, n, ebn0_db):
    code = Ldpc5gCode(k, n)
    decoder = layered.LayeredMinSum(code.pcm, code.z, max_iter=20, alpha=MIN_SUM_ALPHA,
                                    known_zero=np.arange(code.k, code.k_ldpc))
    count = 48
    llr = _llrs(code, count, np.linspace(*ebn0_db, count), seed=k)
    llr[:, 3] = -0.0  # an all-zero codeword, signed: the sign bit decides as in numpy
    groups = np.repeat(np.arange(count // 3), 3)[np.random.default_rng(0).permutation(count)]
    for g in (None, groups):
        compiled = decoder.decode(llr, g)
        reference = decoder.decode(llr, g, compiled=False)
        for got, want in zip(compiled, reference):
            np.testing.assert_array_equal(got, want)
        # across the waterfall: some converge, some fail, some stop with their group
        ok, iterations = reference[1], reference[2]
        assert 0 < ok.sum() < count and iterations.min() < iterations.max()
    # one at a time, and split into halves: the same decisions
    full = decoder.decode(llr)
    for i in range(0, count, 7):
        hard, ok, iterations = decoder.decode(llr[:, [i]])
        np.testing.assert_array_equal(hard[:, 0], full[0][:, i])
        assert ok[0] == full[1][i] and iterations[0] == full[2][i]
