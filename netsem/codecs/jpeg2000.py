"""JPEG 2000 (OpenJPEG through Pillow) as a byte stream: a classic baseline for seed 001.

    codec = get_codec("jpeg2000", ratio=40)          # 40:1 against the raw 24-bit image
    frame = codec.encode_to_bytes(image, 1500)        # the rate that fits 1500 bytes

The codestream has four quality layers (1/8, 1/4, 1/2 and all of the rate) in LRCP order, so
any prefix of it is a lower-quality image. It is cut into datagram-sized segments; a receiver
decodes the received prefix up to the first lost segment (OpenJPEG decodes a truncated
codestream once its tile-part length is set to what arrived and an end marker appended; a cut
inside a packet does not decode, so the receiver backs off 16 bytes at a time, at most 64
times, to a cut that does), and with nothing usable (the main header lost) gives mid-gray. JPEG 2000's own
error-resilience tools (SOP/EPH markers, segmentation symbols) are not used: the baseline is
the plain codec the seed compares against.
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image

from packetizers.frames import StreamFrame

from .base import CodecError, check_image, check_image_size

LAYERS = (8, 4, 2, 1)  # each quality layer's compression, as multiples of the final ratio
DEFAULT_SEGMENT = 1100


class Jpeg2000Codec:
    name = "jpeg2000"
    partitions = ("segment",)
    description = "JPEG 2000 (OpenJPEG), 4 quality layers LRCP; a lost segment truncates the codestream"

    def __init__(self, ratio: float = 40.0) -> None:
        if not ratio >= 1:
            raise CodecError(f"jpeg2000: compression ratio {ratio} must be >= 1")
        self.ratio = float(ratio)

    def _encode(self, image: np.ndarray, ratio: float) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG2000", quality_mode="rates", progression="LRCP",
                                    quality_layers=[ratio * k for k in LAYERS], irreversible=True, no_jp2=True)
        return buf.getvalue()

    def _frame(self, image: np.ndarray, data: bytes, payload_budget: int) -> StreamFrame:
        step = payload_budget if payload_budget > 0 else DEFAULT_SEGMENT
        return StreamFrame.cut(data, list(range(0, len(data), step)), image_size=image.shape[:2])

    def to_frame(self, image: np.ndarray, payload_budget: int = 0) -> StreamFrame:
        image = check_image(image)
        return self._frame(image, self._encode(image, self.ratio), payload_budget)

    def encode_to_bytes(self, image: np.ndarray, target_bytes: int, payload_budget: int = 0) -> StreamFrame:
        """The stream at the rate whose size is closest to `target_bytes` without passing it."""
        image = check_image(image)
        raw = image.size
        ratio = max(1.0, raw / max(1, target_bytes))
        data = self._encode(image, ratio)
        for _ in range(8):
            if len(data) <= target_bytes:
                break
            ratio *= len(data) / target_bytes * 1.02
            data = self._encode(image, ratio)
        return self._frame(image, data, payload_budget)

    def from_frame(self, frame: StreamFrame) -> np.ndarray:
        if not isinstance(frame, StreamFrame):
            raise CodecError("jpeg2000 decodes a byte stream, not a latent")
        h, w = check_image_size(frame.image_size)
        prefix = b""
        for segment in frame.segments:
            if segment is None:
                break
            prefix += segment
        gray = np.full((h, w, 3), 128, np.uint8)
        complete = frame.complete
        out = _decode(prefix) if complete else None
        sot = prefix.find(b"\xff\x90")
        for cut in ([] if complete or sot < 0 else range(len(prefix), sot + 12, -16)[:64]):
            patched = bytearray(prefix[:cut])
            struct.pack_into(">I", patched, sot + 6, cut - sot)  # Psot: this tile-part ends here
            out = _decode(bytes(patched) + b"\xff\xd9")
            if out is not None:
                break
        if out is None or out.shape[:2] != (h, w):
            return gray
        return np.ascontiguousarray(out)


def _decode(data: bytes) -> np.ndarray | None:
    """The image, or None where OpenJPEG refuses the codestream (Pillow's truncated-image
    leniency stays off: it would hand back black pixels instead of an error)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except Exception:  # noqa: BLE001 — OpenJPEG's refusal of a damaged codestream: nothing to show
        return None
