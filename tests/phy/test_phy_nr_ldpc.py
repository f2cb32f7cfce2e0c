"""Our 5G NR LDPC construction (38.212, no Sionna import) gives Sionna's decoder matrix (lifted,
then pruned), its lifting and its base graph, for codes across both base graphs,
every lifting set, filler bits and rates from 1/5 to 0.95."""

import numpy as np
import pytest

from netsem.phy.nr_ldpc import nr_ldpc_code

CODES = [(12, 60), (40, 120), (100, 120), (292, 600), (500, 1500), (641, 900), (1024, 2048), (2424, 3000),
         (3824, 5800), (3840, 4100), (4812, 9624), (4000, 5000), (8448, 8900), (8448, 25344), (7000, 21000),
         (1200, 6000), (333, 1665), (97, 485), (5000, 5264)]


@pytest.mark.parametrize(("k", "n"), CODES)
def test_our_matrices_are_sionnas(k, n):
    from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder

    encoder = LDPC5GEncoder(k, n)
    decoder = LDPC5GDecoder(encoder)
    ours = nr_ldpc_code(k, n)
    assert (ours.z, ours.k_ldpc) == (encoder.z, encoder.k_ldpc)
    assert ours.base_graph == int(encoder._bg[-1])
    assert ours.pcm.shape == decoder.pcm.shape
    assert abs(ours.pcm.astype(np.int8) - decoder.pcm.astype(np.int8)).nnz == 0


def test_impossible_codes_are_refused():
    for k, n in ((11, 100), (8449, 9000), (1000, 1000), (1000, 6000), (5000, 5263)):
        with pytest.raises(ValueError):
            nr_ldpc_code(k, n)
