"""The knowledge base (seed 001 eqs. 1-5): building, the hierarchy, importance, files, index checks."""

from __future__ import annotations

import numpy as np
import pytest

from netsem.seb.kb import COARSE, FINE, KbError, KnowledgeBase, feature_slices, kmeans


def _features(rng, n_maps=4, d=16, h=4, w=6, centres=None):
    """Feature maps whose patch slices sit near a few known centres."""
    centres = rng.normal(0, 3, (12, d)) if centres is None else centres
    maps, imps = [], []
    for _ in range(n_maps):
        pick = rng.integers(len(centres), size=h * w)
        f = centres[pick] + rng.normal(0, 0.05, (h * w, d))
        maps.append(f.T.reshape(d, h, w).astype(np.float32))
        imps.append(rng.random((h, w)).astype(np.float32))
    return maps, imps, centres


def test_kmeans_finds_separated_clusters_and_weights_pull_centres():
    rng = np.random.default_rng(0)
    truth = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = np.concatenate([t + rng.normal(0, 0.1, (50, 2)) for t in truth])
    centres, labels = kmeans(points, 3, rng)
    assert sorted(np.round(centres).tolist()) == sorted(truth.tolist())
    assert len(set(labels[:50])) == 1
    # one centre for two points: the weighted mean, not the midpoint
    c, _ = kmeans(np.array([[0.0], [1.0]]), 1, rng, weights=np.array([3.0, 1.0]))
    assert c[0, 0] == pytest.approx(0.25)


def test_build_hierarchy_importance_and_distortion():
    rng = np.random.default_rng(1)
    maps, imps, _ = _features(rng)
    kb = KnowledgeBase.build(maps, imps, groups=4, fine_sebs=12, coarse_sebs=3, seed=0)
    assert kb.fine.counts() == [12] * 4 and kb.coarse.counts() == [3] * 4
    assert kb.version == 1 and kb.feature_dim == 16
    # every active fine Seb has an active coarse parent (the partial order)
    for g in range(4):
        parents = kb.parent[g, :12]
        assert ((parents >= 0) & (parents < 3)).all() and kb.coarse.active[g, parents].all()
    # eq. 3: a fine Seb's importance is the mean importance of the patches it holds
    slices = np.concatenate([feature_slices(f, 4) for f in maps], axis=1)
    flat_imp = np.concatenate([i.reshape(-1) for i in imps])
    index, _ = kb.fine.nearest(slices)
    for slot in range(12):
        members = index[0] == slot
        if members.any():
            assert kb.fine.importance[0, slot] == pytest.approx(flat_imp[members].mean(), abs=1e-5)
    # eq. 4: a coarse Seb's importance is the mean of its fine Sebs'
    for c in range(3):
        kids = kb.parent[0, :12] == c
        assert kb.coarse.importance[0, c] == pytest.approx(kb.fine.importance[0, :12][kids].mean(), abs=1e-5)
    # the data sit at 12 centres per slice with noise 0.05: the fine level represents them tightly
    assert kb.distortion(maps[0]) < 0.5
    assert kb.distortion_threshold == pytest.approx(np.quantile([kb.distortion(m) for m in maps], 0.9))


def test_quantize_lookup_round_trip_fine_and_coarse():
    rng = np.random.default_rng(2)
    maps, imps, _ = _features(rng)
    kb = KnowledgeBase.build(maps, imps, groups=4, fine_sebs=12, coarse_sebs=3)
    fine_regions = np.array([[True, False, True], [False, False, True]])
    fi, ci = kb.quantize(maps[0], fine_regions)
    assert fi.shape == (4, 4, 6) and ci.shape == (4, 2, 3)
    feats = kb.features_of(fi, ci, fine_regions)
    # fine regions: each patch its own nearest Sebs; coarse regions: one vector on all four patches
    assert np.abs(feats[:, 0:2, 0:2] - maps[0][:, 0:2, 0:2]).max() < 0.5
    block = feats[:, 0:2, 2:4]
    assert (block == block[:, :1, :1]).all()
    assert np.array_equal(kb.quantize_features(maps[0], fine_regions), feats)


def test_save_load_identical(tmp_path):
    rng = np.random.default_rng(3)
    maps, imps, _ = _features(rng)
    kb = KnowledgeBase.build(maps, imps, groups=4, fine_sebs=10, coarse_sebs=4)
    kb.save(tmp_path / "kb.safetensors")
    assert (tmp_path / "kb.json").is_file()
    back = KnowledgeBase.load(tmp_path / "kb.safetensors")
    for a, b in ((kb.fine, back.fine), (kb.coarse, back.coarse)):
        assert np.array_equal(a.sebs, b.sebs) and np.array_equal(a.active, b.active)
    assert np.array_equal(kb.parent, back.parent) and back.version == kb.version
    with pytest.raises(KbError, match="not a knowledge base"):
        (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 40)
        KnowledgeBase.load(tmp_path / "bad.safetensors")
    with pytest.raises(KbError, match="no knowledge base"):
        KnowledgeBase.load(tmp_path / "missing.safetensors")


def test_index_checks_name_the_problem():
    rng = np.random.default_rng(4)
    maps, imps, _ = _features(rng)
    kb = KnowledgeBase.build(maps, imps, groups=4, fine_sebs=10, coarse_sebs=4)
    kb.check_indices(FINE, np.zeros((4, 3), np.int64))
    with pytest.raises(KbError, match="fine Seb 200 of slice 1 is not in KB version 1"):
        kb.check_indices(FINE, np.array([[0], [200], [0], [0]]))
    with pytest.raises(KbError, match="outside the KB's 64 slots"):
        kb.check_indices(COARSE, np.array([[70], [0], [0], [0]]))
