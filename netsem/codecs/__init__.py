"""Codecs: images <-> frames (integer latents or byte streams), one interface, found by name.

    from netsem.codecs import get_codec
    codec = get_codec("cnn-sem")
    frame = codec.to_frame(image)                       # LatentFrame
    out = codec.from_frame(frame.with_received(mask))   # mask: bool, latent-shaped

Importing this package, its error type and the registry costs no torch; a learned codec
loads torch when it is built. `TorchCodec` wraps your own torch encoder and decoder.
"""

from packetizers.frames import LatentFrame, StreamFrame

from .base import Codec, CodecError
from .registry import CodecEntry, codec_by_id, codec_id_of, codec_names, entries, get_codec, register_codec

__all__ = ["Codec", "CodecEntry", "CodecError", "LatentFrame", "StreamFrame", "TorchCodec", "codec_by_id",
           "codec_id_of", "codec_names", "entries", "get_codec", "register_codec"]


def __getattr__(name: str):
    if name == "TorchCodec":  # torch only when asked for
        from .torch_codec import TorchCodec

        return TorchCodec
    raise AttributeError(f"module 'netsem.codecs' has no attribute {name!r}")
