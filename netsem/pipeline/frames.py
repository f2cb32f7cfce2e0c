"""Between codecs and the network: a codec's frame gets the ids its datagrams carry, and a
reassembled frame becomes the codec's kind of frame again, with what was lost marked.

Every codec, latent or byte stream, goes through the same three calls; what differs (a
latent's received mask, a stream's missing segments) is the wire layout's, not the codec's.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from netsem.codecs.base import Codec, CodecError, Frame
from netsem.codecs.registry import ENTROPY_CODED, codec_by_id, codec_id_of, get_codec, refinable
from packetizers.frames import FrameError, LatentFrame, StreamFrame
from packetizers.reassembler import Frame as Reassembled
from packetizers.wire import CRC_SIZE, HEADER_SIZE, Layout, unit_entry_size

# Classic codecs with a quality knob 1..95: `--jpeg-quality` sets it, and a sweep can match it
# per image to another codec's bytes on the wire.
CLASSIC_CODECS = ("jpeg", "webp", "jpeg2000-tiles")


def load_codec(codec: str | Codec, *, weights: str | None = None, jpeg_quality: int = 75, refine: int = 0,
               skip: int = 0) -> Codec:
    """A codec by name (or `module:attribute`), or the object itself; `jpeg_quality` for the
    classic codecs (`CLASSIC_CODECS`), `refine` (iterations of latent refinement) for the cnn codecs
    and their -ec forms, `skip` (channels not sent) for the imputing -ec codecs."""
    params = {"quality": jpeg_quality} if codec in CLASSIC_CODECS else {}
    name = getattr(codec, "name", codec)
    if refine:
        if not (isinstance(codec, str) and refinable(codec)):
            raise CodecError(f"--refine works with the cnn codecs and their -ec forms, not {name}")
        params["refine"] = refine
    if skip:
        if not (isinstance(codec, str) and codec in ENTROPY_CODED):
            raise CodecError(f"--skip-channels works with the imputing -ec codecs, not {name}")
        params["skip"] = skip
    return get_codec(codec, weights, **params)


def check_partition(codec: Codec, partition: str) -> None:
    if partition not in codec.partitions:
        raise CodecError(f"codec {codec.name} does not support the {partition} partition "
                         f"(it supports: {', '.join(codec.partitions)})")


def payload_budget(mtu: int) -> int:
    """Bytes one datagram carries for one unit of a byte stream (header, unit entry and CRC aside)."""
    return mtu - HEADER_SIZE - CRC_SIZE - unit_entry_size(Layout.BYTES)


def outgoing_frame(codec: Codec, image: np.ndarray, *, mtu: int, stream_id: int = 0) -> Frame:
    """The codec's frame of `image`, with the codec's wire id and the stream id."""
    frame = codec.to_frame(image, payload_budget(mtu))
    if not isinstance(frame, (LatentFrame, StreamFrame)):
        raise CodecError(f"codec {codec.name}'s to_frame gave {type(frame).__name__}, not a LatentFrame or StreamFrame")
    return dataclasses.replace(frame, codec_id=codec_id_of(codec), stream_id=stream_id)


def frame_elements(frame: Frame) -> int:
    """Latent elements, or bytes of a stream: what a receiver must hold of the frame."""
    return int(frame.latent.size) if isinstance(frame, LatentFrame) else sum(map(len, frame.segments))


def codec_for_frame(frame: Reassembled, weights: dict[str, str] | None = None) -> Codec:
    """The codec a received frame names (raises CodecError for one we lack)."""
    return codec_by_id(frame.header.codec_id, weights)


def received_frame(frame: Reassembled) -> Frame:
    """A reassembled frame as its codec takes it: a latent with its received mask, or a
    stream's segments with None for each lost one. Raises CodecError for fields that do not
    fit together (they come from a peer's headers)."""
    header = frame.header
    size = (header.image_height, header.image_width)
    ids = {"codec_id": header.codec_id, "stream_id": header.stream_id, "importance": header.importance,
           "kb_version": header.kb_version}
    try:
        if header.layout == Layout.BYTES:
            segments = frame.segments()
            return StreamFrame(tuple(segments.get(unit) for unit in range(header.unit_count)),
                               codec_params=(header.dim1, header.dim2), image_size=size, **ids)
        grid = (header.grid_h, header.grid_w) if header.layout == Layout.ND else (0, 0)
        return LatentFrame(frame.latent, Layout(header.layout), header.bit_width, header.signed, header.scale, size,
                           grid, received=frame.received, **ids)
    except FrameError as error:
        raise CodecError(f"frame {header.frame_id}: {error}") from None


def decode_received(codec: Codec, frame: Reassembled) -> np.ndarray:
    """The image decoded from what arrived (missing units masked or concealed)."""
    return codec.from_frame(received_frame(frame))
