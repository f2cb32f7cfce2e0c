"""Receiver-side imputation of lost latent elements from the received ones around them.

`layers.Imputer` (a covariance learned with the network) estimates a lost channel at one position
from the channels received at that position only.  A latent is also correlated across positions,
and a lost channel's neighbours in its other channels carry some of it: the linear MMSE estimate
from every element received in a k x k window around the position,

    z_L(p) = S_LR S_RR^-1 f_R(p),   f(p) = the window's elements (offset, channel), R those received,

with S the second moments of the window's elements, counted on the codec's training photographs
(`tools/training/fit_imputer.py`).  The latent is treated as stationary, so S is stored as the
moments at each lag, E[z(q) z(q + d)^T] for |d| < k per axis ((2k-1)^2 C x C matrices; 90 k
floats for k = 3, C = 60), and built at load.  Positions outside the map count as zeros, received
where the nearest position inside was.

Positions are grouped by the received pattern of their whole window: channels lost everywhere give
one group, a band of rows of a channel two or three more where the band ends.  Each group costs
one solve of at most k^2 C unknowns.

On the default codec over the virtual network (7 photographs never trained on, 3 seeds, the same
loss patterns; README): +0.9 dB at 40 % Bernoulli datagram loss, +1.0 under 40 % bursts.  Shipped for
the 8x-down codecs only; at 16x down neighbours are 16 pixels apart and it gained too little.  Numpy
only (the receiver imports no torch); `layers.WindowImputer` applies the same plan in torch
(refinement decodes through it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# ridge on S_RR, relative to its mean diagonal: keeps the solve well posed where channels are
# nearly collinear
RIDGE = 1e-4
# Received patterns of whole windows solved per frame, at most (each a solve of up to k^2 C = 540
# unknowns, 30-70 ms on this machine under load): lost channels and bands give a handful (one for
# channels lost everywhere, two or three more per band's end), but a peer's frame may cut every channel
# into one-row bands and lose them at random; beyond this many the frame is imputed from each position
# alone (one solve of <= C unknowns per pattern)
MAX_WINDOW_GROUPS = 48


@dataclass(frozen=True)
class WindowMoments:
    """Second moments of a (h, w, C) latent at the lags of a ``window`` x ``window`` window:
    ``lags[dy + k - 1, dx + k - 1] = E[z(q) z(q + (dy, dx))^T]`` (C x C), for |dy|, |dx| < k."""

    window: int
    lags: np.ndarray  # (2k-1, 2k-1, C, C) float64

    @property
    def channels(self) -> int:
        return self.lags.shape[-1]

    def offsets(self) -> list[tuple[int, int]]:
        r = self.window // 2
        return [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]

    def matrix(self) -> np.ndarray:
        """S: the (k^2 C, k^2 C) second moments of a window's elements, ordered (offset, channel)."""
        offs, c, k = self.offsets(), self.channels, self.window
        s = np.empty((len(offs) * c, len(offs) * c))
        for i, (y1, x1) in enumerate(offs):
            for j, (y2, x2) in enumerate(offs):
                s[i * c:(i + 1) * c, j * c:(j + 1) * c] = self.lags[y2 - y1 + k - 1, x2 - x1 + k - 1]
        return s

    @classmethod
    def count(cls, latents: list[np.ndarray], window: int) -> WindowMoments:
        """The moments of channels-last latents (h, w, C), each lag over the pairs inside a map."""
        if window < 1 or window % 2 == 0:
            raise ValueError(f"the window is an odd number of positions, not {window}")
        c = latents[0].shape[-1]
        span = 2 * window - 1
        sums = np.zeros((span, span, c, c))
        counts = np.zeros((span, span))
        for z in latents:
            z = z.astype(np.float64)
            h, w, _ = z.shape
            for dy in range(-(window - 1), window):
                for dx in range(-(window - 1), window):
                    a = z[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)].reshape(-1, c)
                    b = z[max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)].reshape(-1, c)
                    sums[dy + window - 1, dx + window - 1] += a.T @ b
                    counts[dy + window - 1, dx + window - 1] += len(a)
        return cls(window, sums / np.maximum(counts, 1)[:, :, None, None])

    def save(self, path: Path, metadata: dict[str, str]) -> None:
        from safetensors.numpy import save_file

        save_file({"lags": self.lags.astype(np.float32)}, str(path), metadata={**metadata, "window": str(self.window)})

    @classmethod
    def load(cls, path: Path) -> WindowMoments:
        from .weights import load_arrays

        arrays, meta = load_arrays(path)
        lags = np.asarray(arrays["lags"], np.float64)
        window = int(meta["window"])
        span = 2 * window - 1
        if lags.ndim != 4 or lags.shape[:2] != (span, span) or lags.shape[2] != lags.shape[3]:
            raise ValueError(f"{path}: lags of shape {lags.shape} do not fit a window of {window}")
        return cls(window, lags)


