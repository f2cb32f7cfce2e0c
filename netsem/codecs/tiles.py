"""Square tiles for the classic codecs that have no resynchronisation points of their own
(WebP, JPEG 2000): the grid, and the concealment of lost tiles."""

from __future__ import annotations

import numpy as np

from packetizers.frames import StreamFrame

from .base import CodecError, Frame, check_image_size
from .jpeg import conceal_blocks


def tile_grid(image_size: tuple[int, int], side: int) -> tuple[int, int]:
    """(rows, columns) of side x side tiles covering the image (edge tiles smaller)."""
    return -(-image_size[0] // side), -(-image_size[1] // side)


def check_tiling(frame: Frame, name: str, sides: tuple[int, ...]) -> tuple[int, int, int, int, int]:
    """(height, width, tile side, rows, columns) of a received tiled frame: CodecError unless it
    is a byte stream whose `codec_params` name one of `sides` and whose segments tile its image."""
    if not isinstance(frame, StreamFrame):
        raise CodecError(f"{name} decodes byte streams, not a latent")
    h, w = check_image_size(frame.image_size)
    side = frame.codec_params[1]
    if side not in sides:
        raise CodecError(f"{name}: tile side {side} is none of {sides}")
    rows, cols = tile_grid((h, w), side)
    if len(frame.segments) != rows * cols:
        raise CodecError(f"{name}: {len(frame.segments)} segments do not tile a {h}x{w} image "
                         f"in {side}x{side} tiles ({rows * cols})")
    return h, w, side, rows, cols


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
