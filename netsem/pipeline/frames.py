"""Translate between codecs and the packetizer's frames: a latent codec's `EncodedLatent`
becomes a `LatentFrame`; jpeg's stream, cut at its restart markers, a `StreamFrame`."""

from __future__ import annotations

import numpy as np

from netsem.codecs.base import Codec, CodecError, EncodedLatent
from netsem.codecs.jpeg import JpegCodec, JpegStream
from netsem.codecs.registry import JPEG_ID, codec_by_id, get_codec, get_jpeg
from packetizers.packetizer import LatentFrame, StreamFrame
from packetizers.reassembler import Frame
from packetizers.wire import CRC_SIZE, HEADER_SIZE, Layout, unit_entry_size

_LAYOUTS = {"chw": Layout.CHW, "nd": Layout.ND}
LATENT_PARTITIONS = ("channel", "token", "spatial")
STREAM_PARTITIONS = ("segment",)  # a byte stream is cut where its format allows (JPEG restart markers)

AnyCodec = Codec | JpegCodec
Encoded = EncodedLatent | JpegStream


def load_codec(name: str, jpeg_quality: int = 75) -> AnyCodec:
    """A codec by name: the registry's latent codecs, or `jpeg` at ``jpeg_quality``."""
    if name == "jpeg":
        return get_jpeg(quality=jpeg_quality)
    return get_codec(name)


def codec_for_frame(frame: Frame) -> AnyCodec:
    """The codec a received frame names (raises CodecError for one we lack)."""
    if frame.header.codec_id == JPEG_ID:
        if frame.header.layout != Layout.BYTES:
            raise CodecError("codec id of jpeg on a latent frame")
        return get_jpeg()
    if frame.header.layout == Layout.BYTES:
        raise CodecError(f"codec id {frame.header.codec_id} sends no byte stream")
    return codec_by_id(frame.header.codec_id)


def default_partition(codec_name: str) -> str:
    return STREAM_PARTITIONS[0] if codec_name == "jpeg" else LATENT_PARTITIONS[0]


def check_partition(codec_name: str, codec: AnyCodec, partition: str) -> None:
    supported = STREAM_PARTITIONS if isinstance(codec, JpegCodec) else tuple(codec.partitions)
    if partition not in supported:
        raise CodecError(f"codec {codec_name} does not support the {partition} partition "
                         f"(it supports: {', '.join(supported)})")


def encode(codec: AnyCodec, image: np.ndarray, mtu: int) -> Encoded:
    """The codec's encoding of ``image``; jpeg's restart intervals are sized to fit one
    datagram each at ``mtu``, so a lost datagram costs only the MCUs it carried."""
    if isinstance(codec, JpegCodec):
        return codec.fit_segments(image, mtu - HEADER_SIZE - CRC_SIZE - unit_entry_size(Layout.BYTES))
    return codec.encode(image)


def outgoing_frame(codec: AnyCodec, encoded: Encoded) -> LatentFrame | StreamFrame:
    if isinstance(encoded, JpegStream):
        return StreamFrame(encoded.stream, encoded.offsets, codec_params=(encoded.quality, encoded.restart_mcus),
                           codec_id=codec.codec_id, image_size=encoded.image_size)
    return latent_frame(encoded, codec.codec_id)


def decode_received(codec: AnyCodec, frame: Frame) -> np.ndarray:
    """The image decoded from what arrived (missing units masked or concealed)."""
    header = frame.header
    if header.layout == Layout.BYTES:
        size = (header.image_height, header.image_width)
        if min(size) < 1 or header.unit_count != 1 + codec.intervals(size, header.dim2 or None):
            raise CodecError(f"jpeg: {header.unit_count} segments do not fit a {size[0]}x{size[1]} image "
                             f"with {header.dim2} MCUs per restart interval")
        return codec.decode(frame.segments(), size, header.dim1, header.dim2)
    return codec.decode(*encoded_from_frame(frame))


def decode_lossless(codec: AnyCodec, encoded: Encoded) -> np.ndarray:
    """The image decoded with nothing lost: the reference a lossy run is compared with."""
    if isinstance(encoded, JpegStream):
        return codec.decode(encoded.segments, encoded.image_size, encoded.quality, encoded.restart_mcus)
    return codec.decode(encoded, np.ones(encoded.latent.shape, dtype=bool))


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