@dataclass(frozen=True)
class Group:
    """Positions (flat indices into h*w) whose windows share one received pattern: the features
    ``received`` (indices into the window's k^2 C) estimate the centre's ``lost`` channels by
    ``features[:, received] @ gain``."""

    positions: np.ndarray
    received: np.ndarray
    lost: np.ndarray
    gain: np.ndarray  # (len(received), len(lost))


class WindowPlan:
    """What `impute` solves once per received pattern: built from S (`WindowMoments.matrix`)."""

    def __init__(self, moments: WindowMoments) -> None:
        self.moments = moments
        self.offsets = moments.offsets()
        self.s = moments.matrix()
        self.ridge = RIDGE * float(np.mean(np.diag(self.s)))

    def groups(self, mask: np.ndarray) -> list[Group]:
        """mask (h, w, C) of received elements -> the groups of positions that lost a channel."""
        h, w, c = mask.shape
        r, k2 = self.moments.window // 2, len(self.offsets)
        flat = mask.reshape(-1, c).astype(bool)
        pats, ids = np.unique(flat, axis=0, return_inverse=True)
        ids = ids.reshape(h, w)
        centre_lost = ~flat.all(axis=1)
        if not centre_lost.any():
            return []
        # outside the map: zeros received where the nearest position inside received (a pattern of
        # their own would give the border its own solves, 8 more per frame, for a few positions'
        # slightly better estimate)
        padded = np.pad(ids, r, mode="edge")
        windows = np.stack([padded[r + dy:r + dy + h, r + dx:r + dx + w].reshape(-1) for dy, dx in self.offsets], 1)
        where = np.flatnonzero(centre_lost)
        kinds, inverse = np.unique(windows[where], axis=0, return_inverse=True)
        if len(kinds) > MAX_WINDOW_GROUPS:  # too many to solve: each position alone (its neighbours unseen)
            alone = np.full_like(windows[where], -1)
            alone[:, k2 // 2] = windows[where, k2 // 2]
            kinds, inverse = np.unique(alone, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        out = []
        for g, kind in enumerate(kinds):
            received = np.concatenate([np.flatnonzero(pats[i]) + o * c if i >= 0 else np.empty(0, np.int64)
                                       for o, i in enumerate(kind)])
            lost = np.flatnonzero(~pats[kind[k2 // 2]])
            if len(received):
                srr = self.s[np.ix_(received, received)] + self.ridge * np.eye(len(received))
                gain = np.linalg.solve(srr, self.s[np.ix_(received, (k2 // 2) * c + lost)])
            else:
                gain = np.zeros((0, len(lost)))
            out.append(Group(where[inverse == g], received, lost, gain.astype(np.float32)))
        return out


def impute(z: np.ndarray, mask: np.ndarray, plan: WindowPlan) -> np.ndarray:
    """(h, w, C) latent in its own units with lost elements zero, mask (h, w, C) of received ones
    -> the latent with each lost element replaced by its estimate from the window around it."""
    groups = plan.groups(mask)
    if not groups:
        return z
    h, w, c = z.shape
    r = plan.moments.window // 2
    zm = np.where(mask.astype(bool), z, 0).astype(np.float32)
    padded = np.pad(zm, ((r, r), (r, r), (0, 0)))  # zero outside the map; once for every group
    out = zm.reshape(-1, c).copy()
    for g in groups:
        ys, xs = np.divmod(g.positions, w)
        features = np.concatenate([padded[ys + r + dy, xs + r + dx] for dy, dx in plan.offsets], 1)
        out[g.positions[:, None], g.lost[None, :]] = features[:, g.received] @ g.gain
    return out.reshape(h, w, c)


def imputer_path(weights: Path) -> Path:
    """Where a weight file's window moments live: NAME.imputer.safetensors beside NAME.safetensors."""
    return weights.with_name(weights.name.removesuffix(".safetensors") + ".imputer.safetensors")
