"""`jpeg`: a real baseline JPEG stream with restart markers, cut at the marker boundaries.

Segment 0 is the header (SOI .. SOS); segment i >= 1 is restart interval i-1 (its entropy-
coded bytes plus the RST marker that ends it, or EOI for the last).  The segments
concatenate to the exact stream.  An interval is one MCU row by default, or any number of
MCUs in raster order (``restart_mcus``; `to_frame` picks it so every interval fits a
datagram).  Since the Huffman tables are the standard ones (``optimize=False``) the receiver
can rebuild a lost header from (H, W, quality, restart_mcus), so no segment is special.  A
lost interval is decoded with a received interval's bytes in its place (DC prediction
restarts at every marker, so intervals are position-independent) and its MCUs are then
concealed by vertical interpolation between the received pixels above and below them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
from PIL import Image

from packetizers.frames import StreamFrame
from packetizers.kinds import PartitionKind

from .base import CodecError, Frame, check_image, check_image_size

MCU = 16  # 4:2:0 chroma subsampling: 16x16 MCUs
MAX_SIDE = 65500  # the largest JPEG dimension
SOF_BASELINE, SOF_PROGRESSIVE, DHT, SOS, DQT, DRI, APP0, COM = (
    0xC0, 0xC2, 0xC4, 0xDA, 0xDB, 0xDD, 0xE0, 0xFE
)
# the marker segments of the header Pillow writes for us (a received header may hold no other)
HEADER_MARKERS = {SOF_BASELINE, SOF_PROGRESSIVE, DHT, SOS, DQT, DRI, APP0, COM}
SAMPLING_420 = (0x22, 0x11, 0x11)  # (H << 4 | V) of Y, Cb, Cr


def _header_segments(data: bytes) -> Iterator[tuple[int, bytes, int]]:
    """(marker, payload, end offset) of each marker segment after SOI, up to and including
    SOS; CodecError if the bytes are not such a sequence."""
    if data[:2] != b"\xff\xd8":
        raise CodecError("jpeg: the header does not start with SOI")
    i = 2
    while True:
        if i + 4 > len(data) or data[i] != 0xFF:
            raise CodecError("jpeg: malformed header (no SOS segment where one was due)")
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        end = i + 2 + length
        if length < 2 or end > len(data):
            raise CodecError(f"jpeg: marker segment 0x{marker:02X} runs past the header")
        yield marker, data[i + 4 : end], end
        if marker == SOS:
            return
        i = end


def _scan_start(data: bytes) -> int:
    """Offset of the first entropy-coded byte (just after the SOS segment)."""
    for _, _, end in _header_segments(data):
        pass
    return end


def check_header(header: bytes, image_size: tuple[int, int], restart_mcus: int) -> None:
    """CodecError unless ``header`` (SOI .. SOS, received from a peer) is one this codec
    writes for ``image_size``: only Pillow's marker segments, one baseline or progressive
    8-bit SOF of exactly that size with Y, Cb, Cr sampled 4:2:0, a restart interval of
    ``restart_mcus``, nothing after SOS.  The SOF's size is what libjpeg allocates for, so a
    header claiming 65500x2700 in a 64x64 frame must not reach Pillow."""
    sofs, interval = [], None
    for marker, payload, end in _header_segments(header):
        if marker not in HEADER_MARKERS:
            raise CodecError(f"jpeg: unexpected marker 0x{marker:02X} in the header")
        if marker in (SOF_BASELINE, SOF_PROGRESSIVE):
            sofs.append(payload)
        elif marker == DRI and len(payload) == 2:
            interval = int.from_bytes(payload, "big")
        elif marker == SOS and end != len(header):
            raise CodecError("jpeg: bytes after the header's SOS segment")
    if len(sofs) != 1 or len(sofs[0]) < 6:
        raise CodecError(f"jpeg: the header holds {len(sofs)} usable SOF segments, not 1")
    sof = sofs[0]  # precision, height, width, components, then (id, sampling, table) each
    height, width, components = int.from_bytes(sof[1:3], "big"), int.from_bytes(sof[3:5], "big"), sof[5]
    if (height, width) != tuple(image_size):
        raise CodecError(f"jpeg: the stream's SOF says {height}x{width}, "
                         f"the frame {image_size[0]}x{image_size[1]}")
    whole = len(sof) == 6 + 3 * components
    sampling = tuple(sof[7 + 3 * k] for k in range(components)) if whole else ()
    if sof[0] != 8 or sampling != SAMPLING_420:
        raise CodecError("jpeg: the stream's SOF is not 8-bit Y, Cb, Cr sampled 4:2:0")
    if interval != restart_mcus:
        raise CodecError(f"jpeg: the header's restart interval is {interval} MCUs, the frame's {restart_mcus}")


def split_stream(data: bytes) -> list[int]:
    """Segment offsets: header, then one per restart interval (marker included)."""
    start = _scan_start(data)
    offsets = [0, start]
    i = start
    n = len(data)
    while i < n - 1:
        if data[i] == 0xFF:
            nxt = data[i + 1]
            if 0xD0 <= nxt <= 0xD7:
                offsets.append(i + 2)
                i += 2
                continue
            if nxt == 0xD9:
                break
        i += 1
    if offsets[-1] >= n:
        offsets.pop()
    return offsets


class JpegCodec:
    """Its frames are `StreamFrame`s: segment 0 the header, then one per restart interval;
    `codec_params` = (quality, MCUs per restart interval), what a lost header is rebuilt from."""

    name = "jpeg"
    layout = "bytes"
    partitions = (PartitionKind.SEGMENT.word,)

    def __init__(self, quality: int = 75, restart_mcus: int | None = None) -> None:
        if not 1 <= quality <= 95:
            raise CodecError(f"jpeg quality {quality} outside 1..95")
        if restart_mcus is not None and not 1 <= restart_mcus <= 0xFFFF:
            raise CodecError(f"jpeg restart interval of {restart_mcus} MCUs outside 1..65535")
        self.quality = quality
        self.restart_mcus = restart_mcus  # None: one MCU row

    def interval_mcus(self, image_size: tuple[int, int], restart_mcus: int | None = None) -> int:
        """MCUs per restart interval for an image of this size."""
        return restart_mcus or self.restart_mcus or mcu_grid(image_size)[1]

    def _save(self, image: np.ndarray, quality: int, restart_mcus: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(image).save(
            buf, format="JPEG", quality=quality, subsampling="4:2:0", optimize=False,
            restart_marker_blocks=restart_mcus,
        )
        return buf.getvalue()

    def intervals(self, image_size: tuple[int, int], restart_mcus: int | None = None) -> int:
        rows, cols = mcu_grid(image_size)
        return -(-rows * cols // self.interval_mcus(image_size, restart_mcus))

    def to_frame(self, image: np.ndarray, payload_budget: int = 0) -> StreamFrame:
        """The stream cut at its restart markers, each interval within `payload_budget` bytes
        when one is given (see `fit_segments`)."""
        return self.fit_segments(image, payload_budget) if payload_budget > 0 else self.encode(image)

    def from_frame(self, frame: Frame) -> np.ndarray:
        """The image from the segments that arrived; lost intervals' MCUs are concealed."""
        if not isinstance(frame, StreamFrame):
            raise CodecError("jpeg decodes byte streams, not a latent")
        quality, restart_mcus = frame.codec_params
        size = check_image_size(frame.image_size)
        if len(frame.segments) != 1 + self.intervals(size, restart_mcus or None):
            raise CodecError(f"jpeg: {len(frame.segments)} segments do not fit a {size[0]}x{size[1]} image "
                             f"with {restart_mcus} MCUs per restart interval")
        return self.decode_segments(frame.present(), size, quality, restart_mcus)

    def encode(self, image: np.ndarray, quality: int | None = None, restart_mcus: int | None = None) -> StreamFrame:
        image = check_image(image)
        q = self.quality if quality is None else quality
        k = self.interval_mcus(image.shape[:2], restart_mcus)
        data = self._save(image, q, k)
        offsets = split_stream(data)
        want = 1 + self.intervals(image.shape[:2], k)
        if len(offsets) != want:
            raise CodecError(f"expected {want} JPEG segments, found {len(offsets)}")
        return StreamFrame.cut(data, offsets, codec_params=(q, k), image_size=image.shape[:2])

    def fit_segments(self, image: np.ndarray, max_segment: int) -> StreamFrame:
        """The stream with restart intervals short enough that each segment (the header
        aside) fits ``max_segment`` bytes, so a lost datagram costs only the MCUs it carried;
        as long as possible otherwise (every marker costs bytes).  One MCU per interval is
        the floor."""
        frame = self.encode(image)
        k = frame.codec_params[1]
        while k > 1:
            longest = max(len(segment) for segment in frame.segments[1:])
            if longest <= max_segment:
                break
            k = max(1, min(k - 1, int(k * max_segment / longest * 0.95)))
            frame = self.encode(image, restart_mcus=k)
        return frame

    def header(self, image_size: tuple[int, int], quality: int, restart_mcus: int | None = None) -> bytes:
        """The header any image of this size and quality gets (standard Huffman tables)."""
        data = self._save(np.zeros((*image_size, 3), np.uint8), quality, self.interval_mcus(image_size, restart_mcus))
        return data[: _scan_start(data)]

    def encode_to_bytes(self, image: np.ndarray, target_bytes: int) -> StreamFrame:
        """The highest quality whose stream fits ``target_bytes`` (quality 1 if none fits)."""
        lo, hi, best = 1, 95, None
        while lo <= hi:
            mid = (lo + hi) // 2
            s = self.encode(image, mid)
            if sum(map(len, s.segments)) <= target_bytes:
                best, lo = s, mid + 1
            else:
                hi = mid - 1
        return best if best is not None else self.encode(image, 1)

    def decode_segments(
        self, segments: dict[int, bytes], image_size: tuple[int, int], quality: int | None = None,
        restart_mcus: int | None = None,
    ) -> np.ndarray:
        """Rebuild the image from the received segments (by index); lost intervals' MCUs are
        concealed."""
        h, w = image_size = check_image_size(image_size)
        if not (h <= MAX_SIDE and w <= MAX_SIDE):
            raise CodecError(f"jpeg: image size {h}x{w} over {MAX_SIDE} a side")
        q = self.quality if quality is None else quality
        if not 1 <= q <= 95:
            raise CodecError(f"jpeg: quality {q} outside 1..95")
        if restart_mcus is not None and not 0 <= restart_mcus <= 0xFFFF:
            raise CodecError(f"jpeg: restart interval of {restart_mcus} MCUs outside 0..65535 "
                             "(0: one MCU row)")
        k = self.interval_mcus(image_size, restart_mcus)
        n = self.intervals(image_size, k)
        rows, cols = mcu_grid(image_size)
        if 0 in segments:
            header = segments[0]
            check_header(header, image_size, k)
        else:
            try:
                header = self.header(image_size, q, k)
            except (ValueError, OSError, OverflowError) as exc:
                raise CodecError(f"jpeg: cannot rebuild the header for quality {q}, {k} MCUs per interval ({exc})") from None
        bodies = {i: segments[i + 1][:-2] for i in range(n) if (i + 1) in segments}
        for i, body in bodies.items():
            # entropy-coded data escapes every 0xFF as FF 00: any other FF starts a marker
            # (a second SOF, an early EOI) that the checked header would not cover
            if b"\xff" in body.replace(b"\xff\x00", b""):
                raise CodecError(f"jpeg: restart interval {i} holds a marker")
        # a donor of the same MCU count: any received full-length interval
        last_short = (rows * cols) % k != 0
        full = [i for i in bodies if not (last_short and i == n - 1)]
        if not bodies or (not full and n > 1):
            return np.full((h, w, 3), 128, np.uint8)
        parts = [header]
        lost_mcus = np.zeros(rows * cols, dtype=bool)
        for i in range(n):
            body = bodies.get(i)
            if body is None:
                lost_mcus[i * k : (i + 1) * k] = True
                if last_short and i == n - 1:
                    break  # truncated stream: libjpeg fills the rest, concealed below
                body = bodies[full[0]]
            parts.append(body)
            if i < n - 1:
                parts.append(bytes([0xFF, 0xD0 + (i % 8)]))
        parts.append(b"\xff\xd9")
        from PIL import ImageFile

        old = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            with Image.open(io.BytesIO(b"".join(parts)), formats=["JPEG"]) as im:
                if im.size != (w, h):  # checked above: a last guard before the pixels are allocated
                    raise CodecError(f"jpeg: stream size {im.size[1]}x{im.size[0]} != {h}x{w}")
                img = np.asarray(im.convert("RGB"))
        except CodecError:
            raise
        except Exception as exc:
            raise CodecError(f"jpeg: cannot decode the received stream ({exc})") from None
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = old
        if img.shape[:2] != (h, w):
            raise CodecError(f"jpeg: decoded size {img.shape[:2]} != {(h, w)}")
        return conceal_blocks(img, lost_mcus.reshape(rows, cols))


