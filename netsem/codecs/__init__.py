"""Codecs: images <-> integer latents (or JPEG byte streams), loaded by name.

    from netsem.codecs import get_codec
    codec = get_codec("cnn-sem")
    enc = codec.encode(image)            # EncodedLatent
    out = codec.decode(enc, received)    # received: bool mask, same shape as enc.latent
"""

from .base import Codec, CodecError, EncodedLatent
from .registry import codec_by_id, codec_names, get_codec, get_jpeg

__all__ = ["Codec", "CodecError", "EncodedLatent", "codec_by_id", "codec_names", "get_codec",
           "get_jpeg"]
