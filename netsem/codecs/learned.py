"""Learned codecs behind the numpy Codec interface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .base import CodecError, EncodedLatent, check_image, check_mask, smallest_int_dtype
from .models import NetConfig, build_net, count_parameters, pad_to_multiple
from .weights import load_state


class LearnedCodec:
    """encode: pad to a multiple of 16 (reflect), analyse, round, clamp to the bit width.
    decode: multiply by the step, zero the missing elements, synthesise, crop, clip.  Networks
    whose config ``needs_mask`` (imputation, rescale, masked decoder) are given the mask.

    ``layout`` "chw" keeps the (C, h, w) map; "nd" reads it as N = h*w tokens (row-major,
    token_grid (h, w)) of D = C dims.
    """

    def __init__(
        self,
        name: str,
        codec_id: int,
        config: NetConfig,
        weights: Path,
        layout: str = "chw",
        description: str = "",
        threads: int | None = None,
    ) -> None:
        self.name = name
        self.codec_id = codec_id
        self.config = config
        self.layout = layout
        self.partitions = ("channel", "token", "spatial")
        self.description = description
        self.weights_path = weights
        self.net = build_net(config)
        self._load(weights)
        self.net.eval()
        self.threads = threads

    def _load(self, path: Path) -> None:
        if not path.is_file():
            raise CodecError(f"codec {self.name!r}: weight file {path} is missing")
        try:
            state, meta = load_state(path)
        except Exception as exc:  # safetensors raises several types on a bad file
            raise CodecError(
                f"codec {self.name!r}: weight file {path} is corrupt ({type(exc).__name__})"
            ) from None
        try:
            stored = NetConfig.from_json(meta["config"])
        except Exception:
            raise CodecError(f"codec {self.name!r}: {path} has no valid config metadata") from None
        if stored != self.config:
            raise CodecError(f"codec {self.name!r}: {path} was trained for another config")
        try:
            self.net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        except RuntimeError:
            raise CodecError(f"codec {self.name!r}: {path} does not match the network") from None
        self.meta = meta
        for p in self.net.parameters():
            if not torch.isfinite(p).all():
                raise CodecError(f"codec {self.name!r}: {path} holds non-finite weights")

    @property
    def bit_width(self) -> int:
        return self.config.bit_width

    @property
    def num_parameters(self) -> int:
        return count_parameters(self.net)

    def latent_shape(self, height: int, width: int) -> tuple[int, ...]:
        h, w = -(-height // 16), -(-width // 16)
        c = self.config.latent_channels
        return (c, h, w) if self.layout == "chw" else (h * w, c)

    # --- numpy <-> torch -------------------------------------------------------------
    def _map_from_latent(self, encoded: EncodedLatent, arr: np.ndarray) -> np.ndarray:
        if self.layout == "chw":
            return arr
        gh, gw = encoded.token_grid
        return arr.reshape(gh, gw, -1).transpose(2, 0, 1)

    def encode(self, image: np.ndarray) -> EncodedLatent:
        image = check_image(image)
        h, w = image.shape[:2]
        x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255.0
        with torch.inference_mode():
            y = self.net.analysis(pad_to_multiple(x, 16))
        a = self.config.amplitude
        q = torch.round(y).clamp(-a, a)[0].to(torch.int16).numpy()
        q = q.astype(smallest_int_dtype(self.config.bit_width, True))
        grid = None
        if self.layout == "nd":
            c, gh, gw = q.shape
            q = np.ascontiguousarray(q.transpose(1, 2, 0).reshape(gh * gw, c))
            grid = (gh, gw)
        return EncodedLatent(
            latent=q,
            layout=self.layout,
            bit_width=self.config.bit_width,
            signed=True,
            scale=1.0 / a,
            image_size=(h, w),
            token_grid=grid,
        )

    def decode(self, encoded: EncodedLatent, received: np.ndarray | None = None) -> np.ndarray:
        mask = check_mask(encoded, received)
        if encoded.layout != self.layout:
            raise CodecError(f"codec {self.name!r} expects layout {self.layout!r}")
        want = self.latent_shape(*encoded.image_size)
        if encoded.latent.shape != want:
            raise CodecError(f"latent shape {encoded.latent.shape} != expected {want}")
        q = np.where(mask, encoded.latent, 0).astype(np.float32)
        qmap = torch.from_numpy(self._map_from_latent(encoded, q).copy())[None]
        mmap = torch.from_numpy(self._map_from_latent(encoded, mask).astype(np.float32).copy())[None]
        # the network sees y = q * scale * A (its own units); scale is 1/A for our encoders
        y = qmap * (encoded.scale * self.config.amplitude)
        with torch.inference_mode():
            xh = self.net.synthesis(y, mmap if self.config.needs_mask else None)
        h, w = encoded.image_size
        out = (xh[0, :, :h, :w].clamp(0, 1) * 255.0).round().to(torch.uint8)
        return out.permute(1, 2, 0).contiguous().numpy()