def mcu_grid(image_size: tuple[int, int]) -> tuple[int, int]:
    """(rows, columns) of 16x16 MCUs covering the image."""
    return -(-image_size[0] // MCU), -(-image_size[1] // MCU)


def conceal_blocks(img: np.ndarray, lost: np.ndarray, side: int = MCU) -> np.ndarray:
    """Conceal lost side x side blocks (a rows x cols bool grid: JPEG's MCUs, WebP's tiles),
    one column strip of blocks at a time."""
    if not lost.any():
        return img
    out = img.copy()
    for col in np.flatnonzero(lost.any(axis=0)):
        lost_rows = np.repeat(lost[:, col], side)[: img.shape[0]]
        strip = slice(col * side, (col + 1) * side)
        out[:, strip] = conceal_rows(img[:, strip], lost_rows)
    return out


def conceal_rows(img: np.ndarray, lost: np.ndarray) -> np.ndarray:
    """Replace lost rows by linear interpolation between the nearest received rows."""
    if not lost.any():
        return img
    good = np.flatnonzero(~lost)
    if good.size == 0:
        return np.full_like(img, 128)
    out = img.astype(np.float32)
    bad = np.flatnonzero(lost)
    above = np.searchsorted(good, bad) - 1
    for r, a in zip(bad, above):
        lo = good[a] if a >= 0 else None
        hi = good[a + 1] if a + 1 < good.size else None
        if lo is None:
            out[r] = out[hi]
        elif hi is None:
            out[r] = out[lo]
        else:
            t = (r - lo) / (hi - lo)
            out[r] = (1 - t) * out[lo] + t * out[hi]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
