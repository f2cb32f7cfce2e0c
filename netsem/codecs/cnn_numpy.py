"""The cnn codecs' networks at inference, in numpy: what `models.CNNNet` computes, without torch.

`netsem send` and `recv` pay ~0.9 s to import torch before anything else happens (issue #20);
the cnn codecs need only convolutions, GDN and a few small matrices, which numpy's BLAS
multiplies about as fast as torch (sgemm 230 vs 265 GFLOP/s here).  Maps are channels-last
float32: an image is (H, W, 3) in [0, 1], a latent (h, w, C) in quantizer steps.  Training and
the swin codec stay in torch; tests/codecs/test_cnn_numpy.py checks this against `CNNNet` on
the shipped weights.

A 5x5 stride-2 convolution is one matrix product per band of output rows over the band's
patches (im2col, the band sized to keep its patch matrix near L2); a 5x5 stride-2 transposed
convolution is four stride-1 convolutions, one per output phase (row and column parity), with
the 3 or 2 kernel taps of each axis that reach that phase.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import window_impute
from .config import CNN_STAGES, NetConfig

# patch-matrix elements per band (float32): 1M = 4 MB; 2M measured the same, 256k 8 % slower
BAND_ELEMENTS = 1 << 20


class CNNRuntime:
    """A trained `CNNNet` from its state (name -> array, as stored) and config; an imputing one
    estimates lost elements from the window around them when given a ``window_plan``
    (`window_impute`), else from its position's received channels under the learned covariance."""

    # the same context as CNNNet (see there): tiles of a large image equal the untiled result
    tile_align = 1
    tile_wraps = False
    analysis_halo = 2
    synthesis_halo = 3

    def __init__(self, config: NetConfig, state: dict[str, np.ndarray], threads: int | None = None,
                 window_plan: window_impute.WindowPlan | None = None) -> None:
        if config.arch != "cnn" or config.down not in CNN_STAGES:
            raise ValueError("the numpy runtime runs the cnn codec only")
        if config.impute and config.rescale:
            raise ValueError("impute and rescale are alternatives (imputed latents are full scale)")
        s = {k: np.asarray(v, np.float32) for k, v in state.items()}
        self._parameters = sum(v.size for v in s.values())
        self.config = config
        self.threads = threads
        n, c = config.hidden, config.latent_channels
        cin = 2 * c if config.masked else c
        stages = CNN_STAGES[config.down]
        expected = {**_stack_shapes("encoder", [(3, n)] + [(n, n)] * (stages - 1), transposed=False),
                    **_stack_shapes("decoder", [(cin, n)] + [(n, n)] * (stages - 2) + [(n, 3)], transposed=True)}
        if config.sem_scale:
            expected |= {"head.weight": (c, n), "head.bias": (c,), "head.log_gain": (),
                         "head.mlp.0.weight": (16, 1), "head.mlp.0.bias": (16,),
                         "head.mlp.2.weight": (16, 16), "head.mlp.2.bias": (16,),
                         "head.mlp.4.weight": (16, 16), "head.mlp.4.bias": (16,),
                         "head.mlp.6.weight": (c, 16), "head.mlp.6.bias": (c,)}
        else:
            expected |= {"head.weight": (c, n, 1, 1), "head.bias": (c,)}
        if config.impute:
            expected["impute.l"] = (c, c)
        shapes = {k: tuple(v.shape) for k, v in s.items()}
        if shapes != expected:
            raise ValueError(f"state does not match {config}: {sorted(set(shapes.items()) ^ set(expected.items()))}")
        self.encoder = [(_conv_taps(s[f"encoder.{2 * i}.weight"]), s[f"encoder.{2 * i}.bias"])
                        for i in range(stages)]
        self.encoder_gdn = [_gdn(s, f"encoder.{2 * i + 1}") for i in range(stages - 1)]
        self.decoder = [(_transposed_phases(s[f"decoder.{2 * i}.weight"]), s[f"decoder.{2 * i}.bias"])
                        for i in range(stages)]
        self.decoder_gdn = [_gdn(s, f"decoder.{2 * i + 1}") for i in range(stages - 1)]
        self.head_weight, self.head_bias = _head(config, s)
        if config.sem_broadcast:
            self.broadcast = broadcast_matrix(c, config.broadcast_k)
        self.covariance = None
        self.window_plan = window_plan if config.impute else None
        if config.impute:
            l64 = s["impute.l"].astype(np.float64)
            self.covariance = (l64 @ l64.T + 1e-3 * np.eye(c)).astype(np.float32)

    @property
    def num_parameters(self) -> int:
        return self._parameters

    # --- analysis -------------------------------------------------------------------
    def run_tiles(self, tiles: list, work: Callable) -> None:
        """``work(rows, columns)`` for each tile.  Several tiles run in ``threads`` worker
        threads (default: one per core) on single-threaded BLAS, as the torch engine does: numpy
        lets go of the GIL in products, copies and arithmetic on large arrays, and whole tiles
        per worker keep both cores busy where BLAS's own threads leave them idle in every copy
        (12 Mpixel, cnn-sem, 2 cores: encode 13.7 s with one tile at a time on 2 BLAS threads)."""
        if len(tiles) == 1:
            work(*tiles[0])
            return
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(self.threads or os.cpu_count()) as pool:
            for _ in pool.map(lambda tile: work(*tile), tiles):
                pass

    def analysis(self, x: np.ndarray, tile: bool = False) -> np.ndarray:
        """(H, W, 3) float32 image in [0, 1], H and W multiples of `down` -> (H/down, W/down, C) latent
        in quantizer steps, bounded to [-A, A].  (``tile``: the same computation.)"""
        h = x - np.float32(0.5)
        for i, (taps, bias) in enumerate(self.encoder):
            h = conv5x5_stride2(h, taps, bias)
            if i < len(self.encoder_gdn):
                gdn(h, *self.encoder_gdn[i], inverse=False)
        u = h @ self.head_weight.T + self.head_bias
        if self.config.sem_scale:
            np.tanh(u, out=u)
        else:
            np.clip(u, -1.0, 1.0, out=u)
        if self.config.sem_broadcast:
            u = u @ self.broadcast.T
        u *= np.float32(self.config.amplitude)
        return u

    # --- synthesis ------------------------------------------------------------------
    def decoder_input(self, y: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """(h, w, C) received latent in its own units (lost elements zero), mask (h, w, C) of
        received elements or None -> what the decoder convolves, (h, w, C or 2C)."""
        c = self.config
        z = (y / np.float32(c.amplitude)).astype(np.float32)
        if mask is not None and self.window_plan is not None:
            z = window_impute.impute(z, mask, self.window_plan)
        elif mask is not None and self.covariance is not None:
            z = impute(z, mask, self.covariance)
        if mask is not None and c.rescale:
            kept = max(float(np.count_nonzero(mask)), 1.0)
            z *= np.float32(mask.size / kept)
        if c.masked:
            m = np.ones_like(z) if mask is None else mask.astype(np.float32)
            z = np.concatenate([z, m * 2.0 - 1.0], axis=-1)
        return z

    def decode_map(self, z: np.ndarray, tile: bool = False) -> np.ndarray:
        """(h, w, C') decoder input -> (down h, down w, 3) float32 image (unclipped)."""
        h = z
        for i, (phases, bias) in enumerate(self.decoder):
            h = transposed5x5_stride2(h, phases, bias)
            if i < len(self.decoder_gdn):
                gdn(h, *self.decoder_gdn[i], inverse=True)
        h += np.float32(0.5)
        return h


def _stack_shapes(prefix: str, layers: list[tuple[int, int]], transposed: bool) -> dict[str, tuple]:
    shapes = {}
    for i, (cin, cout) in enumerate(layers):
        shapes[f"{prefix}.{2 * i}.weight"] = (cin, cout, 5, 5) if transposed else (cout, cin, 5, 5)
        shapes[f"{prefix}.{2 * i}.bias"] = (cout,)
        if i < len(layers) - 1:
            shapes[f"{prefix}.{2 * i + 1}.beta"] = (cout,)
            shapes[f"{prefix}.{2 * i + 1}.gamma"] = (cout, cout)
    return shapes


def _gdn(s: dict[str, np.ndarray], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """(beta, gamma^T) of a GDN as the module computes them: beta^2 + 1e-6, gamma^2."""
    return s[prefix + ".beta"] ** 2 + np.float32(1e-6), np.ascontiguousarray((s[prefix + ".gamma"] ** 2).T)


def gdn(x: np.ndarray, beta: np.ndarray, gamma_t: np.ndarray, inverse: bool) -> None:
    """In place on a channels-last map: x / sqrt(beta + x^2 gamma^T), or x * sqrt(..)."""
    flat = x.reshape(-1, x.shape[-1])
    for start in range(0, len(flat), 16384):  # bands keep the temporaries in cache
        part = flat[start : start + 16384]
        norm = (part * part) @ gamma_t
        norm += beta
        np.sqrt(norm, out=norm)
        if inverse:
            part *= norm
        else:
            part /= norm


def _head(config: NetConfig, s: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The 1x1 head as (C, N) weight and (C,) bias; Dynamic Scale's normalised rows times
    its gains Gamma(condition 1.0), computed as `layers.DynamicScale` does."""
    if not config.sem_scale:
        return s["head.weight"][:, :, 0, 0].copy(), s["head.bias"].copy()
    h = np.ones((1,), np.float32)
    for i in (0, 2, 4, 6):
        h = s[f"head.mlp.{i}.weight"] @ h + s[f"head.mlp.{i}.bias"]
        if i < 6:
            h = np.maximum(h, 0.0)
    share = np.exp(h - h.max())
    share = share / share.sum() * len(h)
    gamma = np.exp(s["head.log_gain"]) * share
    w_aug = np.concatenate([s["head.weight"], s["head.bias"][:, None]], axis=1)
    w_aug = w_aug / np.maximum(np.linalg.norm(w_aug, axis=1, keepdims=True), 1e-8)
    w_aug = w_aug * gamma[:, None]
    return np.ascontiguousarray(w_aug[:, :-1], np.float32), np.ascontiguousarray(w_aug[:, -1], np.float32)


def broadcast_matrix(channels: int, k: int) -> np.ndarray:
    """Seed 003 §IV-C: B~_ij = 1/K for j among the K nearest neighbours of i, else 0 (float32).

    Channels are nodes on a ring; the K nearest neighbours of channel i are i itself and the
    channels at ring distance 1, 2, ... (ties broken towards the lower index)."""
    if not 1 <= k <= channels:
        raise ValueError(f"K={k} must be in 1..{channels}")
    offsets = [0]
    d = 1
    while len(offsets) < k:
        offsets.append(-d)
        if len(offsets) < k:
            offsets.append(d)
        d += 1
    b = np.zeros((channels, channels), np.float32)
    for i in range(channels):
        for o in offsets:
            b[i, (i + o) % channels] = 1.0 / k
    return b


def impute(z: np.ndarray, mask: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """`layers.Imputer`: each lost element replaced by its linear MMSE estimate S_lR S_RR^-1 z_R
    from the channels received at its position; positions grouped by received pattern."""
    h, w, c = z.shape
    zp = z.reshape(-1, c)
    mp = mask.reshape(-1, c).astype(bool)
    out = zp.copy()
    lost_any = ~mp.all(axis=1)
    if not lost_any.any():
        return z
    rows = np.flatnonzero(lost_any)
    pats, inv = np.unique(mp[rows], axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    for k, pat in enumerate(pats):
        sel = rows[inv == k]
        p = pat.astype(np.float32)
        a = covariance * p[:, None] * p[None, :] + np.diag(1.0 - p)
        gain = covariance @ np.linalg.inv(a)
        est = (zp[sel] * p) @ gain.T
        out[sel] = np.where(pat, zp[sel], est)
    return out.reshape(h, w, c)


def _conv_taps(weight: np.ndarray) -> np.ndarray:
    """Conv2d weight (Cout, Cin, 5, 5) -> the patch matrix's weights, (K, Cout).

    Many input channels: rows ordered (ky, kx, cin), K = 25 Cin.  Few (the image's 3): the
    kernel on the space-to-depth map, where a 5x5 stride-2 convolution is a 3x3 stride-1 one
    over 2x2 blocks (the 6x6 kernel's last row and column zero): rows (a, b, py, px, cin),
    K = 36 Cin, so each copied piece of a patch is 4 Cin floats, not Cin."""
    cout, cin = weight.shape[:2]
    if cin >= SPACE_TO_DEPTH_BELOW:
        return np.ascontiguousarray(weight.transpose(2, 3, 1, 0).reshape(25 * cin, cout))
    w6 = np.zeros((cout, cin, 6, 6), np.float32)
    w6[:, :, :5, :5] = weight
    w6 = w6.reshape(cout, cin, 3, 2, 3, 2)  # (cout, cin, a, py, b, px): ky = 2a + py
    return np.ascontiguousarray(w6.transpose(2, 4, 3, 5, 1, 0).reshape(36 * cin, cout))


# input channels below which a stride-2 convolution runs on the space-to-depth map
SPACE_TO_DEPTH_BELOW = 16


def conv5x5_stride2(x: np.ndarray, taps: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """torch's conv2d(x, w, b, stride 2, padding 2) on a channels-last (H, W, Cin) map."""
    hin, win, cin = x.shape
    ho, wo = (hin + 1) // 2, (win + 1) // 2
    xp = np.zeros((2 * ho + 4, 2 * wo + 4, cin), np.float32)
    xp[2 : 2 + hin, 2 : 2 + win] = x
    if cin < SPACE_TO_DEPTH_BELOW:
        # (ho + 2, wo + 2, 2 x 2 x cin): block (u, v) holds padded rows 2u, 2u+1, columns 2v, 2v+1
        xs = xp.reshape(ho + 2, 2, wo + 2, 2, cin).transpose(0, 2, 1, 3, 4).reshape(ho + 2, wo + 2, 4 * cin)
        offsets, source, step = [(a, b) for a in range(3) for b in range(3)], xs, 1
    else:
        offsets, source, step = [(ky, kx) for ky in range(5) for kx in range(5)], xp, 2
    piece = source.shape[-1]
    out = np.empty((ho, wo, taps.shape[1]), np.float32)
    band = max(1, BAND_ELEMENTS // (wo * taps.shape[0]))
    for r0 in range(0, ho, band):
        r1 = min(ho, r0 + band)
        cols = np.empty((r1 - r0, wo, len(offsets), piece), np.float32)
        for t, (dy, dx) in enumerate(offsets):
            rows = source[step * r0 + dy : step * (r1 - 1) + dy + 1 : step]
            cols[:, :, t] = rows[:, dx : dx + step * (wo - 1) + 1 : step]
        np.matmul(cols.reshape(-1, taps.shape[0]), taps, out=out[r0:r1].reshape(-1, taps.shape[1]))
    out += bias
    return out


# A transposed convolution (stride 2, padding 2, output padding 1) writes output o = 2i - 2 + k
# from input i through tap k.  Output row 2m + r gets: r = 0 -> taps 4, 2, 0 from inputs
# m - 1, m, m + 1; r = 1 -> taps 3, 1 from inputs m, m + 1.
_PHASE_TAPS = {0: ((4, -1), (2, 0), (0, 1)), 1: ((3, 0), (1, 1))}


def _transposed_phases(weight: np.ndarray) -> dict[tuple[int, int], np.ndarray] | np.ndarray:
    """ConvTranspose2d weight (Cin, Cout, 5, 5) -> per output phase (ry, rx) the matrix
    (taps_y taps_x Cin, Cout), rows ordered (tap y, tap x, cin) as the phase's patches.  Few
    output channels (the image's 3): one (Cin, 25 Cout) matrix, columns (ky, kx, cout), for
    the scatter form (see transposed5x5_stride2)."""
    cin, cout = weight.shape[:2]
    if cout < SPACE_TO_DEPTH_BELOW:
        return np.ascontiguousarray(weight.transpose(0, 2, 3, 1).reshape(cin, 25 * cout))
    phases = {}
    for ry, ty in _PHASE_TAPS.items():
        for rx, tx in _PHASE_TAPS.items():
            w = weight[:, :, [k for k, _ in ty]][:, :, :, [k for k, _ in tx]]  # (Cin, Cout, ny, nx)
            phases[ry, rx] = np.ascontiguousarray(w.transpose(2, 3, 0, 1).reshape(-1, cout))
    return phases


def transposed5x5_stride2(x: np.ndarray, phases: dict | np.ndarray, bias: np.ndarray) -> np.ndarray:
    """torch's conv_transpose2d(x, w, b, stride 2, padding 2, output_padding 1) on a
    channels-last (H, W, Cin) map -> (2H, 2W, Cout)."""
    hin, win, cin = x.shape
    cout = bias.shape[0]
    if isinstance(phases, np.ndarray):
        # scatter form: every input position's 5x5 x Cout contribution in one product, added
        # into place tap by tap (output 2i - 2 + k, i.e. 2i + k before cropping 2 each side)
        full = np.zeros((2 * hin + 4, 2 * win + 4, cout), np.float32)
        band = max(1, BAND_ELEMENTS // (win * phases.shape[1]))
        for r0 in range(0, hin, band):
            r1 = min(hin, r0 + band)
            spread = (x[r0:r1].reshape(-1, cin) @ phases).reshape(r1 - r0, win, 5, 5, cout)
            for ky in range(5):
                rows = full[2 * r0 + ky : 2 * r1 + ky : 2]
                for kx in range(5):
                    rows[:, kx : kx + 2 * win : 2] += spread[:, :, ky, kx]
        out = full[2 : 2 + 2 * hin, 2 : 2 + 2 * win]
        out += bias
        return out
    xp = np.zeros((hin + 2, win + 2, cin), np.float32)  # one zero row / column each side
    xp[1:-1, 1:-1] = x
    out = np.empty((hin, 2, win, 2, cout), np.float32)
    for (ry, rx), w in phases.items():
        ty, tx = _PHASE_TAPS[ry], _PHASE_TAPS[rx]
        band = max(1, BAND_ELEMENTS // (win * w.shape[0]))
        for r0 in range(0, hin, band):
            r1 = min(hin, r0 + band)
            cols = np.empty((r1 - r0, win, len(ty), len(tx), cin), np.float32)
            for a, (_, dy) in enumerate(ty):
                rows = xp[r0 + 1 + dy : r1 + 1 + dy]
                for b, (_, dx) in enumerate(tx):
                    cols[:, :, a, b] = rows[:, 1 + dx : 1 + dx + win]
            out[r0:r1, ry, :, rx] = (cols.reshape(-1, w.shape[0]) @ w).reshape(r1 - r0, win, cout)
    out = out.reshape(2 * hin, 2 * win, cout)
    out += bias
    return out
