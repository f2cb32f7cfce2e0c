"""The digital PHY chain per datagram, batched:

    bytes -> CRC24A -> segmentation -> 5G LDPC (rate R) -> QAM -> MIMO channel -> detection
          -> LLRs -> LDPC decoding -> CRC check

Segmentation: the transport block (payload + 24 CRC bits, B bits) is cut into
C = ceil(B / 8448) codewords of K = ceil(B / C) bits (zero-padded, the padding known to the
receiver), each encoded to N = round(K / R) bits; a 1200-byte datagram is 2 codewords of
K = 4812, N = 9624 at R = 1/2. All codewords of a datagram share one channel draw (block
fading).

Randomness: the chain draws one key from the generator it is built with; the i-th datagram it
ever sees draws its channel, CSI error and noise, in that order, from its own generator seeded
with (key, i). So how datagrams are grouped into `run` calls (one at a time, or all that depart
together) cannot change a draw, and a batch is encoded and decoded together (one call per code
shape; a codeword's decoding does not depend on its batch) with identical outcomes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from netsem.phy.crc import crc_bits
from netsem.phy.ldpc5g import MAX_K, CodeCache
from netsem.phy.mimo import draw_channel, transmit
from netsem.phy.modem import qam_demap, qam_map
from netsem.phy.spec import PhySpec


@dataclass
class PhyResult:
    """One datagram's fate on the PHY."""

    payload: bytes | None  # None: CRC failed, dropped
    cause: str  # why dropped, or "" / a short remark when delivered
    channel_uses: int
    raw_bit_errors: int  # hard-decision errors before FEC (coded bits)
    coded_bits: int
    codewords: int
    codewords_failed: int  # syndrome not satisfied after decoding (bp decoder)
    sinr_db: float  # mean post-detection SINR over the streams
    undetected: bool = False  # CRC passed but the payload differs (delivered corrupted)


