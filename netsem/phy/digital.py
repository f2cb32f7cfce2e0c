"""The digital PHY chain per datagram, batched:

    bytes -> CRC24A -> segmentation -> 5G LDPC (rate R) -> QAM -> MIMO channel -> detection
          -> LLRs -> LDPC decoding -> CRC check

Segmentation: the transport block (payload + 24 CRC bits, B bits) is cut into
C = ceil(B / 8448) codewords of K = ceil(B / C) bits (zero-padded, the padding known to the
receiver), each encoded to N = round(K / R) bits; a 1200-byte datagram is 2 codewords of
K = 4812, N = 9624 at R = 1/2. All codewords of a datagram share one channel draw (block
fading). Random draws happen in datagram order (channel, CSI error, noise), so batched and
one-at-a-time processing give identical results for the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netsem.phy.ldpc5g import MAX_K, CodeCache
from netsem.phy.mimo import draw_channel, transmit
from netsem.phy.modem import qam_demap, qam_map
from netsem.phy.spec import PhySpec

_CRC24A_POLY = 0x864CFB


def _crc24a_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 16
        for _ in range(8):
            crc = ((crc << 1) ^ _CRC24A_POLY) if crc & 0x800000 else (crc << 1)
            crc &= 0xFFFFFF
        table.append(crc)
    return table


_TABLE = _crc24a_table()


def crc24a(data: bytes) -> bytes:
    """3GPP TS 38.212 CRC24A (gCRC24A = 0x864CFB, zero initial value), 3 bytes, MSB first."""
    crc = 0
    table = _TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFF) ^ table[((crc >> 16) ^ byte) & 0xFF]
    return crc.to_bytes(3, "big")


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
        self.rng = rng
        self.codes = CodeCache(spec.iterations, spec.decoder) if spec.code_rate is not None else None

    def codeword_length(self, k: int) -> int:
        n = int(round(k / self.spec.code_rate))
        return max(n, k + 1)

    def channel_uses(self, nbytes: int, streams: int | None = None) -> int:
        """Channel uses for one datagram if all min(Nt, Nr) streams (or `streams`) carry data."""
        spec = self.spec
        c, k = segment(8 * nbytes)
        bits = c * (k if spec.code_rate is None else self.codeword_length(k))
        symbols = -(-bits // spec.bits_per_symbol)
        s = streams or (min(spec.nt, spec.nr) if spec.precoder == "svd" else spec.nt)
        return -(-symbols // s)

    def run(self, datagrams: list[bytes]) -> list[PhyResult]:
        spec = self.spec
        m = spec.bits_per_symbol
        # 1. transport blocks, segmentation, encoding (one Sionna call per code shape)
        blocks: list[np.ndarray] = []
        shapes: list[tuple[int, int]] = []
        for data in datagrams:
            c, k = segment(8 * len(data))
            tb = np.unpackbits(np.frombuffer(data + crc24a(data), dtype=np.uint8))
            padded = np.zeros(c * k, dtype=np.uint8)
            padded[: tb.size] = tb
            blocks.append(padded.reshape(c, k))
            shapes.append((c, k))
        coded: list[np.ndarray | None] = [None] * len(datagrams)
        if spec.code_rate is None:
            coded = [b.copy() for b in blocks]
        else:
            groups: dict[int, list[int]] = {}
            for i, (_, k) in enumerate(shapes):
                groups.setdefault(k, []).append(i)
            for k, members in groups.items():
                code = self.codes.get(k, self.codeword_length(k))
                words = code.encode(np.concatenate([blocks[i] for i in members]))
                start = 0
                for i in members:
                    c = shapes[i][0]
                    coded[i] = words[start:start + c]
                    start += c
        # 2. modulation, channel, detection, demapping (datagram order: reproducible draws)
        llrs: list[np.ndarray] = []
        infos: list[tuple[int, int, float]] = []
        n0 = spec.noise_variance
        for words in coded:
            bits = words.reshape(-1)
            nbits = bits.size
            pad = (-nbits) % m
            symbols = qam_map(np.concatenate([bits, np.zeros(pad, np.uint8)]), m)
            h = draw_channel(self.rng, spec.nr, spec.nt, spec.channel, spec.k_factor)
            tx = transmit(self.rng, symbols, h, n0=n0, precoder_kind=spec.precoder, power=spec.power,
                          detector=spec.detector, csi_error=spec.csi_error)
            llr = qam_demap(tx.estimates, tx.noise_var, m)[:nbits]
            llrs.append(llr.reshape(words.shape))
            raw = int(np.count_nonzero((llr > 0) != bits.astype(bool)))
            infos.append((tx.channel_uses, raw, float(np.mean(tx.sinr_db))))
        # 3. decoding
        decoded: list[tuple[np.ndarray, np.ndarray]] = []
        if self.skip_decoding:
            decoded = [(np.zeros((len(l), shapes[i][1]), np.uint8), np.zeros(len(l), bool)) for i, l in enumerate(llrs)]
        elif spec.code_rate is None:
            decoded = [((l > 0).astype(np.uint8), np.ones(len(l), bool)) for l in llrs]
        elif spec.decoder == "sionna":
            decoded = [None] * len(llrs)  # type: ignore[list-item]
            groups = {}
            for i, (_, k) in enumerate(shapes):
                groups.setdefault(k, []).append(i)
            for k, members in groups.items():
                code = self.codes.get(k, self.codeword_length(k))
                bits, ok = code.decode(np.concatenate([llrs[i] for i in members]))
                start = 0
                for i in members:
                    c = shapes[i][0]
                    decoded[i] = (bits[start:start + c], ok[start:start + c])
                    start += c
        else:
            for i, llr in enumerate(llrs):
                k = shapes[i][1]
                decoded.append(self.codes.get(k, self.codeword_length(k)).decode(llr, stop_on_failure=True))
        # 4. CRC check
        results = []
        for i, data in enumerate(datagrams):
            bits, ok = decoded[i]
            uses, raw, sinr = infos[i]
            tb = bits.reshape(-1)[: 8 * len(data) + 24]
            tb_bytes = np.packbits(tb).tobytes()
            payload, crc = tb_bytes[:-3], tb_bytes[-3:]
            c = shapes[i][0]
            failed = int(np.count_nonzero(~ok))
            common = dict(channel_uses=uses, raw_bit_errors=raw, coded_bits=int(coded[i].size), codewords=c,
                          codewords_failed=failed, sinr_db=sinr)
            if crc24a(payload) != crc:
                undecoded = f"{failed}/{c} codewords not decoded, " if spec.code_rate is not None else ""
                cause = f"crc fail ({undecoded}{raw} raw bit errors, sinr {sinr:.1f} dB)"
                results.append(PhyResult(None, cause, **common))
            elif payload != data:
                results.append(PhyResult(payload, "undetected error: crc passed on a corrupted payload",
                                         undetected=True, **common))
            else:
                note = f"ldpc corrected {raw} bit errors" if raw and spec.code_rate is not None else ""
                results.append(PhyResult(payload, note, **common))
        return results
