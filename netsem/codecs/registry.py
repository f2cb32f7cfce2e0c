"""The codec registry: names, wire ids, configs, weight files, training recipes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .base import Codec, CodecError
from .models import NetConfig
from .weights import WEIGHTS_DIR

# 60 channels x 6 bits at 1/16 resolution: 1.406 bits per pixel (768x512), under 1.5 with the
# padding of any image size. Lost channels are zeros (seed 003's erasure model); the received
# ones are scaled by channels / received channels (inverted dropout), so the decoder's input
# keeps its energy whatever the loss.
CNN = NetConfig(arch="cnn", latent_channels=60, hidden=128, bit_width=6, rescale=True)
SEM = NetConfig(**{**CNN.__dict__, "sem_scale": True, "sem_broadcast": True})
SWIN = NetConfig(arch="swin", latent_channels=64, hidden=192, bit_width=6)


@dataclass(frozen=True)
class LearnedSpec:
    name: str
    codec_id: int
    config: NetConfig
    layout: str
    drop: str  # unit drops used in training (see train.TrainOptions.drop)
    description: str
    train_defaults: dict = field(default_factory=dict)

    @property
    def weights(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.safetensors"


def _v(cfg: NetConfig, **kw) -> NetConfig:
    return NetConfig(**{**cfg.__dict__, **kw})


LEARNED: dict[str, LearnedSpec] = {
    s.name: s
    for s in [
        LearnedSpec("cnn", 2, CNN, "chw", "channel",
                    "GDN conv autoencoder, no SEM (baseline), trained with channel drops"),
        LearnedSpec("cnn-sem", 3, SEM, "chw", "channel",
                    "cnn + Dynamic Scale + Neighbouring Broadcast (K=3), channel drops"),
        LearnedSpec("cnn-scale", 4, _v(CNN, sem_scale=True), "chw", "channel",
                    "ablation: cnn + Dynamic Scale only, channel drops"),
        LearnedSpec("cnn-bcast", 5, _v(CNN, sem_broadcast=True), "chw", "channel",
                    "ablation: cnn + Neighbouring Broadcast only, channel drops"),
        LearnedSpec("cnn-sem-masked", 6, _v(SEM, masked=True, rescale=False), "chw", "mixed",
                    "cnn-sem whose decoder is given the received mask; channel/token/spatial drops"),
        LearnedSpec("cnn-sem-impute", 12, _v(SEM, impute=True, rescale=False), "chw", "channel",
                    "cnn-sem whose receiver imputes lost channels from the received ones (linear "
                    "MMSE, learned channel covariance) instead of zeros; channel drops"),
        LearnedSpec("cnn-p0", 7, _v(CNN, rescale=False), "chw", "none",
                    "cnn trained without losses (seed 003 Algorithm 1)"),
        LearnedSpec("cnn-sem-p0", 8, _v(SEM, rescale=False), "chw", "none",
                    "cnn-sem trained without losses (seed 003 Algorithm 1)"),
        LearnedSpec("swin", 9, SWIN, "nd", "mixed",
                    "windowed-attention token codec, channel/token/spatial drops"),
        LearnedSpec("swin-p0", 11, SWIN, "nd", "none",
                    "swin trained without losses (seed 003 Algorithm 1)"),
    ]
}

RAW_ID = 1
JPEG_ID = 10

_cache: dict[str, object] = {}


def codec_names() -> list[str]:
    """Names that get_codec accepts (jpeg has its own byte-stream interface: get_jpeg)."""
    return ["raw", *LEARNED]


def all_names() -> list[str]:
    return [*codec_names(), "jpeg"]


def get_codec(name: str, weights: Path | None = None) -> Codec:
    """Load a codec by name from netsem/weights (offline).  Raises CodecError (one line)."""
    if weights is None and name in _cache:
        return _cache[name]  # type: ignore[return-value]
    if name == "raw":
        from .raw import RawCodec

        codec: object = RawCodec()
    elif name in LEARNED:
        from .learned import LearnedCodec

        s = LEARNED[name]
        codec = LearnedCodec(
            s.name, s.codec_id, s.config, weights or s.weights, s.layout, s.description
        )
    elif name == "jpeg":
        raise CodecError("jpeg is a byte-stream codec: use netsem.codecs.get_jpeg()")
    else:
        raise CodecError(f"unknown codec {name!r}; known: {', '.join(all_names())}")
    if weights is None:
        _cache[name] = codec
    return codec  # type: ignore[return-value]


def codec_by_id(codec_id: int) -> Codec:
    if codec_id == RAW_ID:
        return get_codec("raw")
    for s in LEARNED.values():
        if s.codec_id == codec_id:
            return get_codec(s.name)
    raise CodecError(f"no codec has id {codec_id}")


def get_jpeg(**kwargs):
    from .jpeg import JpegCodec

    return JpegCodec(**kwargs)