def segment(payload_bits: int) -> tuple[int, int]:
    """(C, K) for a transport block of `payload_bits` + 24 CRC bits."""
    b = payload_bits + 24
    c = -(-b // MAX_K)
    return c, -(-b // c)


class DigitalPhy:
    def __init__(self, spec: PhySpec, rng: np.random.Generator, *, skip_decoding: bool = False) -> None:
        """`skip_decoding` (benchmarks only): everything but LDPC decoding; every CRC then fails."""
        self.spec = spec
        self.skip_decoding = skip_decoding
        self.key = int(rng.integers(2**63))
        self.datagrams = 0  # datagrams seen: the index that seeds the next one's draws
        self.codes = CodeCache(spec.iterations, spec.decoder) if spec.code_rate is not None else None

    def codeword_length(self, k: int) -> int:
        n = round(k / self.spec.code_rate)
        # rounding must not push k / n past 5G's 0.95 ceiling (the spec accepts rate 0.95)
        return max(n, k + 1, math.ceil(k / 0.95))

    def channel_uses(self, nbytes: int, streams: int | None = None) -> int:
        """Channel uses for one datagram if all min(Nt, Nr) streams (or `streams`) carry data."""
        spec = self.spec
        c, k = segment(8 * nbytes)
        bits = c * (k if spec.code_rate is None else self.codeword_length(k))
        symbols = -(-bits // spec.bits_per_symbol)
        s = streams or (min(spec.nt, spec.nr) if spec.precoder == "svd" else spec.nt)
        return -(-symbols // s)

    def run(self, datagrams: list[bytes]) -> list[PhyResult]:
        first = self.datagrams
        self.datagrams += len(datagrams)
        blocks = [transport_block(data) for data in datagrams]
        coded = self._encode(blocks)
        received = [self._transmit(words, np.random.default_rng([self.key, first + i]))
                    for i, words in enumerate(coded)]
        decoded = self._decode([llr for llr, _ in received], blocks)
        return [self._result(data, coded[i], decoded[i], *received[i][1]) for i, data in enumerate(datagrams)]

    def _encode(self, blocks: list[np.ndarray]) -> list[np.ndarray]:
        """Codewords [C, N] per datagram, one encoder call per code shape."""
        if self.spec.code_rate is None:
            return blocks
        coded: list[np.ndarray] = [blocks[0]] * len(blocks)
        for k, members in _by_length(blocks).items():
            words = self.codes.get(k, self.codeword_length(k)).encode(np.concatenate([blocks[i] for i in members]))
            for i, part in zip(members, np.split(words, np.cumsum([len(blocks[i]) for i in members])[:-1])):
                coded[i] = part
        return coded

    def _transmit(self, words: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int, float]]:
        """Modulation, channel, detection, demapping: (LLRs [C, N], (channel uses, raw bit errors, SINR dB))."""
        spec = self.spec
        m = spec.bits_per_symbol
        bits = words.reshape(-1)
        pad = (-bits.size) % m
        symbols = qam_map(np.concatenate([bits, np.zeros(pad, np.uint8)]) if pad else bits, m)
        h = draw_channel(rng, spec.nr, spec.nt, spec.channel, spec.k_factor)
        tx = transmit(rng, symbols, h, n0=spec.noise_variance, precoder_kind=spec.precoder, power=spec.power,
                      detector=spec.detector, csi_error=spec.csi_error)
        llr = qam_demap(tx.estimates, tx.noise_var, m)[:bits.size]
        raw = int(np.count_nonzero((llr > 0) != bits.view(bool)))
        return llr.reshape(words.shape), (tx.channel_uses, raw, float(np.mean(tx.sinr_db)))

    def _decode(self, llrs: list[np.ndarray], blocks: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(information bits [C, K], codeword converged [C]) per datagram."""
        spec = self.spec
        if self.skip_decoding:
            return [(np.zeros_like(b), np.zeros(len(b), bool)) for b in blocks]
        if spec.code_rate is None:
            return [((llr > 0).astype(np.uint8), np.ones(len(llr), bool)) for llr in llrs]
        decoded: list[tuple[np.ndarray, np.ndarray]] = [None] * len(llrs)  # type: ignore[list-item]
        for k, members in _by_length(blocks).items():
            code = self.codes.get(k, self.codeword_length(k))
            if spec.decoder == "bp":  # one datagram at a time: a hopeless codeword ends its block
                for i in members:
                    decoded[i] = code.decode(llrs[i], stop_on_failure=True)
                continue
            groups = np.concatenate([np.full(len(blocks[i]), i) for i in members])
            bits, ok = code.decode(np.concatenate([llrs[i] for i in members]), groups=groups)
            bounds = np.cumsum([len(blocks[i]) for i in members])[:-1]
            for i, b, o in zip(members, np.split(bits, bounds), np.split(ok, bounds)):
                decoded[i] = (b, o)
        return decoded

    def _result(self, data: bytes, coded: np.ndarray, decoded: tuple[np.ndarray, np.ndarray], uses: int, raw: int,
                sinr: float) -> PhyResult:
        spec = self.spec
        bits, ok = decoded
        c = len(bits)
        tb = bits.reshape(-1)[: 8 * len(data) + 24]
        failed = int(np.count_nonzero(~ok))
        common = {"channel_uses": uses, "raw_bit_errors": raw, "coded_bits": int(coded.size), "codewords": c,
                  "codewords_failed": failed, "sinr_db": sinr}
        if crc_bits(tb).any():
            undecoded = f"{failed}/{c} codewords not decoded, " if spec.code_rate is not None else ""
            return PhyResult(None, f"crc fail ({undecoded}{raw} raw bit errors, sinr {sinr:.1f} dB)", **common)
        payload = np.packbits(tb[:-24]).tobytes()
        if payload != data:
            return PhyResult(payload, "undetected error: crc passed on a corrupted payload", undetected=True, **common)
        note = f"ldpc corrected {raw} bit errors" if raw and spec.code_rate is not None else ""
        return PhyResult(payload, note, **common)


def transport_block(data: bytes) -> np.ndarray:
    """Payload bits + CRC24A, zero-padded and cut into the [C, K] information blocks."""
    c, k = segment(8 * len(data))
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    padded = np.zeros(c * k, dtype=np.uint8)
    padded[:bits.size] = bits
    padded[bits.size:bits.size + 24] = crc_bits(bits)
    return padded.reshape(c, k)


def _by_length(blocks: list[np.ndarray]) -> dict[int, list[int]]:
    """Datagram indices by information block length K (one code per K)."""
    groups: dict[int, list[int]] = {}
    for i, block in enumerate(blocks):
        groups.setdefault(block.shape[1], []).append(i)
    return groups
