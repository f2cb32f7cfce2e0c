"""What a codec hands to the network and gets back: a frame, with nothing of the wire in it.

A codec's `to_frame(image)` gives one of two kinds, and its `from_frame(frame)` receives the
same kind back from the receiver with what was lost marked:

- `LatentFrame`: an integer latent with its declared layout (`chw`: C x H x W feature maps;
  `nd`: N tokens x D dims), bit width, signedness and quantizer step; `received` is the
  per-element mask of what arrived (None: everything), missing elements are 0.
- `StreamFrame`: an encoded byte stream cut into independently decodable segments (a JPEG
  at its restart markers); a received one holds None for each lost segment.

Both carry the image size and the ids the datagrams name (codec, stream, importance,
knowledge-base version). The packetizer turns either into datagrams, the reassembler's
frames turn back into them; codecs import this module and nothing else of `packetizers`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from packetizers.kinds import Layout

MAX_BIT_WIDTH = 16


class FrameError(ValueError):
    """A frame whose fields do not fit together (one-line message)."""


@dataclass(frozen=True)
class LatentFrame:
    """A quantized latent and everything a receiver needs to decode it.

    latent      integers; chw: (C, H, W), nd: (N, D)
    layout      Layout.CHW / Layout.ND (or "chw" / "nd")
    bit_width   1..16: every value fits in bit_width bits
    signed      two's complement values when True
    scale       the quantizer step a decoder multiplies by (1.0 if none)
    image_size  (H, W) of the original image
    token_grid  nd: the tokens' (gh, gw) arrangement, gh * gw == N; (0, 0) when none
    received    bool, latent-shaped: which elements arrived (None: all of them)
    """

    latent: np.ndarray
    layout: Layout
    bit_width: int
    signed: bool
    scale: float = 1.0
    image_size: tuple[int, int] = (0, 0)
    token_grid: tuple[int, int] = (0, 0)
    received: np.ndarray | None = None
    codec_id: int = 0
    stream_id: int = 0
    importance: int = 0
    kb_version: int = 0

    def __post_init__(self) -> None:
        try:
            layout = Layout.named(self.layout)
        except ValueError as error:
            raise FrameError(str(error)) from None
        object.__setattr__(self, "layout", layout)
        object.__setattr__(self, "token_grid", tuple(self.token_grid or (0, 0)))
        if layout not in (Layout.CHW, Layout.ND):
            raise FrameError(f"a latent's layout is chw or nd, not {layout.name.lower()}")
        if not 1 <= self.bit_width <= MAX_BIT_WIDTH:
            raise FrameError(f"bit_width {self.bit_width} outside 1..{MAX_BIT_WIDTH}")
        if not np.issubdtype(self.latent.dtype, np.integer):
            raise FrameError(f"a latent holds integers, not {self.latent.dtype}")
        want = 3 if layout == Layout.CHW else 2
        if self.latent.ndim != want:
            raise FrameError(f"layout {layout.name.lower()} needs a {want}-D latent, got shape {self.latent.shape}")
        grid = self.token_grid
        if grid != (0, 0) and (layout != Layout.ND or grid[0] * grid[1] != self.latent.shape[0]):
            raise FrameError(f"token grid {grid} does not arrange a latent of shape {self.latent.shape}")
        if self.received is not None and self.received.shape != self.latent.shape:
            raise FrameError(f"received mask {self.received.shape} != latent {self.latent.shape}")

    @property
    def mask(self) -> np.ndarray:
        """The received mask, all True when everything arrived."""
        return np.ones(self.latent.shape, dtype=bool) if self.received is None else self.received.astype(bool)

    @property
    def value_range(self) -> tuple[int, int]:
        if self.signed:
            return -(1 << (self.bit_width - 1)), (1 << (self.bit_width - 1)) - 1
        return 0, (1 << self.bit_width) - 1

    @property
    def wire_bits(self) -> int:
        """Bits the latent takes on the wire, before headers (no entropy coding)."""
        return int(self.latent.size) * self.bit_width

    @property
    def bits_per_pixel(self) -> float:
        height, width = self.image_size
        return self.wire_bits / float(height * width)

    def with_received(self, received: np.ndarray | None) -> LatentFrame:
        """The same frame as a receiver that got only the `received` elements sees it."""
        if received is None:
            return dataclasses.replace(self, received=None)
        received = np.asarray(received, dtype=bool)
        if received.shape != self.latent.shape:
            raise FrameError(f"received mask {received.shape} != latent {self.latent.shape}")
        return dataclasses.replace(self, latent=np.where(received, self.latent, 0).astype(self.latent.dtype),
                                   received=received)


@dataclass(frozen=True)
class StreamFrame:
    """An encoded byte stream as segments that each decode on their own (None: lost).

    codec_params travel in the header (jpeg: quality, MCUs per restart interval), so a
    receiver can rebuild what a lost segment held in common (a JPEG header).

    segment_importance, when given, is each segment's importance class (0..255): the
    packetizer never puts segments of two classes in one datagram, sends the more important
    class first, and writes the class in each datagram's `importance` field (where an
    importance-aware PHY stage reads it). Empty: every datagram carries `importance`."""

    segments: tuple[bytes | None, ...]
    codec_params: tuple[int, int] = (0, 0)
    image_size: tuple[int, int] = (0, 0)
    codec_id: int = 0
    stream_id: int = 0
    importance: int = 0
    kb_version: int = 0
    segment_importance: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.segments))
        object.__setattr__(self, "segment_importance", tuple(int(c) for c in self.segment_importance))
        if not self.segments:
            raise FrameError("a stream frame needs at least one segment")
        if self.segment_importance and (len(self.segment_importance) != len(self.segments)
                                        or not all(0 <= c <= 255 for c in self.segment_importance)):
            raise FrameError(f"segment_importance needs one class in 0..255 per segment ({len(self.segments)})")
        if any(segment is not None and not segment for segment in self.segments):
            raise FrameError("a segment holds at least one byte")

    @classmethod
    def cut(cls, stream: bytes, offsets: tuple[int, ...] | list[int], **fields) -> StreamFrame:
        """`stream` cut at `offsets` (the first is 0): segment i is stream[offsets[i]:offsets[i+1]]."""
        bounds = (*offsets, len(stream))
        if not offsets or offsets[0] != 0 or any(b <= a for a, b in zip(bounds, bounds[1:])):
            raise FrameError(f"segment offsets must start at 0 and increase within {len(stream)} bytes")
        return cls(tuple(stream[a:b] for a, b in zip(bounds, bounds[1:])), **fields)

    @property
    def received(self) -> np.ndarray:
        """bool per segment: did it arrive whole."""
        return np.array([segment is not None for segment in self.segments], dtype=bool)

    @property
    def complete(self) -> bool:
        return all(segment is not None for segment in self.segments)

    def present(self) -> dict[int, bytes]:
        """The segments that arrived, by index."""
        return {index: segment for index, segment in enumerate(self.segments) if segment is not None}

    @property
    def stream(self) -> bytes:
        """The whole stream (a sender's frame: every segment present)."""
        if not self.complete:
            raise FrameError("a stream with lost segments has no whole stream")
        return b"".join(self.segments)

    @property
    def segment_offsets(self) -> tuple[int, ...]:
        if not self.complete:
            raise FrameError("a stream with lost segments has no offsets")
        lengths = np.fromiter((len(segment) for segment in self.segments), dtype=np.int64)
        return tuple((np.cumsum(lengths) - lengths).tolist())
