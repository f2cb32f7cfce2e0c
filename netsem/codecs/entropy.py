"""Entropy coding of a latent codec's integers, unit by unit, so any subset still decodes.

A factorized prior: one categorical distribution per latent channel over the 2^bit_width
values, fitted (counted, with add-half smoothing so no value is impossible) on the latents of
the codec's training photographs. Each unit is range-coded on its own (`constriction`'s
RangeEncoder, 32-bit words) with its channel's distribution, so a datagram decodes alone and
a lost datagram loses exactly its units.

A unit is a band of rows of one channel: the whole channel when its code fits the datagram
payload budget, otherwise the fewest equal bands that fit (the same band height in every
channel, carried in the frame's codec parameters). Units travel as the segments of a byte
stream (`StreamFrame`): the wire already carries every segment's offset and length, which is
the coded length a receiver needs.

    prior = FactorizedPrior.fit(codec.to_frame(photo) for photo in training_photos)
    codec = EntropyCodedCodec("cnn-sem-ec", get_codec("cnn-sem"), prior)
    frame = codec.to_frame(image, payload_budget)                    # StreamFrame, C x bands segments
    image = codec.from_frame(received)                               # lost segments -> lost elements

The prior's 16-bit tag travels as the frame's `kb_version`: a receiver holding another prior
rejects the frame rather than decoding noise.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from netsem.codecs.base import CodecError, Frame, check_image_size, value_range
from packetizers.frames import LatentFrame, StreamFrame
from packetizers.kinds import Layout

PRIOR_KIND = "factorized-prior"
SMOOTHING = 0.5  # counts added to every value: an unseen value costs ~log2(total) bits, not a failure
WORD = np.dtype("<u4")  # constriction's compressed words, little-endian on the wire


class FactorizedPrior:
    """pmf: (C, 2^bit_width) probabilities, row c for channel c, column v - lowest value;
    scale: the codec's quantizer step (the decoder multiplies the integers by it)."""

    def __init__(self, pmf: np.ndarray, bit_width: int, signed: bool, scale: float, source: str = "") -> None:
        import constriction

        pmf = np.asarray(pmf, dtype=np.float64)
        if pmf.ndim != 2 or pmf.shape[1] != 1 << bit_width or not (pmf > 0).all():
            raise CodecError(f"a prior needs (channels, {1 << bit_width}) positive probabilities, got {pmf.shape}")
        self.pmf = pmf / pmf.sum(axis=1, keepdims=True)
        self.bit_width, self.signed, self.scale, self.source = bit_width, signed, float(scale), source
        self.lowest = value_range(bit_width, signed)[0]
        self._models = [constriction.stream.model.Categorical(row, perfect=False) for row in self.pmf]
        self.tag = zlib.crc32(np.ascontiguousarray(self.pmf.astype(np.float32)).tobytes()) & 0xFFFF

    @property
    def channels(self) -> int:
        return self.pmf.shape[0]

    @classmethod
    def fit(cls, frames: Iterable[LatentFrame], source: str = "") -> FactorizedPrior:
        """Count each channel's values over chw latent frames of one codec."""
        counts, first = None, None
        for frame in frames:
            if first is None:
                first, counts = frame, np.zeros((frame.latent.shape[0], 1 << frame.bit_width))
            symbols = frame.latent.reshape(frame.latent.shape[0], -1).astype(np.int64) - frame.value_range[0]
            for channel, row in enumerate(symbols):
                counts[channel] += np.bincount(row, minlength=counts.shape[1])
        if first is None:
            raise CodecError("no latents to fit a prior on")
        return cls(counts + SMOOTHING, first.bit_width, first.signed, first.scale, source)

    def code_lengths(self, low: int, high: int) -> np.ndarray:
        """(C, high - low + 1) bits each channel's values low..high cost (ideal coder)."""
        return -np.log2(self.pmf[:, low - self.lowest : high - self.lowest + 1])

    def bits(self, latent: np.ndarray) -> float:
        """The information content of a (C, H, W) latent under this prior (what an ideal coder spends)."""
        symbols = latent.reshape(latent.shape[0], -1).astype(np.int64) - self.lowest
        return float(-np.log2(np.take_along_axis(self.pmf, symbols, axis=1)).sum())

    def encode(self, values: np.ndarray, channel: int) -> bytes:
        import constriction

        encoder = constriction.stream.queue.RangeEncoder()
        encoder.encode((np.asarray(values).ravel() - self.lowest).astype(np.int32), self._models[channel])
        return encoder.get_compressed().astype(WORD).tobytes()

    def decode(self, data: bytes, channel: int, count: int) -> np.ndarray:
        """`count` values of `channel`; CodecError for data that cannot be a code of this prior."""
        import constriction

        if len(data) % WORD.itemsize:
            raise CodecError(f"a unit's code is whole 32-bit words, got {len(data)} bytes")
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, WORD).astype(np.uint32))
        try:
            values = decoder.decode(self._models[channel], count)
        except (AssertionError, ValueError, RuntimeError) as error:  # constriction's "invalid data" is an AssertionError
            raise CodecError(f"unit of channel {channel} is no code of this prior: {error}") from None
        return values.astype(np.int64) + self.lowest

    def save(self, path: str | Path, metadata: dict[str, str] | None = None) -> None:
        from safetensors.numpy import save_file

        meta = {"kind": PRIOR_KIND, "bit_width": str(self.bit_width), "signed": str(int(self.signed)),
                "scale": repr(self.scale), "source": self.source, **(metadata or {})}
        save_file({"pmf": self.pmf.astype(np.float32)}, str(path), metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> FactorizedPrior:
        from safetensors import safe_open

        try:
            with safe_open(str(path), "np") as f:
                meta = f.metadata() or {}
                pmf = f.get_tensor("pmf")
        except (OSError, KeyError, ValueError) as error:
            raise CodecError(f"cannot read a prior from {path}: {error}") from None
        if meta.get("kind") != PRIOR_KIND:
            raise CodecError(f"{path} is not a {PRIOR_KIND} file")
        return cls(pmf, int(meta["bit_width"]), bool(int(meta["signed"])), float(meta["scale"]), meta.get("source", ""))


def band_rows(coded_lengths: np.ndarray, rows: int, budget: int) -> int:
    """Rows per band so that a band's code likely fits `budget` bytes, from the lengths of
    whole-channel codes: the longest channel cut into the fewest equal bands."""
    if budget <= 0 or coded_lengths.max() <= budget:
        return rows
    bands = -(-int(coded_lengths.max()) // budget)
    return max(1, rows // bands)


class EntropyCodedCodec:
    """A chw latent codec whose units are range-coded on the way to the wire."""

    partitions = ("segment",)

    def __init__(self, name: str, inner, prior: FactorizedPrior, description: str = "", refine: int = 0,
                 lmbda: float | None = None) -> None:
        """``refine``: iterations of the inner codec's latent refinement, here for rate and
        distortion (``lmbda`` x 255^2 x MSE + the prior's bits per pixel; None: distortion alone)."""
        if refine and not hasattr(inner, "refine_frame"):
            raise CodecError(f"codec {name!r}: {inner.name} cannot refine its latent")
        self.name, self.inner, self.prior, self.refine, self.lmbda = name, inner, prior, refine, lmbda
        self.description = description or f"{inner.name} with each unit range-coded under a factorized prior"

    @property
    def num_parameters(self) -> int | None:
        return getattr(self.inner, "num_parameters", None)

    @property
    def weights_path(self):
        return getattr(self.inner, "weights_path", None)

    def to_frame(self, image: np.ndarray, payload_budget: int = 0) -> StreamFrame:
        frame = self.inner.to_frame(image)
        self._check_latent_kind(frame)
        if self.refine:
            a = self.inner.config.amplitude
            frame = self.inner.refine_frame(image, frame, self.refine, self.lmbda,
                                            None if self.lmbda is None else self.prior.code_lengths(-a, a))
        latent = frame.latent
        channels, rows, _ = latent.shape
        whole = [self.prior.encode(latent[c], c) for c in range(channels)]
        per_band = band_rows(np.array([len(code) for code in whole]), rows, payload_budget)
        # a band that still overflows is carried as slices of one segment (the packetizer's sub-units)
        segments = whole if per_band == rows else [
            self.prior.encode(latent[c, top:top + per_band], c)
            for c in range(channels) for top in range(0, rows, per_band)]
        return StreamFrame(segments, codec_params=(per_band, frame.bit_width), image_size=frame.image_size,
                           kb_version=self.prior.tag)

    def from_frame(self, encoded: Frame) -> np.ndarray:
        """Decode the units that arrived; the rest are lost elements for the inner codec."""
        if not isinstance(encoded, StreamFrame):
            raise CodecError(f"{self.name} decodes a stream of coded units, not a latent")
        if encoded.kb_version != self.prior.tag:
            raise CodecError(f"{self.name}: frame coded with prior {encoded.kb_version:#06x}, this receiver "
                             f"holds {self.prior.tag:#06x}")
        h, w = check_image_size(encoded.image_size)
        channels, rows, cols = self.inner.latent_shape(h, w)
        per_band, bit_width = encoded.codec_params
        if bit_width != self.prior.bit_width or not 1 <= per_band <= rows:
            raise CodecError(f"{self.name}: codec parameters {encoded.codec_params} do not fit a "
                             f"{channels}x{rows}x{cols} latent of {self.prior.bit_width} bits")
        bands = -(-rows // per_band)
        if len(encoded.segments) != channels * bands:
            raise CodecError(f"{self.name}: {len(encoded.segments)} units, a {channels}x{rows}x{cols} latent "
                             f"in bands of {per_band} rows has {channels * bands}")
        latent = np.zeros((channels, rows, cols), np.int16)
        received = np.zeros((channels, rows, cols), bool)
        for index, code in encoded.present().items():
            channel, band = divmod(index, bands)
            top, bottom = band * per_band, min(rows, (band + 1) * per_band)
            try:
                values = self.prior.decode(code, channel, (bottom - top) * cols)
            except CodecError:
                continue  # a unit that is no code is a lost unit
            latent[channel, top:bottom] = values.reshape(bottom - top, cols)
            received[channel, top:bottom] = True
        frame = LatentFrame(latent, Layout.CHW, self.prior.bit_width, self.prior.signed, self.prior.scale, (h, w))
        return self.inner.from_frame(frame.with_received(received))

    def _check_latent_kind(self, frame: Frame) -> None:
        if not isinstance(frame, LatentFrame) or frame.layout != Layout.CHW:
            raise CodecError(f"{self.name}: entropy coding takes a chw latent")
        if (frame.bit_width, frame.signed, frame.latent.shape[0], frame.scale) != (
                self.prior.bit_width, self.prior.signed, self.prior.channels, self.prior.scale):
            raise CodecError(f"{self.name}: the prior is for {self.prior.channels} channels of "
                             f"{self.prior.bit_width} bits, the codec gives {frame.latent.shape[0]} of {frame.bit_width}")
