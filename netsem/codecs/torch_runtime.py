"""The learned codecs' networks at inference in torch (`models.py` itself), behind the same
channels-last numpy interface as `cnn_numpy.CNNRuntime`: the swin codec's engine, and the
reference the numpy engine is checked against."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .config import NetConfig
from .layers import WindowImputer
from .models import build_net, count_parameters
from .window_impute import WindowPlan


class TorchRuntime:
    """A `models.py` network built from ``config`` with ``state`` (numpy arrays) loaded; its
    imputer replaced by `layers.WindowImputer` when given a ``window_plan``.

    ``threads``: worker threads for the tiles of a large image (default: torch's thread
    count), each running single-threaded torch: torch's own threads meet at every operation,
    and on these 2 shared cores, with other processes running, a 3-Mpixel encode took 15 s
    with 2 torch threads against 4 s with 1; whole tiles per worker do not wait for each other
    (1.0 s against 1.2 s when idle)."""

    def __init__(self, config: NetConfig, state: dict[str, np.ndarray], threads: int | None = None,
                 window_plan: WindowPlan | None = None) -> None:
        self.net = build_net(config)
        self.net.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in state.items()},
                                 strict=True)
        self._parameters = count_parameters(self.net)  # the weights' (the learned imputer's among them)
        if window_plan is not None and self.net.impute is not None:
            self.net.impute = WindowImputer(window_plan)
        self.net.eval()
        self.threads = threads
        self.tile_align, self.tile_wraps = self.net.tile_align, self.net.tile_wraps
        self.analysis_halo, self.synthesis_halo = self.net.analysis_halo, self.net.synthesis_halo

    @property
    def num_parameters(self) -> int:
        return self._parameters

    def run_tiles(self, tiles: list, work: Callable) -> None:
        def run(tile) -> None:
            with torch.inference_mode():  # thread-local
                work(*tile)

        if len(tiles) == 1:
            run(tiles[0])
            return
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(self.threads or before) as pool:
                for _ in pool.map(run, tiles):
                    pass
        finally:
            torch.set_num_threads(before)

    def analysis(self, x: np.ndarray, tile: bool = False) -> np.ndarray:
        """(H, W, 3) float32 in [0, 1] -> (H/16, W/16, C) latent in quantizer steps."""
        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None]
            y = (self.net.tile_analysis if tile else self.net.analysis)(t)
            return y[0].permute(1, 2, 0).numpy()

    def decoder_input(self, y: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        with torch.inference_mode():
            m = None if mask is None else torch.from_numpy(mask.astype(np.float32)).permute(2, 0, 1)[None]
            z = self.net.decoder_input(torch.from_numpy(y).permute(2, 0, 1)[None], m)
            return z[0].permute(1, 2, 0).contiguous().numpy()

    def decode_map(self, z: np.ndarray, tile: bool = False) -> np.ndarray:
        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(z)).permute(2, 0, 1)[None]
            x = (self.net.tile_decode_map if tile else self.net.decode_map)(t)
            return x[0].permute(1, 2, 0).numpy()
