"""KB update mode (seed 001 §II-B): when an update is asked for, what it carries, how it applies."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from netsem.seb.kb import COARSE, FINE, KbError, KnowledgeBase
from netsem.seb.kb_update import KbUpdate, KbUpdater, UpdatePolicy, next_version


@dataclasses.dataclass
class _Message:  # what KbUpdater.observe reads of an encoded message
    features: np.ndarray
    patch_importance: np.ndarray
    fine_regions: np.ndarray
    fine_index: np.ndarray
    coarse_index: np.ndarray
    frame: object  # what it was coded with: .kb_version


def _maps(rng, centres, n, d=16, h=4, w=4):
    out = []
    for _ in range(n):
        pick = rng.integers(len(centres), size=h * w)
        out.append((centres[pick] + rng.normal(0, 0.05, (h * w, d))).T.reshape(d, h, w).astype(np.float32))
    return out


def _kb(rng):
    old = rng.normal(0, 3, (10, 16))
    maps = _maps(rng, old, 40)  # enough patches that 20 Sebs per slice do not fit the noise
    kb = KnowledgeBase.build(maps, [np.full((4, 4), 0.5, np.float32)] * 40, groups=4, fine_sebs=20, coarse_sebs=5)
    return kb, old


def _message(kb, features):
    fine_regions = np.zeros((2, 2), bool)
    fi, ci = kb.quantize(features, fine_regions)
    from types import SimpleNamespace

    return _Message(features, np.full(features.shape[1:], 0.5, np.float32), fine_regions, fi, ci,
                    SimpleNamespace(kb_version=kb.version))


def test_message_round_trip_and_checks():
    u = KbUpdate(3, 4, 17, 4, ((FINE, 0, 5), (COARSE, 1, 2)), ((FINE, 2, 7, 1, 0.25, (1.0, -2.0, 0.5, 3.0)),))
    assert KbUpdate.from_bytes(u.to_bytes()) == u
    with pytest.raises(KbError, match="does not parse"):
        KbUpdate.from_bytes(u.to_bytes()[:-3])
    with pytest.raises(KbError, match="does not parse"):
        KbUpdate.from_bytes(u.to_bytes() + b"x")
    assert next_version(1) == 2 and next_version(0xFFFF) == 1


def test_apply_checks_base_slots_and_numbers():
    rng = np.random.default_rng(0)
    kb, _ = _kb(rng)
    add = ((FINE, 0, 200, 0, 0.5, (0.0, 0.0, 0.0, 0.0)),)
    new = KbUpdate(1, 2, 5, 4, ((FINE, 0, 3),), add).apply(kb)
    assert new.version == 2 and kb.version == 1  # the old KB is untouched
    assert new.fine.active[0, 200] and not new.fine.active[0, 3] and kb.fine.active[0, 3]
    assert new.fine.last_used[0, 200] == 5
    with pytest.raises(KbError, match="does not apply to version 2"):
        KbUpdate(1, 2, 5, 4, (), add).apply(new)
    with pytest.raises(KbError, match="which is taken"):
        KbUpdate(1, 2, 5, 4, (), ((FINE, 0, 3, 0, 0.5, (0.0,) * 4),)).apply(kb)
    with pytest.raises(KbError, match="not in the KB"):
        KbUpdate(1, 2, 5, 4, ((FINE, 0, 250),), ()).apply(kb)
    with pytest.raises(KbError, match="outside"):
        KbUpdate(1, 2, 5, 4, ((COARSE, 0, 64),), ()).apply(kb)
    with pytest.raises(KbError, match="not finite"):
        KbUpdate(1, 2, 5, 4, (), ((FINE, 0, 201, 0, 0.5, (float("nan"),) * 4),)).apply(kb)
    with pytest.raises(KbError, match="8-number"):
        KbUpdate(1, 2, 5, 8, (), ()).apply(kb)


def test_update_is_asked_for_on_new_content_only_and_lowers_distortion():
    rng = np.random.default_rng(1)
    kb, old = _kb(rng)
    updater = KbUpdater(kb, UpdatePolicy(window=2, candidates=8, coarse_candidates=4, cooldown=1, trigger=1.15))
    for f in _maps(rng, old, 3):  # content the KB was built on: no update
        assert updater.observe(_message(updater.kb, f)) is None
    new_centres = rng.normal(8, 3, (6, 16))  # content far from every Seb
    updates = []
    new_maps = _maps(rng, new_centres, 4)
    before = updater.kb.distortion(new_maps[-1])
    for f in new_maps:
        u = updater.observe(_message(updater.kb, f))
        if u is not None:
            updates.append(u)
    assert updates, "new content must trigger an update"
    assert updater.kb.version == 1 + len(updates)
    assert updater.kb.distortion(new_maps[-1]) < 0.5 * before
    assert all(len(u.added) > 0 for u in updates)
    # the receiver applying the same messages holds bit-identical Sebs
    receiver = kb
    for u in updates:
        receiver = KbUpdate.from_bytes(u.to_bytes()).apply(receiver)
    assert np.array_equal(receiver.fine.sebs[receiver.fine.active], updater.kb.fine.sebs[updater.kb.fine.active])


def test_unused_sebs_decay_and_are_removed():
    rng = np.random.default_rng(2)
    kb, old = _kb(rng)
    policy = UpdatePolicy(window=1, candidates=8, decay=2.0, remove_below=0.05, cooldown=1)
    updater = KbUpdater(kb, policy)
    far = _maps(rng, rng.normal(10, 3, (6, 16)), 8)
    removed = []
    for f in far:
        u = updater.observe(_message(updater.kb, f))
        if u is not None:
            removed += [r for r in u.removed if r[0] == FINE]
    # the old Sebs (importance 0.5, unused since message 0) fall below 0.05 after ~5 messages
    assert removed, "obsolete Sebs must be removed"
    assert updater.kb.fine.active.sum(axis=1).min() >= 1
