"""Translate between the codec's `EncodedLatent` and the packetizer's frames."""

from __future__ import annotations

import numpy as np

from netsem.codecs.base import EncodedLatent
from packetizers.packetizer import LatentFrame
from packetizers.reassembler import Frame
from packetizers.wire import Layout

_LAYOUTS = {"chw": Layout.CHW, "nd": Layout.ND}


def latent_frame(encoded: EncodedLatent, codec_id: int) -> LatentFrame:
    return LatentFrame(
        latent=encoded.latent,
        layout=_LAYOUTS[encoded.layout],
        bit_width=encoded.bit_width,
        signed=encoded.signed,
        scale=encoded.scale,
        codec_id=codec_id,
        image_size=encoded.image_size,
        token_grid=encoded.token_grid or (0, 0),
    )


def encoded_from_frame(frame: Frame) -> tuple[EncodedLatent, np.ndarray]:
    """The received latent as the codec's input, and its per-element received mask."""
    header = frame.header
    layout = "chw" if header.layout == Layout.CHW else "nd"
    grid = (header.grid_h, header.grid_w) if layout == "nd" and header.grid_h else None
    encoded = EncodedLatent(
        latent=frame.latent,
        layout=layout,
        bit_width=header.bit_width,
        signed=header.signed,
        scale=header.scale,
        image_size=(header.image_height, header.image_width),
        token_grid=grid,
    )
    return encoded, frame.received
