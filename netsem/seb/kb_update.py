"""KB update mode (seed 001 §II-B, Algorithm 1 lines 3 and 5-12): when, what, and on the wire.

The sender keeps the last `window` messages' features. After each message it measures the
representation distortion (eq. 5) and asks for an update when it exceeds `trigger` x that of
the KB's 90th-percentile training photograph. An update:

1. clusters the window's patch slices (and region means, for the coarse level) with K-means
   into `candidates` (`coarse_candidates`) new Sebs per slice, each with the mean importance
   of its members (eq. 3);
2. keeps a candidate when its distance to the nearest Seb exceeds `add_factor` x the slice's
   typical spacing (the median distance from a Seb to its nearest neighbour);
3. decays every Seb's importance, I(t) = I x exp(-(t - t0) / decay) with t0 its last use
   (eq. 6; refreshed on use by `KnowledgeBase.mark_used`), and removes the obsolete ones, whose
   decayed importance fell below `remove_below`;
4. puts the kept candidates in free slots (when none is free, in the slot of the Seb with the
   lowest decayed importance, which is removed in the same update).

`KbUpdate` is the message: the base and new versions, the removed slots and the added Sebs
(level, slice, slot, parent, importance, float16 numbers), declared once with construct
(`KB_UPDATE_MESSAGE`). A snapshot is the same message from base version 0 holding every Seb: a
receiver that lost an update (and so cannot apply the ones after it) catches up from it. The sender applies the *decoded* message to its own KB, so both ends
hold bit-identical Sebs. It travels as a byte stream of msg_type KB_UPDATE (`session.py`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import construct as cs
import numpy as np

from .kb import (
    COARSE,
    FINE,
    KbError,
    KnowledgeBase,
    feature_slices,
    kmeans,
    region_means,
)

SNAPSHOT_BASE = 0  # an update from version 0 is the whole KB (versions themselves start at 1)

KB_UPDATE_MESSAGE = cs.Struct(
    "base_version" / cs.Int16ub,
    "new_version" / cs.Int16ub,
    "clock" / cs.Int32ub,  # the sender's message counter when it made the update
    "dim" / cs.Int8ub,  # numbers per Seb
    "removed" / cs.PrefixedArray(cs.Int16ub, cs.Struct("level" / cs.Int8ub, "group" / cs.Int8ub, "slot" / cs.Int16ub)),
    "added" / cs.PrefixedArray(cs.Int16ub, cs.Struct(
        "level" / cs.Int8ub, "group" / cs.Int8ub, "slot" / cs.Int16ub,
        "parent" / cs.Int16sb,  # fine Sebs: the coarse slot they map to (-1: none); coarse: -1
        "importance" / cs.Float16b,
        "vector" / cs.Array(cs.this._._.dim, cs.Float16b),
    )),
    cs.Terminated,
)


@dataclass(frozen=True)
class KbUpdate:
    base_version: int
    new_version: int
    clock: int
    dim: int
    removed: tuple[tuple[int, int, int], ...]  # (level, group, slot)
    added: tuple[tuple[int, int, int, int, float, tuple[float, ...]], ...]  # (level, group, slot, parent, importance, vector)

    def to_bytes(self) -> bytes:
        return KB_UPDATE_MESSAGE.build({
            "base_version": self.base_version, "new_version": self.new_version, "clock": self.clock, "dim": self.dim,
            "removed": [{"level": lv, "group": g, "slot": s} for lv, g, s in self.removed],
            "added": [{"level": lv, "group": g, "slot": s, "parent": p, "importance": i, "vector": list(v)}
                      for lv, g, s, p, i, v in self.added]})

    @classmethod
    def from_bytes(cls, data: bytes) -> KbUpdate:
        try:
            m = KB_UPDATE_MESSAGE.parse(data)
        except cs.ConstructError as error:
            raise KbError(f"KB update does not parse: {str(error).splitlines()[0]}") from None
        return cls(m.base_version, m.new_version, m.clock, m.dim, tuple((r.level, r.group, r.slot) for r in m.removed),
                   tuple((a.level, a.group, a.slot, a.parent, float(a.importance), tuple(float(x) for x in a.vector))
                         for a in m.added))

    @classmethod
    def snapshot(cls, kb: KnowledgeBase) -> KbUpdate:
        """The whole KB as one message (base version 0): what a receiver that lost an update
        (and so every later one) applies to catch up."""
        added = []
        for level in (FINE, COARSE):
            lv = kb.level(level)
            for g, slot in zip(*np.nonzero(lv.active)):
                parent = int(kb.parent[g, slot]) if level == FINE else -1
                added.append((level, int(g), int(slot), parent, float(lv.importance[g, slot]),
                              tuple(float(x) for x in lv.sebs[g, slot])))
        return cls(SNAPSHOT_BASE, kb.version, kb.clock, kb.dim, (), tuple(added))

    def apply(self, kb: KnowledgeBase) -> KnowledgeBase:
        """A new KB: `kb` (which must hold `base_version`) with this update; a snapshot (base 0)
        replaces every Seb of `kb`. KbError, and `kb` untouched, when the update does not fit it."""
        if self.base_version == SNAPSHOT_BASE:
            empty = kb.copy()
            for lv in (empty.fine, empty.coarse):
                lv.active[:] = False
            empty.parent[:] = -1
            empty.version = SNAPSHOT_BASE
            return self._apply(empty)
        return self._apply(kb)

    def _apply(self, kb: KnowledgeBase) -> KnowledgeBase:
        if kb.version != self.base_version:
            raise KbError(f"KB update {self.base_version} -> {self.new_version} does not apply to version {kb.version}")
        if self.dim != kb.dim:
            raise KbError(f"KB update carries {self.dim}-number Sebs, the KB holds {kb.dim}")
        new = kb.copy()
        for level, group, slot in self.removed:
            lv = _slot_level(new, level, group, slot)
            if not lv.active[group, slot]:
                raise KbError(f"KB update removes {level}/{group}/{slot}, which is not in the KB")
            lv.active[group, slot] = False
            if level == FINE:
                new.parent[group, slot] = -1
            else:
                new.parent[group][new.parent[group] == slot] = -1
        for level, group, slot, parent, importance, vector in self.added:
            lv = _slot_level(new, level, group, slot)
            values = np.asarray(vector, np.float32)
            if lv.active[group, slot]:
                raise KbError(f"KB update adds {level}/{group}/{slot}, which is taken")
            if not np.isfinite(values).all() or not np.isfinite(importance):
                raise KbError("KB update carries a number that is not finite")
            lv.sebs[group, slot] = values
            lv.active[group, slot] = True
            lv.importance[group, slot] = importance
            lv.last_used[group, slot] = self.clock
            if level == FINE:
                if not -1 <= parent < new.coarse.capacity:
                    raise KbError(f"KB update names coarse parent {parent}")
                new.parent[group, slot] = parent
        if (new.fine.active.sum(axis=1) == 0).any() or (new.coarse.active.sum(axis=1) == 0).any():
            raise KbError("KB update would leave a slice without Sebs")
        new.version = self.new_version
        new.clock = max(new.clock, self.clock)
        new.history.append(f"v{self.new_version}: -{len(self.removed)} +{len(self.added)} Sebs at message {self.clock}")
        return new


def _slot_level(kb: KnowledgeBase, level: int, group: int, slot: int):
    if level not in (FINE, COARSE) or not 0 <= group < kb.groups:
        raise KbError(f"KB update names level {level} slice {group}, outside the KB")
    lv = kb.level(level)
    if not 0 <= slot < lv.capacity:
        raise KbError(f"KB update names slot {slot}, outside the {lv.capacity} slots")
    return lv


def next_version(version: int) -> int:
    return version % 0xFFFF + 1  # 1..65535, never 0


@dataclass
class UpdatePolicy:
    window: int = 4  # recent messages the new Sebs come from
    trigger: float = 1.0  # ask for an update when eq. 5 exceeds this x the KB's 90th-percentile photograph's
    candidates: int = 16  # new fine Sebs per slice considered
    coarse_candidates: int = 16  # new coarse Sebs per slice considered (coarse codes 80 % of the regions)
    add_factor: float = 0.75
    decay: float = 16.0  # messages: eq. 6's Delta(t) = exp(-t / decay)
    remove_below: float = 0.005
    cooldown: int = 2  # messages between two updates


@dataclass
class KbUpdater:
    """The sender's half of the update mode. `observe(encoded)` after each message; it returns
    the update to send (already applied to `kb`) or None."""

    kb: KnowledgeBase
    policy: UpdatePolicy = field(default_factory=UpdatePolicy)
    seed: int = 0
    distortions: list = field(default_factory=list)  # eq. 5 per message
    _recent: deque = field(default_factory=deque)
    _last_update: int = -(1 << 30)

    def observe(self, encoded) -> KbUpdate | None:
        kb = self.kb
        kb.clock += 1
        if encoded.frame.kb_version == kb.version:
            kb.mark_used(encoded.fine_index, encoded.coarse_index, encoded.fine_regions)
        else:  # coded with an older version still in use while this one's copies go out
            kb.mark_used(*kb.quantize(encoded.features, encoded.fine_regions), encoded.fine_regions)
        self._recent.append((encoded.features, encoded.patch_importance))
        while len(self._recent) > self.policy.window:
            self._recent.popleft()
        distortion = kb.distortion(encoded.features)
        self.distortions.append(distortion)
        if distortion <= self.policy.trigger * kb.distortion_threshold or kb.clock - self._last_update < self.policy.cooldown:
            return None
        update = KbUpdate.from_bytes(self.make_update().to_bytes())  # the float16 numbers the receiver will hold
        self.kb = update.apply(kb)
        self._last_update = self.kb.clock
        return update

    def make_update(self) -> KbUpdate:
        kb, policy = self.kb, self.policy
        rng = np.random.default_rng([self.seed, kb.clock])
        removed, added = [], []
        fine_points = np.concatenate([feature_slices(f, kb.groups) for f, _ in self._recent], axis=1)
        coarse_points = np.concatenate([feature_slices(region_means(f), kb.groups) for f, _ in self._recent], axis=1)
        fine_imp = np.concatenate([i.reshape(-1) for _, i in self._recent])
        coarse_imp = np.concatenate([i.reshape(i.shape[0] // 2, 2, -1, 2).mean(axis=(1, 3)).reshape(-1) for _, i in self._recent])
        for level, points, imp, k in ((FINE, fine_points, fine_imp, policy.candidates),
                                      (COARSE, coarse_points, coarse_imp, policy.coarse_candidates)):
            lv = kb.level(level)
            current = lv.importance * np.exp(-(kb.clock - lv.last_used) / policy.decay)
            for g in range(kb.groups):
                active = np.flatnonzero(lv.active[g])
                obsolete = [int(s) for s in active if current[g, s] < policy.remove_below]
                if len(active) - len(obsolete) < 1:
                    obsolete = obsolete[1:]
                k_here = min(k, points.shape[1])
                centres, labels = kmeans(points[g].astype(np.float64), k_here, rng, iterations=15)
                member_imp = np.bincount(labels, weights=imp, minlength=k_here) / np.maximum(np.bincount(labels, minlength=k_here), 1)
                existing = lv.sebs[g, active]
                spacing = _typical_spacing(existing)
                far = np.sqrt(((centres[:, None, :] - existing[None]) ** 2).sum(-1)).min(axis=1)
                keep = np.flatnonzero(far > policy.add_factor * spacing)
                keep = keep[np.argsort(-far[keep])]
                free = [int(s) for s in np.flatnonzero(~lv.active[g])] + obsolete
                # no free slot left: the least important remaining Sebs make room
                spare = [int(s) for s in active[np.argsort(current[g, active])] if int(s) not in obsolete]
                for c in keep:
                    if not free:
                        if len(spare) <= 1:
                            break
                        victim = spare.pop(0)
                        obsolete.append(victim)
                        free.append(victim)
                    slot = free.pop(0)
                    parent = -1
                    if level == FINE:
                        coarse = kb.coarse
                        d2 = np.where(coarse.active[g], ((coarse.sebs[g] - centres[c]) ** 2).sum(-1), np.inf)
                        parent = int(d2.argmin())
                    added.append((level, g, slot, parent, float(member_imp[c]), tuple(float(x) for x in centres[c])))
                removed += [(level, g, s) for s in obsolete]
        return KbUpdate(kb.version, next_version(kb.version), kb.clock, kb.dim, tuple(removed), tuple(added))


def _typical_spacing(sebs: np.ndarray) -> float:
    if len(sebs) < 2:
        return 0.0
    d2 = ((sebs[:, None, :] - sebs[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    return float(np.median(np.sqrt(d2.min(axis=1))))
