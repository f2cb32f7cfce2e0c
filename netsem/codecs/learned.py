"""Learned codecs behind the numpy Codec interface."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from packetizers.frames import LatentFrame
from packetizers.kinds import LATENT_PARTITION_WORDS

from .base import (
    CodecError,
    Frame,
    check_image,
    check_image_size,
    check_latent,
    check_mask,
    smallest_int_dtype,
)
from .config import NetConfig
from .weights import load_arrays
from .window_impute import WindowMoments, WindowPlan, imputer_path

# Images above TILE_ABOVE_PIXELS (after padding to 16) are encoded and decoded tile by tile,
# TILE_LATENTS latent positions (16 pixels each) a side plus the network's context; smaller
# ones in one piece, bit for bit as before tiling existed (the tests' and README's images are
# at most 0.4 Mpixel).  Measured with tools/bench_large_image.py, cnn-sem on 2 cores (torch):
#   untiled: peak RSS 0.95 GB at 1.3 Mpixel, 1.35 GB at 2.1, 1.9 GB at 3.1 (+0.53 GB per
#     Mpixel), encode + decode 2.5 s at 1.3 Mpixel;
#   tiled (tiles of 32): 0.52-0.60 GB and 1.4 s at 1.3 Mpixel, 0.57-0.66 GB at 3.1.
# So tiling starts at 1 Mpixel, where an untiled run still stays under 0.9 GB.  Tile size at 12
# Mpixel (encode / decode seconds, decode peak RSS): 8: 9.4 / 14.9 s, 0.51 GB; 16: 7.2 / 9.6 s,
# 0.63 GB; 32: 5.9 / 7.5 s, 0.91 GB; 64: 5.7 / 6.6 s, 1.5 GB.
TILE_ABOVE_PIXELS = 1 << 20
TILE_LATENTS = 32


class LearnedCodec:
    """A trained network of `models.py` as a codec: `to_frame` pads to a multiple of the
    downsampling (reflect), analyses, rounds and clamps to the bit width; `from_frame`
    multiplies by the step, zeroes the missing elements, synthesises, crops and clips.
    Networks whose config ``needs_mask`` (imputation, rescale, masked decoder) are given the
    mask.

    The network is built from the configuration its weight file records (safetensors
    metadata), so any trained variant loads under the codec's name. A swin network's map is
    read as ``layout`` "nd": N = h*w tokens (row-major, token_grid (h, w)) of D = C dims; a
    cnn's is "chw", the (C, h, w) map itself.

    ``engine``: what runs the network.  "numpy" (`cnn_numpy.CNNRuntime`, cnn only) needs no
    torch, which a process pays ~0.9 s to import; "torch" (`torch_runtime.TorchRuntime`) runs
    `models.py` itself; "auto" takes numpy for a cnn image that is not tiled, torch for a tiled
    one (there torch's convolutions run twice as fast per core: 12 Mpixel cnn-sem, encode /
    decode 6.6 / 7.0 s against 11.1 / 10.5 s, while at 768x512 the two take the same time)
    and for a swin.  The engines agree to float rounding (a pixel in 10^4 may differ by one
    level; tests/codecs/test_cnn_numpy.py); the choice depends only on the image size, so a
    sender and a receiver of the same frame choose alike.

    Images above ``tile_above_pixels`` are analysed and synthesised tile by tile (tiles of
    ``tile_latents`` latent positions with the context the network needs), which gives the
    untiled result to float rounding in bounded memory.

    ``refine``: iterations of encoder-side latent refinement (`refine.py`; cnn, untiled
    images, torch): the latent the decoder turns into the closest picture, at the sender's
    cost only.  0 (the default): the analysis's latent.

    ``window_impute``: an imputing network whose weights have window moments beside them
    (NAME.imputer.safetensors, `window_impute`) estimates lost elements from the window around
    each (the default); False: from each position alone, with the covariance it was trained with.
    """

    partitions = LATENT_PARTITION_WORDS

    def __init__(
        self,
        name: str,
        weights: Path,
        description: str = "",
        threads: int | None = None,
        tile_above_pixels: int = TILE_ABOVE_PIXELS,
        tile_latents: int = TILE_LATENTS,
        engine: str = "auto",
        refine: int = 0,
        window_impute: bool = True,
    ) -> None:
        self.name = name
        self.description = description
        self.weights_path = weights
        state, self.meta, self.config = self._read(weights)
        self.layout = "nd" if self.config.arch == "swin" else "chw"
        for key, value in state.items():
            if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
                raise CodecError(f"codec {name!r}: {weights} holds non-finite weights ({key})")
        if engine not in ("auto", "numpy", "torch"):
            raise CodecError(f"engine is auto, numpy or torch, not {engine!r}")
        self.engine, self.threads, self._state = engine, threads, state
        self.window_plan = self._read_window_plan(weights) if self.config.impute and window_impute else None
        self._tiled_runtime = None
        self.runtime = self._build("torch" if engine == "torch" or self.config.arch != "cnn" else "numpy")
        self.tile_above_pixels = tile_above_pixels
        self.tile_latents = tile_latents
        if refine < 0 or (refine and self.config.arch != "cnn"):
            raise CodecError(f"codec {name!r}: refine takes iterations >= 0, and a cnn codec")
        self.refine = refine
        self._refine_net = None

    def _build(self, engine: str):
        try:
            if engine == "numpy":
                from .cnn_numpy import CNNRuntime

                return CNNRuntime(self.config, self._state, self.threads, self.window_plan)
            from .torch_runtime import TorchRuntime

            return TorchRuntime(self.config, self._state, self.threads, self.window_plan)
        except (RuntimeError, ValueError):
            raise CodecError(f"codec {self.name!r}: {self.weights_path} does not match its own config "
                             f"{self.config}") from None

    def _runtime_for(self, grid: tuple[int, int]):
        """The engine for a latent grid: `runtime`, or torch for a tiled cnn image under "auto"."""
        if self.engine != "auto" or self.config.arch != "cnn" or not self._tiled(grid):
            return self.runtime
        if self._tiled_runtime is None:
            self._tiled_runtime = self._build("torch")
        return self._tiled_runtime

    def _tiled(self, grid: tuple[int, int]) -> bool:
        return grid[0] * grid[1] * self.down**2 > self.tile_above_pixels

    def _read_window_plan(self, weights: Path) -> WindowPlan | None:
        """The window moments shipped beside the weights (`window_impute`), if any: a receiver
        without them imputes from each position alone, as the network was trained to."""
        path = imputer_path(weights)
        if not path.is_file():
            return None
        try:
            moments = WindowMoments.load(path)
        except Exception as exc:  # safetensors raises several types on a bad file
            raise CodecError(f"codec {self.name!r}: imputer file {path} is corrupt ({type(exc).__name__})") from None
        if moments.channels != self.config.latent_channels:
            raise CodecError(f"codec {self.name!r}: imputer file {path} is for {moments.channels} channels, "
                             f"the network has {self.config.latent_channels}")
        return WindowPlan(moments)

    def _read(self, path: Path) -> tuple[dict, dict, NetConfig]:
        if not path.is_file():
            raise CodecError(f"codec {self.name!r}: weight file {path} is missing")
        try:
            state, meta = load_arrays(path)
        except Exception as exc:  # safetensors raises several types on a bad file
            raise CodecError(
                f"codec {self.name!r}: weight file {path} is corrupt ({type(exc).__name__})"
            ) from None
        try:
            return state, meta, NetConfig.from_json(meta["config"])
        except Exception:
            raise CodecError(f"codec {self.name!r}: {path} has no valid config metadata") from None

    @property
    def bit_width(self) -> int:
        return self.config.bit_width

    @property
    def num_parameters(self) -> int:
        return self.runtime.num_parameters

    @property
    def down(self) -> int:
        """Pixels per latent position along each axis (the network's downsampling)."""
        return self.config.down

    def latent_grid(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) positions of the latent map (the token grid of "nd")."""
        return -(-height // self.down), -(-width // self.down)

    def latent_shape(self, height: int, width: int) -> tuple[int, ...]:
        h, w = self.latent_grid(height, width)
        c = self.config.latent_channels
        return (c, h, w) if self.layout == "chw" else (h * w, c)

    def _map_from_latent(self, encoded: LatentFrame, arr: np.ndarray) -> np.ndarray:
        """The frame's latent (or mask) as the runtimes' channels-last (h, w, C) map."""
        if self.layout == "chw":
            return arr.transpose(1, 2, 0)
        gh, gw = encoded.token_grid
        return arr.reshape(gh, gw, -1)

    def _tiles(self, grid: tuple[int, int], halo: int) -> list[tuple[Span, Span]]:
        """(rows, columns) of each tile: one for a small image (the untiled computation,
        unchanged); otherwise ``tile_latents`` positions a side with the network's context."""
        if not self._tiled(grid):
            return [(whole_span(grid[0]), whole_span(grid[1]))]
        rt = self.runtime
        row_spans, col_spans = (
            tile_spans(n, self.tile_latents, halo, rt.tile_align, rt.tile_wraps) for n in grid
        )
        return [(r, c) for r in row_spans for c in col_spans]

    def to_frame(self, image: np.ndarray, payload_budget: int = 0) -> LatentFrame:
        """pad to a multiple of the downsampling (reflect), analyse, round, clamp to the bit width."""
        image = check_image(image)
        h, w = image.shape[:2]
        down = self.down
        # padding the uint8 image and converting tile by tile gives the same floats as
        # converting first, without a full-size float copy
        padded = pad_to_multiple(np.asarray(image), down)
        grid = (padded.shape[0] // down, padded.shape[1] // down)
        runtime = self._runtime_for(grid)
        tiles = self._tiles(grid, runtime.analysis_halo)
        a, step = self.config.amplitude, np.float32(self.config.quant_step)
        dtype = smallest_int_dtype(self.config.bit_width, True)
        q = np.empty((self.config.latent_channels, *grid), dtype)

        def analyse(rows: Span, cols: Span) -> None:
            x = padded[rows.pixels(down)][:, cols.pixels(down)] if len(tiles) > 1 else padded
            y = runtime.analysis(x.astype(np.float32) / np.float32(255.0), tile=len(tiles) > 1)
            y = y[rows.kept_in_context, cols.kept_in_context]
            q[:, rows.kept, cols.kept] = np.clip(np.round(y / step), -a, a).transpose(2, 0, 1)

        runtime.run_tiles(tiles, analyse)
        token_grid = (0, 0)
        if self.layout == "nd":
            q = np.ascontiguousarray(q.transpose(1, 2, 0).reshape(grid[0] * grid[1], -1))
            token_grid = grid
        frame = LatentFrame(q, self.layout, self.config.bit_width, True, self.config.quant_step / a, (h, w), token_grid)
        return self.refine_frame(image, frame, self.refine) if self.refine else frame

    def refine_frame(self, image: np.ndarray, frame: LatentFrame, iterations: int, lmbda: float | None = None,
                     bits: Callable[[np.ndarray], np.ndarray] | None = None,
                     sent: np.ndarray | None = None) -> LatentFrame:
        """``frame`` (this codec's, of ``image``) with its latent refined (`refine.refine_latent`;
        ``bits``/``lmbda``: the rate term of a range-coded latent; ``sent``: bool per channel, the
        channels that will be sent, None: all)."""
        from .refine import refine_latent

        image = check_image(image)
        padded = pad_to_multiple(np.asarray(image), self.down)
        if self._tiled((padded.shape[0] // self.down, padded.shape[1] // self.down)):
            raise CodecError(f"refine works on images up to {self.tile_above_pixels} pixels (padded to "
                             f"{self.down}); this one has {padded.shape[0] * padded.shape[1]}")
        if self._refine_net is None:  # its own network: gradients flow through it
            self._refine_net = self._build("torch").net
        q = refine_latent(self._refine_net, image, padded, step=float(self.config.quant_step),
                          amplitude=self.config.amplitude, iterations=iterations, lmbda=lmbda, bits=bits,
                          needs_mask=self.config.needs_mask, sent=sent)
        return LatentFrame(q.astype(frame.latent.dtype), frame.layout, frame.bit_width, frame.signed, frame.scale,
                           frame.image_size, frame.token_grid)

    def from_frame(self, encoded: Frame) -> np.ndarray:
        """Zero the missing elements (or hand the mask to networks that use it), multiply by
        the step, synthesise, crop, clip. Raises CodecError, and nothing else, for a frame
        this codec cannot decode (its fields may come from a peer's datagram headers)."""
        h, w = check_image_size(getattr(encoded, "image_size", None))
        check_latent(encoded, self.name, layout=self.layout, shape=self.latent_shape(h, w),
                     bit_width=self.bit_width, signed=True,
                     token_grid=self.latent_grid(h, w) if self.layout == "nd" else (0, 0))
        mask = check_mask(encoded)
        # the network sees y = q * scale * A (its own units); our encoders send scale = step / A
        step = np.float32(encoded.scale * self.config.amplitude)
        with np.errstate(over="ignore", invalid="ignore"):  # a peer's scale may overflow: garbage, not a crash
            return self._synthesise(encoded, np.where(mask, encoded.latent, 0).astype(np.float32) * step, mask)

    def _synthesise(self, encoded: LatentFrame, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
        h, w = encoded.image_size
        runtime = self._runtime_for(self.latent_grid(h, w))
        z = runtime.decoder_input(np.ascontiguousarray(self._map_from_latent(encoded, y)),
                                  self._map_from_latent(encoded, mask) if self.config.needs_mask else None)
        tiles = self._tiles(z.shape[:2], runtime.synthesis_halo)
        out = np.empty((h, w, 3), np.uint8)
        down = self.down

        def synthesise(rows: Span, cols: Span) -> None:
            zt = z[rows.context][:, cols.context] if len(tiles) > 1 else z
            xh = runtime.decode_map(zt, tile=len(tiles) > 1)
            # the kept pixels, cropped to the image (the last tiles cover the padding)
            top, bottom = down * rows.kept.start, min(h, down * rows.kept.stop)
            left, right = down * cols.kept.start, min(w, down * cols.kept.stop)
            r0, c0 = down * rows.kept_in_context.start, down * cols.kept_in_context.start
            xh = xh[r0 : r0 + bottom - top, c0 : c0 + right - left]
            out[top:bottom, left:right] = np.round(np.clip(np.nan_to_num(xh, nan=0.0), 0.0, 1.0) * np.float32(255.0))

        runtime.run_tiles(tiles, synthesise)
        return out


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pad an (H, W, 3) image on the bottom/right to a multiple of ``multiple``
    (replicate where the image is too small to reflect), as `models.pad_to_multiple`."""
    h, w = image.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return image
    mode = "reflect" if ph < h and pw < w else "edge"
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode)


@dataclass(frozen=True)
class Span:
    """One axis of a tile: the latent positions the network is run on (``context``,
    ascending) and the ones whose result is kept (``kept``, a range of the whole map)."""

    context: np.ndarray  # int64 latent indices
    kept: slice

    @property
    def kept_in_context(self) -> slice:
        at = int(np.searchsorted(self.context, self.kept.start))
        return slice(at, at + self.kept.stop - self.kept.start)

    def pixels(self, down: int) -> np.ndarray:
        """The context's pixel rows (or columns): `down` per latent position."""
        return (down * self.context[:, None] + np.arange(down)).ravel()


def whole_span(length: int) -> Span:
    return Span(np.arange(length), slice(0, length))


def tile_spans(length: int, size: int, halo: int, align: int, wraps: bool) -> list[Span]:
    """Cut ``length`` latent positions into tiles keeping ``size`` positions each, seen with
    ``halo`` positions of context on both sides (fewer at the map's border).  ``size`` and
    ``halo`` are rounded up to multiples of ``align`` so every piece of context starts on the
    network's grid (swin's windows).

    ``wraps``: the network mixes the two ends of the map (swin's shifted windows roll around
    it).  A tile that touches one end but not the other then also sees ``halo`` positions at
    the far end, placed as in the whole map (ascending indices: the network's roll brings
    them next to the near end), so the border is computed as in the untiled map."""
    size = -(-max(size, 1) // align) * align
    halo = -(-halo // align) * align
    far = max(0, length - halo) // align * align  # where the far end's context starts
    spans = []
    for start in range(0, length, size):
        stop = min(length, start + size)
        lo, hi = max(0, start - halo), min(length, stop + halo)
        context = np.arange(lo, hi)
        if wraps and lo == 0 and hi < length:
            context = np.concatenate([context, np.arange(max(hi, far), length)])
        elif wraps and hi == length and lo > 0:
            context = np.concatenate([np.arange(0, min(lo, halo)), context])
        spans.append(Span(context, slice(start, stop)))
    return spans
