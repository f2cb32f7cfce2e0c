"""Any torch encoder / decoder pair as a netsem codec: bring your own model.

    codec = TorchCodec("my-codec", encoder, decoder, bit_width=6, clip=3.0, multiple=4)
    netsem.register_codec(codec)
    netsem.simulate("photo.png", codec=codec, netem="loss random 10%")

The encoder maps a (B, 3, H, W) float image in [0, 1] to a (B, C, h, w) float latent; the
decoder maps such a latent back to (B, 3, H', W') in [0, 1] (cropped to H x W). Between them
the latent becomes packets: it is clipped to +-`clip` and quantized to `bit_width`-bit signed
integers (step clip / (2^(b-1) - 1)), travels in the `chw` layout (C feature maps of h x w,
so every partition applies), and whatever was lost reaches the decoder as zeros — or, with
`decoder_takes_mask`, the decoder is also given the float mask of what arrived. Images are
padded (edge pixels repeated) to a multiple of `multiple` first, as strided networks need.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from packetizers.frames import LatentFrame
from packetizers.kinds import LATENT_PARTITION_WORDS

from .base import CodecError, Frame, check_image, check_image_size, check_latent, check_mask, smallest_int_dtype


class TorchCodec:
    partitions = LATENT_PARTITION_WORDS
    layout = "chw"

    def __init__(self, name: str, encoder: nn.Module, decoder: nn.Module, *, bit_width: int = 8, clip: float = 1.0,
                 multiple: int = 1, decoder_takes_mask: bool = False, description: str = "") -> None:
        if not 2 <= bit_width <= 16:
            raise CodecError(f"{name}: bit_width {bit_width} outside 2..16")
        if not clip > 0:
            raise CodecError(f"{name}: clip must be > 0, not {clip}")
        self.name = name
        self.encoder, self.decoder = encoder.eval(), decoder.eval()
        self.bit_width = bit_width
        self.amplitude = (1 << (bit_width - 1)) - 1
        self.step = clip / self.amplitude
        self.multiple = multiple
        self.decoder_takes_mask = decoder_takes_mask
        self.description = description
        self._shapes: dict[tuple[int, int], tuple[int, int, int]] = {}  # image size -> latent shape

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for module in (self.encoder, self.decoder) for p in module.parameters())

    def _padded(self, image: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255.0  # a writable copy
        pad_h, pad_w = (-x.shape[2]) % self.multiple, (-x.shape[3]) % self.multiple
        return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """What the encoder makes of an image of this size (found once by running it)."""
        if (height, width) not in self._shapes:
            with torch.inference_mode():
                try:
                    shape = self.encoder(self._padded(np.zeros((height, width, 3), np.uint8))).shape
                except RuntimeError as error:  # the network refuses the size
                    raise CodecError(f"{self.name}: the encoder takes no {height}x{width} image ({error})") from None
            if len(shape) != 4:
                raise CodecError(f"{self.name}: the encoder gives a {len(shape)}-D latent, not (B, C, h, w)")
            self._shapes[(height, width)] = tuple(shape[1:])
        return self._shapes[(height, width)]

    def to_frame(self, image: np.ndarray, payload_budget: int = 0) -> LatentFrame:
        image = check_image(image)
        with torch.inference_mode():
            latent = self.encoder(self._padded(image))[0]
        q = torch.round(latent / self.step).clamp(-self.amplitude, self.amplitude)
        q = q.to(torch.int32).numpy().astype(smallest_int_dtype(self.bit_width, True))
        self._shapes.setdefault(image.shape[:2], q.shape)
        return LatentFrame(q, "chw", self.bit_width, True, self.step, image.shape[:2])

    def from_frame(self, frame: Frame) -> np.ndarray:
        height, width = check_image_size(getattr(frame, "image_size", None))
        check_latent(frame, self.name, layout="chw", shape=self.latent_shape(height, width),
                     bit_width=self.bit_width, signed=True)
        mask = check_mask(frame)
        latent = torch.from_numpy(np.where(mask, frame.latent, 0).astype(np.float32))[None] * float(frame.scale)
        with torch.inference_mode():
            try:
                if self.decoder_takes_mask:
                    out = self.decoder(latent, torch.from_numpy(mask.astype(np.float32))[None])
                else:
                    out = self.decoder(latent)
            except RuntimeError as error:
                raise CodecError(f"{self.name}: the decoder failed on this frame ({error})") from None
        if out.ndim != 4 or out.shape[1] != 3 or out.shape[2] < height or out.shape[3] < width:
            raise CodecError(f"{self.name}: the decoder gives {tuple(out.shape[2:])}, smaller than {height}x{width}")
        pixels = (out[0, :, :height, :width].clamp(0, 1) * 255.0).round().to(torch.uint8)
        return pixels.permute(1, 2, 0).contiguous().numpy()
