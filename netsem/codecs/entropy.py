"""Entropy coding of a latent codec's integers, unit by unit, so any subset still decodes.

A prior conditioned on the row above: each element's distribution depends on its channel and
on a context drawn from the three elements above it (above-left, above, above-right) — how busy
they are (their summed magnitude, in half-octave buckets) and what they predict (their weighted
mean, rounded). Latents keep some of the image's spatial structure, so on photographs never
trained on this spends 14-17 % fewer bits than one distribution per channel (a factorized
prior) on the shipped codecs' latents (`tools/training/fit_prior.py` prints it).

A unit is a band of rows of one channel: the whole channel when its code fits the datagram
payload budget, otherwise the fewest equal bands that fit (the same band height in every
channel, carried in the frame's codec parameters). A unit's first row has the context "nothing
above", so a unit never looks outside itself: each is range-coded on its own (`constriction`'s
RangeEncoder, 32-bit words, one categorical per element), a datagram decodes alone and a lost
datagram loses exactly its units. Decoding goes row by row, since a row's contexts are the row
above it. Units travel as the segments of a byte stream (`StreamFrame`): the wire already
carries every segment's offset and length, which is the coded length a receiver needs.

    prior = RowContextPrior.fit(codec.to_frame(photo) for photo in training_photos)
    codec = EntropyCodedCodec("cnn-sem-ec", get_codec("cnn-sem"), prior)
    frame = codec.to_frame(image, payload_budget)                    # StreamFrame, C x bands segments
    image = codec.from_frame(received)                               # lost segments -> lost elements

The prior's 16-bit tag travels as the frame's `kb_version`: a receiver holding another prior
rejects the frame rather than decoding noise.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np

from netsem.codecs.base import CodecError, Frame, check_image_size, value_range
from netsem.codecs.channel_skip import NOT_SENT
from packetizers.frames import LatentFrame, StreamFrame
from packetizers.kinds import Layout

PRIOR_KIND = "row-context-prior"
# Context = 1 + busyness * PREDICTIONS + prediction; 0 is a unit's first row. Busyness is
# floor(2 log2(1 + |above-left| + |above| + |above-right|)), at most BUSYNESS - 1; the prediction is
# round((above-left + 2 above + above-right) / 4) within +-PREDICTION_REACH. Chosen on held-out
# photographs among 57-239 contexts: more bought < 0.5 %, fewer cost 1-4 %.
BUSYNESS, PREDICTION_REACH = 12, 6
PREDICTIONS = 2 * PREDICTION_REACH + 1
CONTEXTS = 1 + BUSYNESS * PREDICTIONS
SMOOTHING = 0.1  # counts added to every value in every context: nothing is impossible, rare contexts stay sharp
WORD = np.dtype("<u4")  # constriction's compressed words, little-endian on the wire


def row_contexts(values: np.ndarray) -> np.ndarray:
    """(rows, cols) contexts of a unit's (rows, cols) integer values: 0 for its first row, each
    other row's from the row above it."""
    return np.concatenate([np.zeros((1, values.shape[1]), np.int64), contexts_below(values[:-1])])


def contexts_below(above: np.ndarray) -> np.ndarray:
    """(k, cols) contexts of the rows below each of `above`'s k rows (a decoder's next row)."""
    above = above.astype(np.int64)
    magnitude = np.abs(above)
    busy = magnitude.copy()
    busy[:, 1:] += magnitude[:, :-1]
    busy[:, :-1] += magnitude[:, 1:]
    weighted = 2 * above
    weighted[:, 1:] += above[:, :-1]
    weighted[:, :-1] += above[:, 1:]
    return _BUSYNESS_CONTEXT[np.minimum(busy, _BUSY_CAP)] + _PREDICTION_CONTEXT[
        np.clip(weighted, -_WEIGHTED_CAP, _WEIGHTED_CAP) + _WEIGHTED_CAP]


# Lookup tables of the context's two parts (a decoder computes a row's contexts for every row):
# summed magnitudes from _BUSY_CAP on are all in the top bucket, weighted sums beyond
# +-_WEIGHTED_CAP all predict +-PREDICTION_REACH.
_BUSY_CAP = int(np.ceil(2 ** (BUSYNESS / 2))) - 1
_BUSYNESS_CONTEXT = 1 + PREDICTIONS * np.minimum((2 * np.log2(1 + np.arange(_BUSY_CAP + 1))).astype(np.int64),
                                                 BUSYNESS - 1)
_WEIGHTED_CAP = 4 * PREDICTION_REACH + 2
_PREDICTION_CONTEXT = PREDICTION_REACH + np.clip(np.rint(np.arange(-_WEIGHTED_CAP, _WEIGHTED_CAP + 1) / 4),
                                                 -PREDICTION_REACH, PREDICTION_REACH).astype(np.int64)


