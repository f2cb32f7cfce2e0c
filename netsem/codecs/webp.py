"""`webp`: WebP (libwebp through Pillow) cut into tiles that each decode on their own.

A WebP image has no restart markers: one lost byte loses the rest of it.  So the image is cut
into square tiles, each encoded as a WebP image of its own (lossy, `quality` 1..95, method 4),
and each tile is one segment of the frame's byte stream (raster order); any received tile
decodes alone.  The tile side is the largest of 128, 64, 32 and 16 pixels at which every tile
fits the datagram's payload budget (so a lost datagram costs only the tiles it carried), 16 if
none does.  A lost tile, and a received one that does not decode to its size, is concealed
like a lost JPEG MCU: linear interpolation between the received pixels above and below it.

What the tiling costs: each tile repeats WebP's RIFF and VP8 headers (~30 bytes, 0.06 bpp at
64x64) and its prediction restarts at every tile edge, so a tiled WebP is several tenths of a
dB below one WebP image of the same bytes (measured in the README's rate-point tables).
`codec_params` = (quality, tile side): all a receiver needs to place the tiles.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from .base import Frame
from .tiles import TiledCodec, conceal_tiles, tiles


class WebpCodec(TiledCodec):
    """Tiled WebP; frames are `StreamFrame`s of one segment per tile."""

    name = "webp"
    tile_sides = (128, 64, 32, 16)

    def tile_segments(self, image: np.ndarray, side: int) -> list[bytes]:
        return [_encode(tile, self.quality) for tile in tiles(image, side)]

    def from_frame(self, frame: Frame) -> np.ndarray:
        """The image from the tiles that arrived; lost (or undecodable) tiles concealed."""
        h, w, side, rows, cols = self.tiling(frame)
        out = np.zeros((h, w, 3), np.uint8)
        lost = np.ones((rows, cols), dtype=bool)
        for index, data in frame.present().items():
            row, col = divmod(index, cols)
            top, left = row * side, col * side
            tile = _decode(data, (min(side, h - top), min(side, w - left)))
            if tile is not None:
                out[top : top + tile.shape[0], left : left + tile.shape[1]] = tile
                lost[row, col] = False
        return conceal_tiles(out, lost, side)


def _encode(tile: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(tile)).save(buffer, format="WEBP", quality=quality, method=4)
    return buffer.getvalue()


def _decode(data: bytes, size: tuple[int, int]) -> np.ndarray | None:
    """The tile, or None when the bytes are not a WebP image of exactly `size` (h, w): its
    size is read from the header before any pixel is decoded, so a peer's tile claiming
    16383x16383 allocates nothing."""
    try:
        with Image.open(io.BytesIO(data), formats=["WEBP"]) as image:
            if image.size != (size[1], size[0]):
                return None
            return np.asarray(image.convert("RGB"))
    except Exception:  # noqa: BLE001 — libwebp's refusal of a damaged tile: concealed like a lost one
        return None
