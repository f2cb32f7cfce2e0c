"""5G NR LDPC codes: the 38.212 construction, a numpy encoder, three decoders.

`Ldpc5gCode(k, n)` takes from `nr_ldpc` the base graph, lifting size Z, filler bits and the
parity-check matrix pruned to the n transmitted bits (the first 2Z systematic bits are
punctured), equal to Sionna's (tested) without importing Sionna. Encoding is systematic in
numpy (bit-exact with Sionna's encoder, tested): the first 4Z parity bits solve the core (a
GF(2) inverse computed once per base graph and lifting), each further parity bit is one check
of the extension. Decoders, all on the same LLRs:

- `layered` (default): `netsem.phy.layered`, normalized min-sum with a serial-over-layers
  schedule over many codewords at once, compiled with numba (`layered_kernel`; the numpy form,
  which decides identically, where numba is missing). Its BLER matches `bp` on the same LLRs
  (tests/phy/test_phy_decoders.py) at a fraction of the cost.
- `bp`: the `ldpc` package's compiled product-sum belief propagation, flooding schedule, early
  stop on a zero syndrome, one codeword at a time, on the matrix without the filler columns
  (known zeros). The reference the faster decoder is checked against.
- `sionna`: `LDPC5GDecoder` (boxplus-phi flooding BP), batched, slowest on CPU.

All see LLRs clipped to +-20, as Sionna's decoder does internally; punctured bits enter with
LLR 0, filler bits as known zeros.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import scipy.sparse as sp

from netsem.phy import gf2
from netsem.phy.layered import LayeredMinSum
from netsem.phy.nr_ldpc import nr_ldpc_code

LLR_CLIP = 20.0
MAX_K = 8448  # largest information block of one 5G LDPC codeword (base graph 1)
HOPELESS_SYNDROME = 20
# Layered min-sum normalisation. Measured on the same AWGN LLRs at the waterfall, block error
# rate with 20 iterations (bp: 0.152, 0.287, 0.405): BG2 k=1024 0.168 / 0.142 / 0.133 at
# alpha 0.65 / 0.68 / 0.70, BG2 k=2424 0.317 / 0.163 / 0.137, BG1 k=4812 0.365 / 0.320 / 0.395;
# 0.625 loses up to 0.25 on BG2 and 0.75+ loses on BG1 (oscillation). tests/phy/test_phy_decoders.py.
MIN_SUM_ALPHA = 0.68


class Ldpc5gCode:
    def __init__(self, k: int, n: int, *, iterations: int = 20, decoder: str = "layered") -> None:
        self.k, self.n, self.iterations, self.decoder_kind = k, n, iterations, decoder
        code = nr_ldpc_code(k, n)
        self.base_graph, self.i_ls = code.base_graph, code.i_ls
        self.z, self.k_ldpc = code.z, code.k_ldpc
        self.pcm = sp.csr_matrix(code.pcm, dtype=np.float32)  # filler columns included
        self.pcm.sort_indices()
        n_sys = k - 2 * self.z
        # the transmitted bits among the pcm's columns: systematic after the punctured 2Z, then parity
        self.positions = np.r_[2 * self.z:k, self.k_ldpc:self.k_ldpc + (n - n_sys)]
        if self.positions.size != n or self.positions[-1] >= self.pcm.shape[1]:
            raise ValueError(f"internal: rate matching layout for k={k}, n={n}")
        self._build_encoder()
        self._layered: LayeredMinSum | None = None
        self._bp = None
        self._sionna = None

    def sionna_decoder(self):
        """Sionna's `LDPC5GDecoder` for this code (built on first use: importing Sionna takes
        seconds, building its decoder ~0.1 s per code)."""
        if self._sionna is None:
            from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder

            self._sionna = LDPC5GDecoder(LDPC5GEncoder(self.k, self.n), num_iter=self.iterations, hard_out=True,
                                         return_infobits=True)
        return self._sionna

    def _build_encoder(self) -> None:
        k, core = self.k, 4 * self.z
        parity = self.pcm[:, self.k_ldpc:]
        if parity.shape[0] < core:
            raise ValueError(f"internal: fewer than 4Z parity checks for k={k}, n={self.n}")
        dense_core = parity[:core, :core].toarray()
        if parity[:core, core:].nnz or (parity[core:, core:] != sp.identity(parity.shape[0] - core)).nnz:
            raise ValueError(f"internal: parity part is not [core 0; D I] for k={k}, n={self.n}")
        # filler columns multiply known zeros: left out
        self._core_checks = gf2.SparseProduct(self.pcm[:core, :k])
        self._core_solve = _core_inverse(self.base_graph, self.z, self.i_ls, dense_core)
        self._extension = gf2.SparseProduct(sp.hstack([self.pcm[core:, :k], parity[core:, :core]]))
        self._parity_needed = self.n - (k - 2 * self.z)

    def encode(self, bits: np.ndarray) -> np.ndarray:
        """Information bits [C, k] (0/1) -> transmitted codewords [C, n] uint8."""
        bits = np.asarray(bits, dtype=np.uint8).reshape(-1, self.k)
        u = gf2.pack(bits.T)  # [k, C/8]: codewords across the bits of each byte
        p_core = self._core_solve(self._core_checks(u))
        parts = [u[2 * self.z:], p_core]  # systematic bits after the punctured 2Z, then parity
        if self._parity_needed > p_core.shape[0]:
            parts.append(self._extension(np.concatenate([u, p_core])))
        word = gf2.unpack(np.concatenate(parts)[:self.n], bits.shape[0])
        return np.ascontiguousarray(word.T)

    def decode(self, llr: np.ndarray, decoder: str | None = None, *, groups: np.ndarray | None = None,
               stop_on_failure: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """LLRs [C, n] (log P(1)/P(0)) -> (information bits [C, k] uint8, syndrome-ok [C] bool).

        `layered`: codewords with the same `groups` value (one transport block) stop together
        once one of them fails, since the block's CRC fails anyway (flagged not ok).

        `bp` with `stop_on_failure`: the codewords after one that ends far from a codeword
        (more than HOPELESS_SYNDROME unsatisfied checks: its information bits are wrong, so the
        transport block's CRC fails anyway) are not decoded (zeros, flagged not ok).

        Sionna's decoder does not report convergence: its flags are all True (the CRC decides).
        """
        kind = decoder or self.decoder_kind
        llr = np.clip(np.asarray(llr, dtype=float).reshape(-1, self.n), -LLR_CLIP, LLR_CLIP)
        if kind == "layered":
            return self._decode_layered(llr, groups)
        if kind == "sionna":
            import torch

            with torch.no_grad():
                u = self.sionna_decoder()(torch.from_numpy(llr.astype(np.float32)))
            bits = u.numpy().round().astype(np.uint8)
            return bits, np.ones(len(bits), dtype=bool)
        if kind == "bp":
            return self._decode_bp(llr, stop_on_failure)
        raise ValueError(f"unknown decoder {kind!r}")

    def _decode_layered(self, llr: np.ndarray, groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if self._layered is None:
            self._layered = LayeredMinSum(self.pcm, self.z, max_iter=self.iterations, alpha=MIN_SUM_ALPHA,
                                          known_zero=np.arange(self.k, self.k_ldpc))
        full = np.zeros((self.pcm.shape[1], llr.shape[0]), dtype=np.float32)
        full[self.positions] = -llr.T  # the decoder's LLRs are log P(0)/P(1)
        hard, ok, _ = self._layered.decode(full, groups)
        return np.ascontiguousarray(hard[:self.k].T), ok

    def _decode_bp(self, llr: np.ndarray, stop_on_failure: bool) -> tuple[np.ndarray, np.ndarray]:
        if self._bp is None:
            from ldpc import BpDecoder

            keep = np.r_[0:self.k, self.k_ldpc:self.pcm.shape[1]]  # drop the filler columns (known zeros)
            self._bp_pcm = self.pcm[:, keep].astype(np.uint8).tocsr()
            self._bp_positions = np.r_[2 * self.z:self.k, self.k:self.k + (self.n - (self.k - 2 * self.z))]
            self._bp = BpDecoder(self._bp_pcm, error_rate=0.1, max_iter=self.iterations, bp_method="product_sum",
                                 schedule="parallel")
        out = np.empty((llr.shape[0], self.k), dtype=np.uint8)
        ok = np.empty(llr.shape[0], dtype=bool)
        full = np.zeros(self._bp_pcm.shape[1])
        hopeless = False
        for i, row in enumerate(llr):
            if stop_on_failure and i and hopeless:
                out[i:] = 0
                ok[i:] = False
                break
            full[:] = 0.0
            full[self._bp_positions] = row
            hard = (full > 0).astype(np.uint8)
            self._bp.update_channel_probs(1.0 / (1.0 + np.exp(np.abs(full))))
            decoded = self._bp.decode(hard)
            out[i] = decoded[: self.k]
            ok[i] = bool(self._bp.converge)
            if not ok[i] and stop_on_failure:
                hopeless = int(np.count_nonzero((self._bp_pcm @ decoded) % 2)) > HOPELESS_SYNDROME
        return out, ok


# The core (first 4Z checks on the first 4Z parity columns) depends only on the base graph and
# the lifting: codes of many lengths share its inverse.
_core_inverses: OrderedDict[tuple[int, int, int], gf2.SparseProduct] = OrderedDict()


def _core_inverse(base_graph: int, z: int, i_ls: int, dense_core: np.ndarray) -> gf2.SparseProduct:
    key = (base_graph, z, i_ls)
    if key not in _core_inverses:
        _core_inverses[key] = gf2.SparseProduct(sp.csr_matrix(gf2.inverse(dense_core)))
        if len(_core_inverses) > 16:
            _core_inverses.popitem(last=False)
    _core_inverses.move_to_end(key)
    return _core_inverses[key]


class CodeCache:
    """Codes by (k, n): building one costs ~0.1 s, so keep the recent ones."""

    def __init__(self, iterations: int, decoder: str, size: int = 32) -> None:
        self.iterations, self.decoder, self.size = iterations, decoder, size
        self._codes: OrderedDict[tuple[int, int], Ldpc5gCode] = OrderedDict()

    def get(self, k: int, n: int) -> Ldpc5gCode:
        key = (k, n)
        code = self._codes.get(key)
        if code is None:
            code = Ldpc5gCode(k, n, iterations=self.iterations, decoder=self.decoder)
            self._codes[key] = code
            if len(self._codes) > self.size:
                self._codes.popitem(last=False)
        else:
            self._codes.move_to_end(key)
        return code
