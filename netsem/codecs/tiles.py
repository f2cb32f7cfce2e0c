"""Square tiles for the classic codecs that have no resynchronisation points of their own
(WebP, JPEG 2000): what such a codec shares (`TiledCodec`), the grid, and the concealment of
lost tiles."""

from __future__ import annotations

import numpy as np

from packetizers.frames import StreamFrame
from packetizers.kinds import PartitionKind

from .base import CodecError, Frame, check_image, check_image_size
from .jpeg import conceal_blocks


class TiledCodec:
    """A classic codec cut into square tiles, one segment of the byte stream per tile: a quality
    1..95, and the tile side the largest of `tile_sides` whose every segment fits the datagram's
    payload budget (the smallest if none does). `codec_params` = (quality, tile side).
    Subclasses name themselves, list their sides and encode a tiling (`tile_segments`)."""

    name: str
    tile_sides: tuple[int, ...]  # tried in this order
    layout = "bytes"
    partitions = (PartitionKind.SEGMENT.word,)

    def __init__(self, quality: int = 75) -> None:
        if not 1 <= quality <= 95:
            raise CodecError(f"{self.name} quality {quality} outside 1..95")
        self.quality = quality

    def tile_segments(self, image: np.ndarray, side: int) -> list[bytes]:
        """The image's segments in side x side tiles, raster order."""
        raise NotImplementedError

    def to_frame(self, image: np.ndarray, payload_budget: int = 0) -> StreamFrame:
        image = check_image(image)
        for side in self.tile_sides:
            segments = self.tile_segments(image, side)
            if payload_budget <= 0 or max(map(len, segments)) <= payload_budget:
                break
        return StreamFrame(tuple(segments), codec_params=(self.quality, side), image_size=image.shape[:2])

    def tiling(self, frame: Frame) -> tuple[int, int, int, int, int]:
        """(height, width, tile side, rows, columns) of a received frame: CodecError unless it is a
        byte stream whose `codec_params` name one of our sides and whose segments tile its image."""
        if not isinstance(frame, StreamFrame):
            raise CodecError(f"{self.name} decodes byte streams, not a latent")
        h, w = check_image_size(frame.image_size)
        side = frame.codec_params[1]
        if side not in self.tile_sides:
            raise CodecError(f"{self.name}: tile side {side} is none of {self.tile_sides}")
        rows, cols = tile_grid((h, w), side)
        if len(frame.segments) != rows * cols:
            raise CodecError(f"{self.name}: {len(frame.segments)} segments do not tile a {h}x{w} image "
                             f"in {side}x{side} tiles ({rows * cols})")
        return h, w, side, rows, cols


def tile_grid(image_size: tuple[int, int], side: int) -> tuple[int, int]:
    """(rows, columns) of side x side tiles covering the image (edge tiles smaller)."""
    return -(-image_size[0] // side), -(-image_size[1] // side)


def tiles(image: np.ndarray, side: int) -> list[np.ndarray]:
    """The tiles in raster order."""
    return [image[top : top + side, left : left + side]
            for top in range(0, image.shape[0], side) for left in range(0, image.shape[1], side)]


def conceal_tiles(image: np.ndarray, lost: np.ndarray, side: int) -> np.ndarray:
    """Lost tiles (a rows x cols bool grid) filled with the mean of two interpolations between
    received pixels: down their column of tiles and along their row (a tile is too tall for
    the vertical alone); one alone where the other has nothing to interpolate from (a column
    or row lost whole); mid-gray when nothing arrived."""
    if lost.all():
        return np.full_like(image, 128)
    vertical = conceal_blocks(image, lost, side).astype(np.float32)
    horizontal = conceal_blocks(image.transpose(1, 0, 2), lost.T, side).transpose(1, 0, 2).astype(np.float32)
    weight = np.where(lost.all(axis=0)[None, :], 0.0, np.where(lost.all(axis=1)[:, None], 1.0, 0.5))
    weight = np.repeat(np.repeat(weight, side, 0), side, 1)[: image.shape[0], : image.shape[1], None]
    return np.round(weight * vertical + (1 - weight) * horizontal).astype(np.uint8)