class RowContextPrior:
    """tables: (C, CONTEXTS, 2^bit_width) probabilities of channel c's values in each context
    (column v - lowest value); marginal: (C, 2^bit_width), each channel's values whatever the
    context (what a factorized prior would be); scale: the codec's quantizer step (the
    decoder multiplies the integers by it). Stored as float16: both ends code with the same
    rounded tables, fitted or loaded."""

    def __init__(self, tables: np.ndarray, marginal: np.ndarray, bit_width: int, signed: bool, scale: float,
                 source: str = "") -> None:
        tables, marginal = np.asarray(tables, np.float64), np.asarray(marginal, np.float64)
        symbols = 1 << bit_width
        if tables.ndim != 3 or tables.shape[1:] != (CONTEXTS, symbols) or marginal.shape != (tables.shape[0], symbols) \
                or not ((tables > 0).all() and (marginal > 0).all()):
            raise CodecError(f"a prior needs (channels, {CONTEXTS}, {symbols}) and (channels, {symbols}) positive "
                             f"probabilities, got {tables.shape} and {marginal.shape}")
        self.stored = _float16(tables / tables.sum(axis=2, keepdims=True))
        self.tables = self.stored.astype(np.float64)
        self.tables /= self.tables.sum(axis=2, keepdims=True)
        self.marginal = marginal / marginal.sum(axis=1, keepdims=True)
        self._lengths = -np.log2(self.tables).astype(np.float32)
        self.bit_width, self.signed, self.scale, self.source = bit_width, signed, float(scale), source
        self.lowest = value_range(bit_width, signed)[0]
        self.tag = zlib.crc32(np.ascontiguousarray(self.stored).tobytes()) & 0xFFFF

    @property
    def channels(self) -> int:
        return self.tables.shape[0]

    @classmethod
    def fit(cls, frames: Iterable[LatentFrame], source: str = "") -> RowContextPrior:
        """Count each channel's values in each context over chw latent frames of one codec, each
        channel a unit."""
        counts, first = None, None
        for frame in frames:
            latent = frame.latent.astype(np.int64)
            if first is None:
                first, counts = frame, np.zeros((latent.shape[0], CONTEXTS, 1 << frame.bit_width))
            for channel, values in enumerate(latent):
                cells = row_contexts(values) * counts.shape[2] + values - frame.value_range[0]
                counts[channel] += np.bincount(cells.ravel(), minlength=counts[channel].size).reshape(counts.shape[1:])
        if first is None:
            raise CodecError("no latents to fit a prior on")
        return cls(counts + SMOOTHING, counts.sum(axis=1) + SMOOTHING, first.bit_width, first.signed, first.scale,
                   source)

    def code_lengths(self, latent: np.ndarray, low: int, high: int) -> np.ndarray:
        """(C, H x W, high - low + 1) bits each element of a (C, H, W) latent would cost as each
        of the values low..high, in its context in that latent, each channel one unit (an ideal
        coder): the rate term of encoder-side refinement."""
        latent = np.asarray(latent, np.int64)
        columns = slice(low - self.lowest, high - self.lowest + 1)
        return np.stack([self._lengths[channel][row_contexts(values).ravel(), columns]
                         for channel, values in enumerate(latent)])

    def bits(self, latent: np.ndarray) -> float:
        """The information content of a (C, H, W) latent coded one whole channel per unit (what
        an ideal coder spends)."""
        return float(sum(self._lengths[channel][row_contexts(values).ravel(), values.ravel() - self.lowest]
                         .sum(dtype=np.float64) for channel, values in enumerate(latent.astype(np.int64))))

    def encode(self, values: np.ndarray, channel: int) -> bytes:
        """The code of one unit: (rows, cols) values of `channel`."""
        import constriction

        values = np.asarray(values, np.int64)
        encoder = constriction.stream.queue.RangeEncoder()
        encoder.encode((values.ravel() - self.lowest).astype(np.int32), constriction.stream.model.Categorical(
            perfect=False), self._probabilities(values, channel))
        return encoder.get_compressed().astype(WORD).tobytes()

    def decode(self, data: bytes, channel: int, rows: int, cols: int) -> np.ndarray:
        """The (rows, cols) values of one unit of `channel`; CodecError for data that cannot be
        a code of this prior."""
        import constriction

        if len(data) % WORD.itemsize:
            raise CodecError(f"a unit's code is whole 32-bit words, got {len(data)} bytes")
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, WORD).astype(np.uint32))
        model, table = constriction.stream.model.Categorical(perfect=False), self.tables[channel]
        values = np.empty((rows, cols), np.int64)
        contexts = np.zeros(cols, np.int64)
        try:
            for row in range(rows):
                values[row] = decoder.decode(model, table[contexts]) + self.lowest
                contexts = contexts_below(values[row:row + 1])[0]
        # constriction's "invalid data" is an AssertionError
        except (AssertionError, ValueError, RuntimeError) as error:
            raise CodecError(f"unit of channel {channel} is no code of this prior: {error}") from None
        return values

    def _probabilities(self, values: np.ndarray, channel: int) -> np.ndarray:
        """(rows x cols, 2^bit_width): each element's distribution, row by row."""
        return self.tables[channel][row_contexts(values).ravel()]

    def save(self, path: str | Path, metadata: dict[str, str] | None = None) -> None:
        from safetensors.numpy import save_file

        meta = {"kind": PRIOR_KIND, "bit_width": str(self.bit_width), "signed": str(int(self.signed)),
                "scale": repr(self.scale), "source": self.source, **(metadata or {})}
        save_file({"tables": self.stored, "marginal": self.marginal.astype(np.float32)}, str(path), metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> RowContextPrior:
        from safetensors import safe_open

        try:
            with safe_open(str(path), "np") as f:
                meta = f.metadata() or {}
                if meta.get("kind") != PRIOR_KIND:
                    raise CodecError(f"{path} is not a {PRIOR_KIND} file (refit it: tools/training/fit_prior.py)")
                tables, marginal = f.get_tensor("tables"), f.get_tensor("marginal")
        except (OSError, KeyError, ValueError) as error:
            raise CodecError(f"cannot read a prior from {path}: {error}") from None
        return cls(tables, marginal, int(meta["bit_width"]), bool(int(meta["signed"])), float(meta["scale"]),
                   meta.get("source", ""))


def _float16(probabilities: np.ndarray) -> np.ndarray:
    """float16, with no probability rounded to zero."""
    return np.maximum(probabilities, np.finfo(np.float16).smallest_subnormal).astype(np.float16)


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

    def __init__(self, name: str, inner, prior: RowContextPrior, description: str = "", refine: int = 0,
                 lmbda: float | None = None, skip: int = 0, drop_order: tuple[int, ...] = ()) -> None:
        """``refine``: iterations of the inner codec's latent refinement, here for rate and
        distortion (``lmbda`` x 255^2 x MSE + the prior's bits per pixel; None: distortion alone).
        ``skip``: channels not sent, the first of ``drop_order`` (`channel_skip`): each travels as a
        one-byte `NOT_SENT` unit, and the receiver imputes it like a lost one."""
        if refine and not hasattr(inner, "refine_frame"):
            raise CodecError(f"codec {name!r}: {inner.name} cannot refine its latent")
        if sorted(drop_order) not in ([], list(range(prior.channels))):
            raise CodecError(f"codec {name!r}: a drop order lists each of the {prior.channels} channels once")
        if skip and not drop_order:
            raise CodecError(f"codec {name!r} cannot skip channels: it has no drop order (only the imputing -ec "
                             "codecs have one)")
        if not 0 <= skip < prior.channels:
            raise CodecError(f"codec {name!r}: skip takes 0..{prior.channels - 1} channels, got {skip}")
        self.name, self.inner, self.prior, self.refine, self.lmbda = name, inner, prior, refine, lmbda
        self.skip, self.drop_order = skip, tuple(drop_order)
        self.description = description or (f"{inner.name} with each unit range-coded under a prior conditioned on the "
                                           "row above")

    @property
    def sent_channels(self) -> np.ndarray:
        """bool per channel: sent (True) or left out (`skip`)."""
        sent = np.ones(self.prior.channels, bool)
        sent[list(self.drop_order[:self.skip])] = False
        return sent

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
            bits = None if self.lmbda is None else (lambda latent: self.prior.code_lengths(latent, -a, a))
            sent = self.sent_channels
            frame = self.inner.refine_frame(image, frame, self.refine, self.lmbda, bits,
                                            sent=None if sent.all() else sent)
        latent = frame.latent
        channels, rows, _ = latent.shape
        # the band height counts every channel, sent or not, so that leaving channels out of a
        # frame (`leaving_out`) gives the frame of the codec that skips them
        whole = [self.prior.encode(latent[c], c) for c in range(channels)]
        per_band = band_rows(np.array([len(code) for code in whole]), rows, payload_budget)
        # a band that still overflows is carried as slices of one segment (the packetizer's sub-units)
        segments = whole if per_band == rows else [
            self.prior.encode(latent[c, top:top + per_band], c)
            for c in range(channels) for top in range(0, rows, per_band)]
        return self.leaving_out(StreamFrame(segments, codec_params=(per_band, frame.bit_width),
                                            image_size=frame.image_size, kb_version=self.prior.tag), self.skip)

    def skipping(self, skip: int) -> EntropyCodedCodec:
        """This codec leaving out ``skip`` channels: the same network and prior, nothing loaded again."""
        return EntropyCodedCodec(self.name, self.inner, self.prior, self.description, self.refine, self.lmbda, skip,
                                 self.drop_order)

    def leaving_out(self, frame: StreamFrame, skip: int) -> StreamFrame:
        """``frame`` (of this codec) with the first ``skip`` channels of the drop order not sent:
        what the same codec with ``skip`` makes of the image, unrefined, without a new analysis."""
        sent = self.skipping(skip).sent_channels
        bands = len(frame.segments) // self.prior.channels
        return replace(frame, segments=[segment if sent[index // bands] else NOT_SENT
                                        for index, segment in enumerate(frame.segments)])

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
            if code == NOT_SENT:
                continue  # left out by the sender: imputed like a lost unit
            channel, band = divmod(index, bands)
            top, bottom = band * per_band, min(rows, (band + 1) * per_band)
            try:
                values = self.prior.decode(code, channel, bottom - top, cols)
            except CodecError:
                continue  # a unit that is no code is a lost unit
            latent[channel, top:bottom] = values
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
