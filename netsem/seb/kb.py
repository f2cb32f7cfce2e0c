"""The knowledge base of semantic bases (Sebs), seed 001 §II-A/B: what sender and receiver share.

A patch feature (64 numbers per 16x16 patch, `model.SebNet.extract`) is cut into `groups`
slices of `dim` numbers (product quantization); a Seb is a cluster centre of one slice, so a
patch is told by `groups` Seb indices. Two levels:

    fine    (level 0)  K-means over the 16x16 patches' slices (eq. 1); `FINE_CAPACITY` slots
    coarse  (level 1)  K-means over the fine Sebs, each weighted by its population (eq. 2);
                       a 32x32 region coded coarse is its four patches' mean, quantized here

`parent[g, k]` is the coarse Seb fine Seb k of slice g maps to (the partial order ⪯). Each Seb
has an importance: the mean importance of the features clustered into it (eq. 3; a feature's
importance is its patch's spectral-residual saliency, `saliency.py`), and for a coarse Seb
the mean of its fine Sebs' (eq. 4). `last_used` (t0 of eq. 6) is the message counter at
which the Seb last coded something; `kb_update.py` decays, refreshes, adds and removes.

Slots are fixed (256 fine, 64 coarse per slice), so an index is always 8 / 6 bits and a KB
update names slots. `version` (16 bits) travels in every datagram as `kb_version`.

Stored as one safetensors file (the arrays) plus its JSON twin (version, thresholds, history),
both written by `save` and read by `load`; sender and receiver each load their own copy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FINE, COARSE = 0, 1
LEVEL_NAMES = ("fine", "coarse")
FINE_CAPACITY = 256
COARSE_CAPACITY = 64
INDEX_BITS = (8, 6)  # bits of a fine / coarse Seb index on the wire


class KbError(ValueError):
    """A knowledge base that cannot be built, loaded or used as asked (one-line message)."""


@dataclass
class Level:
    """One level's Sebs: `sebs[g, slot]` is a centre of slice g; inactive slots are free."""

    sebs: np.ndarray  # (groups, capacity, dim) float32
    active: np.ndarray  # (groups, capacity) bool
    importance: np.ndarray  # (groups, capacity) float32, I at t0
    last_used: np.ndarray  # (groups, capacity) int64, t0

    @classmethod
    def empty(cls, groups: int, capacity: int, dim: int) -> Level:
        return cls(np.zeros((groups, capacity, dim), np.float32), np.zeros((groups, capacity), bool),
                   np.zeros((groups, capacity), np.float32), np.zeros((groups, capacity), np.int64))

    @property
    def capacity(self) -> int:
        return self.sebs.shape[1]

    def counts(self) -> list[int]:
        return self.active.sum(axis=1).tolist()

    def nearest(self, slices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """slices (groups, N, dim) -> (indices (groups, N), squared distances (groups, N)) to active Sebs."""
        centres = self.sebs
        d2 = (np.einsum("gnd,gnd->gn", slices, slices)[:, :, None] - 2 * np.einsum("gnd,gkd->gnk", slices, centres)
              + np.einsum("gkd,gkd->gk", centres, centres)[:, None, :])
        d2 = np.where(self.active[:, None, :], d2, np.inf)
        index = d2.argmin(axis=2)
        return index, np.maximum(np.take_along_axis(d2, index[:, :, None], axis=2)[:, :, 0], 0)

    def lookup(self, index: np.ndarray) -> np.ndarray:
        """index (groups, N) -> slices (groups, N, dim)."""
        return np.take_along_axis(self.sebs, index[:, :, None].astype(np.int64), axis=1)


def kmeans(points: np.ndarray, k: int, rng: np.random.Generator, weights: np.ndarray | None = None,
           iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Weighted K-means (k-means++ start): (N, d) -> (centres (k, d), label per point)."""
    n = len(points)
    if n < k:
        raise KbError(f"{n} points cannot make {k} clusters")
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    centres = [points[rng.choice(n, p=w / w.sum())]]
    d2 = ((points - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        p = w * d2
        centres.append(points[rng.choice(n, p=p / p.sum()) if p.sum() > 0 else rng.integers(n)])
        d2 = np.minimum(d2, ((points - centres[-1]) ** 2).sum(axis=1))
    c = np.array(centres, np.float64)
    for _ in range(iterations):
        dist = (points ** 2).sum(1)[:, None] - 2 * points @ c.T + (c ** 2).sum(1)[None]
        labels = dist.argmin(axis=1)
        mass = np.bincount(labels, weights=w, minlength=k)
        sums = np.zeros_like(c)
        np.add.at(sums, labels, points * w[:, None])
        filled = mass > 0
        c[filled] = sums[filled] / mass[filled, None]
    dist = (points ** 2).sum(1)[:, None] - 2 * points @ c.T + (c ** 2).sum(1)[None]
    return c.astype(np.float32), dist.argmin(axis=1)


def feature_slices(features: np.ndarray, groups: int) -> np.ndarray:
    """(D, h, w) feature map -> (groups, h*w, D/groups) slices, patch order row-major."""
    d, h, w = features.shape
    return np.ascontiguousarray(features.reshape(groups, d // groups, h * w).transpose(0, 2, 1))


def region_means(features: np.ndarray) -> np.ndarray:
    """(D, h, w) -> (D, h/2, w/2): each 32x32 region's mean patch feature."""
    d, h, w = features.shape
    return features.reshape(d, h // 2, 2, w // 2, 2).mean(axis=(2, 4))


@dataclass
class KnowledgeBase:
    groups: int
    dim: int  # numbers per slice
    fine: Level
    coarse: Level
    parent: np.ndarray  # (groups, FINE_CAPACITY) int16: coarse slot of each fine Seb, -1 free
    version: int = 1
    distortion_threshold: float = 0.0  # eq. 5 of the KB's 90th-percentile photograph (the update trigger's unit)
    clock: int = 0  # the message counter (t of eq. 6) the sender has reached
    history: list = field(default_factory=list)  # one line per version: what changed

    @property
    def feature_dim(self) -> int:
        return self.groups * self.dim

    def level(self, which: int) -> Level:
        return (self.fine, self.coarse)[which]

    # -- building (eqs. 1-4) ---------------------------------------------------------------
    @classmethod
    def build(cls, features: list[np.ndarray], importance: list[np.ndarray], *, groups: int = 8,
              fine_sebs: int = 192, coarse_sebs: int = 48, seed: int = 0) -> KnowledgeBase:
        """The initial KB from patch features (each (D, h, w)) and their patches' importance
        (each (h, w)), leaving free slots for updates (`fine_sebs` < 256, `coarse_sebs` < 64)."""
        if not (0 < fine_sebs <= FINE_CAPACITY and 0 < coarse_sebs <= min(COARSE_CAPACITY, fine_sebs)):
            raise KbError(f"{fine_sebs} fine / {coarse_sebs} coarse Sebs do not fit {FINE_CAPACITY} / {COARSE_CAPACITY} slots")
        d = features[0].shape[0]
        if d % groups:
            raise KbError(f"{d}-number features do not cut into {groups} slices")
        rng = np.random.default_rng(seed)
        slices = np.concatenate([feature_slices(f, groups) for f in features], axis=1)  # (G, N, dim)
        imp = np.concatenate([i.reshape(-1) for i in importance]).astype(np.float32)
        kb = cls(groups, d // groups, Level.empty(groups, FINE_CAPACITY, d // groups),
                 Level.empty(groups, COARSE_CAPACITY, d // groups), np.full((groups, FINE_CAPACITY), -1, np.int16))
        for g in range(groups):
            centres, labels = kmeans(slices[g].astype(np.float64), fine_sebs, rng)
            population = np.bincount(labels, minlength=fine_sebs).astype(np.float64)
            fine_importance = np.bincount(labels, weights=imp, minlength=fine_sebs) / np.maximum(population, 1)  # eq. 3
            kb.fine.sebs[g, :fine_sebs] = centres
            kb.fine.active[g, :fine_sebs] = True
            kb.fine.importance[g, :fine_sebs] = fine_importance
            coarse, parents = kmeans(centres.astype(np.float64), coarse_sebs, rng, weights=population + 1e-3)  # eq. 2
            kb.coarse.sebs[g, :coarse_sebs] = coarse
            kb.coarse.active[g, :coarse_sebs] = True
            kb.coarse.importance[g, :coarse_sebs] = [  # eq. 4
                fine_importance[parents == c].mean() if (parents == c).any() else 0.0 for c in range(coarse_sebs)]
            kb.parent[g, :fine_sebs] = parents
        # a message asks for an update when it is represented worse than 90 % of the photographs the KB came from
        kb.distortion_threshold = float(np.quantile([kb.distortion(f) for f in features], 0.9))
        kb.history.append(f"v1: built from {slices.shape[1]} patches, {fine_sebs} fine / {coarse_sebs} coarse Sebs per slice")
        return kb

    # -- coding (eqs. 5, 7, 8) ----------------------------------------------------------------
    def quantize(self, features: np.ndarray, fine_regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """f_quant: (D, h, w) features and a (h/2, w/2) bool map of fine-coded regions ->
        fine indices (groups, h, w) and coarse indices (groups, h/2, w/2); both are computed
        everywhere, a region uses one or the other."""
        d, h, w = features.shape
        fine_index, _ = self.fine.nearest(feature_slices(features, self.groups))
        coarse_index, _ = self.coarse.nearest(feature_slices(region_means(features), self.groups))
        return fine_index.reshape(self.groups, h, w), coarse_index.reshape(self.groups, h // 2, w // 2)

    def features_of(self, fine_index: np.ndarray, coarse_index: np.ndarray, fine_regions: np.ndarray) -> np.ndarray:
        """f_query: the indices back to a (D, h, w) feature map, fine where `fine_regions`."""
        g, h, w = fine_index.shape
        fine = self.fine.lookup(fine_index.reshape(g, -1))  # (G, h*w, dim)
        fine = fine.transpose(0, 2, 1).reshape(g * self.dim, h, w)
        coarse = self.coarse.lookup(coarse_index.reshape(g, -1)).transpose(0, 2, 1).reshape(g * self.dim, h // 2, w // 2)
        coarse = coarse.repeat(2, axis=1).repeat(2, axis=2)
        mask = np.asarray(fine_regions, bool).repeat(2, axis=0).repeat(2, axis=1)
        return np.where(mask[None], fine, coarse).astype(np.float32)

    def quantize_features(self, features: np.ndarray, fine_regions: np.ndarray) -> np.ndarray:
        """What the decoder receives for these features when nothing is lost (training, stage 2)."""
        return self.features_of(*self.quantize(features, fine_regions), fine_regions)

    def distortion(self, features: np.ndarray) -> float:
        """Eq. 5: mean over patches of ||f - f_quant(f)||_2 at the fine level (the SR accuracy)."""
        _, d2 = self.fine.nearest(feature_slices(features, self.groups))
        return float(np.sqrt(d2.sum(axis=0)).mean())

    def check_indices(self, level: int, group_index: np.ndarray) -> None:
        """KbError unless every (group, slot) in `group_index` (groups, N) is an active Seb."""
        lv = self.level(level)
        if group_index.size and group_index.max() >= lv.capacity:
            raise KbError(f"{LEVEL_NAMES[level]} Seb index {int(group_index.max())} outside the KB's {lv.capacity} slots")
        ok = np.take_along_axis(lv.active, group_index.astype(np.int64), axis=1)
        if not ok.all():
            g, n = np.argwhere(~ok)[0]
            raise KbError(f"{LEVEL_NAMES[level]} Seb {int(group_index[g, n])} of slice {int(g)} is not in KB "
                          f"version {self.version} ({lv.counts()[g]} Sebs)")

    def mean_feature(self) -> np.ndarray:
        """(D,): each slice's mean active fine Seb (what a region nobody received is told)."""
        lv = self.fine
        means = (lv.sebs * lv.active[:, :, None]).sum(axis=1) / np.maximum(lv.active.sum(axis=1), 1)[:, None]
        return means.reshape(-1).astype(np.float32)

    def mark_used(self, fine_index: np.ndarray, coarse_index: np.ndarray, fine_regions: np.ndarray) -> None:
        """Eq. 6's refresh: the Sebs that coded this message get t0 = now."""
        mask = np.asarray(fine_regions, bool).repeat(2, axis=0).repeat(2, axis=1)
        for g in range(self.groups):
            self.fine.last_used[g, np.unique(fine_index[g][mask])] = self.clock
            self.coarse.last_used[g, np.unique(coarse_index[g][~np.asarray(fine_regions, bool)])] = self.clock

    # -- files ---------------------------------------------------------------------------------
    def copy(self) -> KnowledgeBase:
        return KnowledgeBase(self.groups, self.dim, *(Level(*(a.copy() for a in (lv.sebs, lv.active, lv.importance, lv.last_used)))
                                                       for lv in (self.fine, self.coarse)),
                             self.parent.copy(), self.version, self.distortion_threshold, self.clock, list(self.history))

    def save(self, path: str | Path) -> None:
        """`path` (.safetensors) and its JSON twin (`path` with .json)."""
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"parent": self.parent}
        for name, lv in zip(LEVEL_NAMES, (self.fine, self.coarse)):
            arrays.update({f"{name}.sebs": lv.sebs, f"{name}.active": lv.active.astype(np.uint8),
                           f"{name}.importance": lv.importance, f"{name}.last_used": lv.last_used})
        meta = {"kind": "seb-kb", "version": self.version, "groups": self.groups, "dim": self.dim,
                "distortion_threshold": self.distortion_threshold, "clock": self.clock, "history": self.history}
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path), metadata={"kb": json.dumps(meta)})
        path.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> KnowledgeBase:
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise KbError(f"no knowledge base {path}")
        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = json.loads((f.metadata() or {}).get("kb", "{}"))
                arrays = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as error:  # noqa: BLE001 — a broken file is a one-line error
            raise KbError(f"{path} is not a knowledge base: {error}") from None
        if meta.get("kind") != "seb-kb":
            raise KbError(f"{path} is not a knowledge base (kind {meta.get('kind')!r})")
        levels = [Level(arrays[f"{n}.sebs"].astype(np.float32), arrays[f"{n}.active"].astype(bool),
                        arrays[f"{n}.importance"].astype(np.float32), arrays[f"{n}.last_used"].astype(np.int64))
                  for n in LEVEL_NAMES]
        return cls(int(meta["groups"]), int(meta["dim"]), *levels, arrays["parent"].astype(np.int16),
                   int(meta["version"]), float(meta["distortion_threshold"]), int(meta.get("clock", 0)),
                   list(meta.get("history", [])))
