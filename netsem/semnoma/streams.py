"""Seed 004 on netsem's wire (no torch): each user's symbols and the received signal.

A user sends its unit-power symbols as seed 000's feature frames (`netsem.multiuser.streams`:
12-bit values over +-4, 16 complex symbols per token, token partition) with stream id
(PRIVATE, user) and this codec's id; the air turns the K datagrams of one slot (same frame id,
same datagram index: the same tokens, since every user packetizes the same shape with the same
seed) into one datagram with stream id (SUPERPOSED, K) carrying the received signal
y / sqrt(1 + sum |g_k|^2) (unit average power, so the same quantizer holds). `kb_version`
carries 16 bits of the model's config CRC, as seed 000's frames do.
"""

from __future__ import annotations

import numpy as np

from netsem.multiuser.streams import features_frame, frame_symbols, model_tag  # noqa: F401
from packetizers.frames import LatentFrame
from packetizers.kinds import STREAM_INDEX_MASK, STREAM_KIND_SHIFT, StreamKind

CODEC_NAME = "semnoma"


def codec_id() -> int:
    from netsem.codecs.registry import derived_id

    return derived_id(CODEC_NAME)


def user_stream(user: int) -> int:
    if not 0 <= user <= STREAM_INDEX_MASK:
        raise ValueError(f"user {user} outside 0..{STREAM_INDEX_MASK}")
    return (StreamKind.PRIVATE << STREAM_KIND_SHIFT) | user


def superposed_stream(users: int) -> int:
    return (StreamKind.SUPERPOSED << STREAM_KIND_SHIFT) | users


def user_frame(symbols: np.ndarray, user: int, image_size: tuple[int, int], tag: int) -> LatentFrame:
    """(L,) complex transmitted symbols -> the user's frame."""
    pairs = np.stack([symbols.real, symbols.imag], axis=-1).reshape(1, -1)
    return features_frame(pairs, stream_id=user_stream(user), image_size=image_size, kb_version=tag, codec=codec_id())


def frame_complex(latent: np.ndarray, received: np.ndarray, symbols: int,
                  scale: float) -> tuple[np.ndarray, np.ndarray]:
    """A received frame's (tokens, 32) latent and mask -> (L,) complex symbols (0 where lost)
    and the (L,) erased mask."""
    values, erased = frame_symbols(latent, received, 1, symbols, scale)
    return values[0, 0::2] + 1j * values[0, 1::2], erased[0]
