"""DeepJSCC (Bourtsoulatze, Kurka, Gündüz, "Deep joint source-channel coding for wireless
image transmission", IEEE TCCN 2019), wrapped as any user's torch model would be.

The paper's networks, at its sizes: the encoder is five 5x5 convolutions (16, 32, 32, 32 and
c filters; the first two with stride 2) with PReLU after each but the last, then the power
normalisation z * sqrt(k) / ||z|| (k = the latent's size, per image); the decoder mirrors it
with transposed convolutions and ends in a sigmoid. The paper sends z as complex channel
symbols over AWGN; here z travels as packets, so it is quantized like every netsem latent
(`TorchCodec`: clipped to +-CLIP, 6-bit integers) and trained with the quantizer's noise,
AWGN at 10-20 dB and lost latent pieces (tools/training/train_deepjscc.py).

c = 4 channels at 1/4 resolution: 0.25 latent values per pixel, 1.5 bits per pixel at 6
bits, next to the 1.41 of netsem's cnn codecs.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

CHANNELS = 4
FILTERS = (16, 32, 32, 32)
CLIP = 3.0  # the power-normalised latent has unit mean power: +-3 keeps nearly all of it


class DeepJSCCEncoder(nn.Module):
    """(B, 3, H, W) in [0, 1] -> (B, c, H/4, W/4), unit mean power per image."""

    def __init__(self, channels: int = CHANNELS, filters: tuple[int, ...] = FILTERS) -> None:
        super().__init__()
        widths = (3, *filters)
        layers: list[nn.Module] = []
        for index, (a, b) in enumerate(zip(widths, widths[1:])):
            layers += [nn.Conv2d(a, b, 5, stride=2 if index < 2 else 1, padding=2), nn.PReLU(b)]
        layers.append(nn.Conv2d(widths[-1], channels, 5, padding=2))
        self.layers = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        z = self.layers(image)
        power = z.pow(2).mean(dim=(1, 2, 3), keepdim=True)
        return z / torch.sqrt(power + 1e-12)


class DeepJSCCDecoder(nn.Module):
    """(B, c, H/4, W/4) -> (B, 3, H, W) in [0, 1]."""

    def __init__(self, channels: int = CHANNELS, filters: tuple[int, ...] = FILTERS) -> None:
        super().__init__()
        widths = (channels, *reversed(filters))
        layers: list[nn.Module] = []
        for index, (a, b) in enumerate(zip(widths, widths[1:])):
            up = index == len(filters) - 1  # this layer and the last undo the encoder's two strides
            layers += [nn.ConvTranspose2d(a, b, 5, stride=2 if up else 1, padding=2, output_padding=int(up)),
                       nn.PReLU(b)]
        layers += [nn.ConvTranspose2d(widths[-1], 3, 5, stride=2, padding=2, output_padding=1), nn.Sigmoid()]
        self.layers = nn.Sequential(*layers)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.layers(latent)


def metadata(channels: int, filters: tuple[int, ...], clip: float) -> dict[str, str]:
    return {"architecture": "deepjscc", "config": json.dumps({"channels": channels, "filters": list(filters),
                                                              "clip": clip})}


def load_deepjscc(path: Path) -> tuple[DeepJSCCEncoder, DeepJSCCDecoder, float]:
    """The trained encoder and decoder in a weight file, and the clip they were trained for."""
    from .weights import load_state

    state, meta = load_state(path)
    config = json.loads(meta["config"])
    encoder = DeepJSCCEncoder(config["channels"], tuple(config["filters"]))
    decoder = DeepJSCCDecoder(config["channels"], tuple(config["filters"]))
    encoder.load_state_dict({k[len("encoder."):]: v.float() for k, v in state.items() if k.startswith("encoder.")})
    decoder.load_state_dict({k[len("decoder."):]: v.float() for k, v in state.items() if k.startswith("decoder.")})
    return encoder.eval(), decoder.eval(), float(config["clip"])


def deepjscc_codec(weights: Path | None = None):
    """The shipped DeepJSCC (or a retrained one) wrapped as any user's model would be."""
    from .base import CodecError
    from .config import WEIGHTS_DIR
    from .torch_codec import TorchCodec

    path = weights or WEIGHTS_DIR / "deepjscc.safetensors"
    if not path.is_file():
        raise CodecError(f"codec 'deepjscc': weight file {path} is missing")
    try:
        encoder, decoder, clip = load_deepjscc(path)
    except Exception as error:  # noqa: BLE001 — a bad file is a one-line error
        raise CodecError(f"codec 'deepjscc': cannot load {path} ({type(error).__name__}: {error})") from None
    return TorchCodec("deepjscc", encoder, decoder, bit_width=6, clip=clip, multiple=4,
                      description="DeepJSCC (Bourtsoulatze et al. 2019), 4 channels at 1/4 resolution, "
                                  "trained for packets (quantizer noise, AWGN 10-20 dB, lost pieces)")
