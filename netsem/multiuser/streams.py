"""Seed 000's streams on netsem's wire: stream ids, and features <-> `LatentFrame`s (no torch).

Stream id (16 bits, the header's `stream_id`):

    bits 15-14   kind: 00 an ordinary single-user stream (what `netsem send` sends; unchanged),
                       01 private features of one user, 10 common features of one group,
                       11 reserved
    bits 13-0    the user (private) or the group (common), 0 .. 16383

so common features of group g travel as 0x8000 | g, private features of user k as 0x4000 | k.
All streams of one transmission share its frame id, which is how a receiver pairs its group's
common frame with its own private frame.

Features travel as transmitted symbols (unit average power per complex symbol), quantized
uniformly to 12-bit signed integers over +-4 (step 4 / 2047, about 62 dB below the symbol
power: far below any channel noise at the SNRs evaluated), in layout `nd`: one token holds 16
consecutive complex symbols (32 values, 48 bytes; the frame's last token is padded with zeros),
sent with the token partition and interleaving, so a lost datagram erases groups of 16 symbols
scattered over the image, and each token costs 4 bytes of unit id (8 %; a token of one symbol
would cost 4 bytes of id per 3 bytes of values). A frame holds one user's (or group's) symbols
for every 32x32 tile of the image, tile after tile. The `kb_version` field carries 16 bits of
the model's config CRC, so a receiver holding another model rejects the frame instead of decoding garbage.
"""

from __future__ import annotations

import zlib

import numpy as np

from packetizers.frames import LatentFrame
from packetizers.kinds import (  # noqa: F401  (stream_kind, describe_stream: re-exported for the session)
    STREAM_INDEX_MASK,
    STREAM_KIND_SHIFT,
    StreamKind,
    describe_stream,
    stream_kind,
)

BIT_WIDTH = 12
CLIP = 4.0
STEP = CLIP / ((1 << (BIT_WIDTH - 1)) - 1)
SYMBOLS_PER_TOKEN = 16
CODEC_NAME = "gssma"


def _check_index(index: int) -> int:
    if not 0 <= index <= STREAM_INDEX_MASK:
        raise ValueError(f"user / group index {index} outside 0..{STREAM_INDEX_MASK}")
    return index


def common_stream(group: int) -> int:
    return (StreamKind.COMMON << STREAM_KIND_SHIFT) | _check_index(group)


def private_stream(user: int) -> int:
    return (StreamKind.PRIVATE << STREAM_KIND_SHIFT) | _check_index(user)


def codec_id() -> int:
    from netsem.codecs.registry import derived_id

    return derived_id(CODEC_NAME)


def model_tag(config_json: str) -> int:
    """16 bits of the config's CRC: the `kb_version` a receiver checks."""
    return zlib.crc32(config_json.encode()) & 0xFFFF


def tokens_for(symbols: int) -> int:
    return -(-symbols // SYMBOLS_PER_TOKEN)


def features_frame(symbols: np.ndarray, *, stream_id: int, image_size: tuple[int, int], kb_version: int,
                   codec: int | None = None) -> LatentFrame:
    """(tiles, 2 L) transmitted symbols -> a LatentFrame of (tokens, 32) 12-bit integers
    (`codec`: the codec id to carry, this seed's by default; seed 004 shares the format)."""
    values = np.asarray(symbols, dtype=np.float64).reshape(-1)
    padded = np.zeros(tokens_for(values.size // 2) * 2 * SYMBOLS_PER_TOKEN)
    padded[: values.size] = values
    limit = (1 << (BIT_WIDTH - 1)) - 1
    latent = np.clip(np.rint(padded / STEP), -limit, limit).astype(np.int16).reshape(-1, 2 * SYMBOLS_PER_TOKEN)
    return LatentFrame(latent=latent, layout="nd", bit_width=BIT_WIDTH, signed=True, scale=STEP,
                       image_size=image_size, codec_id=codec_id() if codec is None else codec, stream_id=stream_id,
                       kb_version=kb_version)


def tiles_in(tokens: int, dims: int, symbols_per_tile: int) -> int | None:
    """How many tiles of `symbols_per_tile` symbols a frame of (tokens, dims) carries, or None
    when that shape is not one this model sends."""
    if dims != 2 * SYMBOLS_PER_TOKEN or symbols_per_tile <= 0:
        return None
    tiles = tokens * SYMBOLS_PER_TOKEN // symbols_per_tile
    return tiles if tiles > 0 and tokens_for(tiles * symbols_per_tile) == tokens else None


def frame_symbols(latent: np.ndarray, received: np.ndarray, tiles: int, symbols_per_tile: int,
                  scale: float = STEP) -> tuple[np.ndarray, np.ndarray]:
    """A received frame's (tokens, 32) latent and element mask -> symbols (tiles, 2 L) float32
    (0 where lost) and the erased-symbol mask (tiles, L); the padding is dropped."""
    count = tiles * symbols_per_tile
    pairs = np.asarray(latent).reshape(-1, 2)[:count]
    erased = ~np.asarray(received, dtype=bool).reshape(-1, 2)[:count].all(axis=1)
    values = np.where(erased[:, None], 0.0, pairs.astype(np.float64) * scale).astype(np.float32)
    return values.reshape(tiles, -1), erased.reshape(tiles, -1)
