"""5G NR LDPC codes: Sionna's encoder and rate matching, two decoders on the same LLRs.

`Ldpc5gCode(k, n)` wraps `sionna.phy.fec.ldpc.LDPC5GEncoder` (base graph, lifting, filler
bits, puncturing of the first 2Z systematic bits and rate matching to n bits). Decoding:

- `bp` (default): the `ldpc` package's compiled belief propagation (product-sum, flooding,
  early stop on a zero syndrome) on Sionna's pruned parity-check matrix with the filler
  columns removed (they are known zeros); punctured bits enter with LLR 0. Its BLER is
  checked against Sionna's decoder on the same LLRs in tests/phy/test_phy_ldpc.py.
- `sionna`: `LDPC5GDecoder` (boxplus-phi flooding BP), batched, slower on CPU.

Both see LLRs clipped to +-20, as Sionna's decoder does internally.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

LLR_CLIP = 20.0
MAX_K = 8448
HOPELESS_SYNDROME = 20  # largest information block of one 5G LDPC codeword (base graph 1)


class Ldpc5gCode:
    def __init__(self, k: int, n: int, *, iterations: int = 20, decoder: str = "bp") -> None:
        import torch
        from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder

        self.k, self.n, self.iterations, self.decoder_kind = k, n, iterations, decoder
        self._torch = torch
        self.encoder = LDPC5GEncoder(k, n)
        self._sionna_decoder = LDPC5GDecoder(self.encoder, num_iter=iterations, hard_out=True,
                                             return_infobits=True)
        self._bp = None
        if decoder == "bp":
            self._build_bp()

    def _build_bp(self) -> None:
        import scipy.sparse as sp
        from ldpc import BpDecoder

        enc, dec = self.encoder, self._sionna_decoder
        k, z, k_ldpc, n_pruned = self.k, enc.z, enc.k_ldpc, dec._n_pruned
        pcm = sp.csr_matrix(dec.pcm)
        keep = np.r_[0:k, k_ldpc:n_pruned]  # drop the filler columns (known zeros)
        self._pcm = pcm[:, keep].tocsr()
        self._columns = self._pcm.shape[1]
        n_sys = k - 2 * z
        # positions of the n transmitted bits in the reduced codeword
        self._positions = np.r_[2 * z:k, k:k + (self.n - n_sys)]
        if self._positions.size != self.n or self._positions[-1] >= self._columns:
            raise ValueError(f"internal: rate matching layout for k={k}, n={self.n}")
        self._bp = BpDecoder(self._pcm, error_rate=0.1, max_iter=self.iterations, bp_method="product_sum",
                             schedule="parallel")

    def encode(self, bits: np.ndarray) -> np.ndarray:
        """Information bits [C, k] (0/1) -> codewords [C, n] uint8."""
        torch = self._torch
        u = torch.from_numpy(np.ascontiguousarray(bits, dtype=np.float32))
        with torch.no_grad():
            c = self.encoder(u)
        return c.numpy().astype(np.uint8)

    def decode(self, llr: np.ndarray, decoder: str | None = None, *,
               stop_on_failure: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """LLRs [C, n] (log P(1)/P(0)) -> (information bits [C, k] uint8, syndrome-ok [C] bool).

        With `stop_on_failure` (bp only) the codewords after one that ends far from a codeword
        (more than HOPELESS_SYNDROME unsatisfied checks: its information bits are wrong, so the
        transport block's CRC fails anyway) are not decoded (zeros, flagged not ok); a failing
        codeword costs all the iterations. Measured at the waterfall: non-converged codewords
        whose information bits were nevertheless right had <= 6 unsatisfied checks, wrong
        ones >= 29.

        Sionna's decoder does not report convergence: its flags are all True (the CRC decides).
        """
        kind = decoder or self.decoder_kind
        llr = np.clip(np.asarray(llr, dtype=float).reshape(-1, self.n), -LLR_CLIP, LLR_CLIP)
        if kind == "sionna":
            torch = self._torch
            with torch.no_grad():
                u = self._sionna_decoder(torch.from_numpy(llr.astype(np.float32)))
            bits = u.numpy().round().astype(np.uint8)
            return bits, np.ones(len(bits), dtype=bool)
        if self._bp is None:
            self._build_bp()
        out = np.empty((llr.shape[0], self.k), dtype=np.uint8)
        ok = np.empty(llr.shape[0], dtype=bool)
        full = np.zeros(self._columns)
        hopeless = False
        for i, row in enumerate(llr):
            if stop_on_failure and i and hopeless:
                out[i:] = 0
                ok[i:] = False
                break
            full[:] = 0.0
            full[self._positions] = row
            hard = (full > 0).astype(np.uint8)
            self._bp.update_channel_probs(1.0 / (1.0 + np.exp(np.abs(full))))
            decoded = self._bp.decode(hard)
            out[i] = decoded[: self.k]
            ok[i] = bool(self._bp.converge)
            if not ok[i] and stop_on_failure:
                hopeless = int(np.count_nonzero((self._pcm @ decoded) % 2)) > HOPELESS_SYNDROME
        return out, ok


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
