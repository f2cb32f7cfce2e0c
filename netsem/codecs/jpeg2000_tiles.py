"""`jpeg2000-tiles`: JPEG 2000 (OpenJPEG through Pillow) in tiles, one tile-part per segment, so
that any received tile decodes.

JPEG 2000 codes its tiles independently (each its own wavelet transform and code-blocks), and a
tile-part (from its SOT marker to the next) holds a whole tile. The codestream's main header
(SIZ, COD, QCD, COM) depends only on the image size and the tile side (checked: the same bytes
for any content and rate), so it does not travel: the receiver writes it (a blank tile's
header with the image size put in), then gives OpenJPEG that header, the tile-parts that arrived and EOC.
OpenJPEG leaves the missing tiles empty; they are concealed as `webp`'s are (interpolation
between the received pixels, down the column and along the row). A received tile-part whose
SOT marker does not name its own index and length, or is not the tile's only part, is treated
as lost.

Tile side: the largest of 256, 128, 64 and 32 pixels whose every tile-part fits the datagram
payload budget (32 if none does). Quality q in 1..95 sets the compression ratio
256^((100 - q) / 100) : 1 (q 50: 16:1), one quality layer, irreversible 9/7 wavelet, 4
resolutions. `codec_params` = (quality, tile side).

What cutting costs: JPEG 2000 wants large tiles (its wavelet sees the tile's edges as the
image's). At 0.75 bpp on astronaut, one whole-image codestream gives 31.06 dB, 256-pixel tiles
30.52, 128-pixel 29.48, 64-pixel 27.87, and a tile-part must fit a datagram (~1.1 kB), which
at that rate means 64 or 128 pixels.
"""

from __future__ import annotations

import io
import struct
from functools import lru_cache

import numpy as np
from PIL import Image

from .base import CodecError, Frame
from .tiles import TiledCodec, conceal_tiles

SOT, SOD, EOC = b"\xff\x90", b"\xff\x93", b"\xff\xd9"
SOT_SIZE = 12  # SOT marker and its segment: Lsot, Isot, Psot, TPsot, TNsot
# Wavelet resolutions: 4 was best for tiles of 64 to 256 pixels (astronaut at 32:1, PSNR dB by
# resolutions 3 / 4 / 5 / 6: 64-pixel tiles 27.79 / 27.87 / 27.39 / 26.91, 128: 28.97 / 29.48 /
# 29.37 / 29.24, 256: 29.91 / 30.52 / 30.51 / 30.47; OpenJPEG's default is 6)
RESOLUTIONS = 4
SIZE_OFFSET = 8  # Xsiz, Ysiz in the main header: after SOC, the SIZ marker, Lsiz and Rsiz


class Jpeg2000TilesCodec(TiledCodec):
    """Tiled JPEG 2000; frames are `StreamFrame`s of one segment per tile-part."""

    name = "jpeg2000-tiles"
    tile_sides = (256, 128, 64, 32)

    @property
    def ratio(self) -> float:
        return 256.0 ** ((100 - self.quality) / 100)

    def tile_segments(self, image: np.ndarray, side: int) -> list[bytes]:
        return _tile_parts(_encode(image, side, self.ratio))

    def from_frame(self, frame: Frame) -> np.ndarray:
        """The image from the tiles that arrived; lost tiles concealed."""
        h, w, side, rows, cols = self.tiling(frame)
        received = {index: part for index, part in frame.present().items() if _is_tile_part(part, index)}
        if not received:
            return np.full((h, w, 3), 128, np.uint8)
        stream = _main_header(h, w, side) + b"".join(received[index] for index in sorted(received)) + EOC
        try:
            with Image.open(io.BytesIO(stream), formats=["JPEG2000"]) as decoded:
                if decoded.size != (w, h):  # the header is ours: a last guard before the pixels
                    raise CodecError(f"jpeg2000-tiles: decoded size {decoded.size[1]}x{decoded.size[0]} != {h}x{w}")
                out = np.asarray(decoded.convert("RGB"))
        except CodecError:
            raise
        except Exception as error:  # noqa: BLE001 — OpenJPEG's refusal of a peer's tile-parts
            raise CodecError(f"jpeg2000-tiles: OpenJPEG cannot decode the received tiles ({error})") from None
        lost = np.ones(rows * cols, dtype=bool)
        lost[list(received)] = False
        return conceal_tiles(out, lost.reshape(rows, cols), side)


def _encode(image: np.ndarray, side: int, ratio: float) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG2000", tile_size=(side, side), quality_mode="rates",
                                quality_layers=[ratio], irreversible=True, no_jp2=True, num_resolutions=RESOLUTIONS)
    return buffer.getvalue()


def _tile_parts(codestream: bytes) -> list[bytes]:
    """The codestream's tile-parts in order (main header and EOC left out)."""
    parts, at = [], codestream.find(SOT)
    while codestream[at : at + 2] == SOT:
        length = struct.unpack_from(">I", codestream, at + 6)[0]
        parts.append(codestream[at : at + length])
        at += length
    if codestream[at:] != EOC:
        raise CodecError("jpeg2000-tiles: OpenJPEG's codestream does not end in EOC after its tile-parts")
    return parts


@lru_cache(maxsize=8)
def _main_header(height: int, width: int, side: int) -> bytes:
    """What every codestream of this geometry starts with (content and rate do not change it):
    a one-tile image's header with the image size written into SIZ (checked equal to the whole
    image's, sizes 1x1 to 1000x37), so a peer's 4096x4096 claim costs no 4096x4096 encode."""
    codestream = _encode(np.zeros((min(height, side), min(width, side), 3), np.uint8), side, 16.0)
    header = codestream[: codestream.find(SOT)]
    return header[:SIZE_OFFSET] + struct.pack(">II", width, height) + header[SIZE_OFFSET + 8 :]


def _is_tile_part(part: bytes, index: int) -> bool:
    """Whether `part` is tile `index`'s one and only tile-part: SOT naming that index and the
    part's own length, then SOD."""
    if len(part) < SOT_SIZE + 2 or part[:2] != SOT:
        return False
    length, tile, size, part_index, parts = struct.unpack_from(">HHIBB", part, 2)
    header_ok = (length, tile, size, part_index, parts) == (10, index, len(part), 0, 1)
    return header_ok and part[SOT_SIZE : SOT_SIZE + 2] == SOD
