"""Algorithm 1: equal groups, planted clusters found, the Hungarian step optimal (brute force)."""

import itertools

import numpy as np

from netsem.multiuser.clustering import (
    balanced_groups,
    batch_order_groups,
    cosine_distances,
)


def planted(groups=10, size=5, dims=64, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(groups, dims))
    labels = np.repeat(np.arange(groups), size)
    points = centres[labels] + noise * rng.normal(size=(groups * size, dims))
    order = rng.permutation(groups * size)
    return points[order], labels[order]


def test_equal_sizes_and_every_user_once():
    points, _ = planted(seed=1, noise=2.0)  # no clear clusters: sizes must still be equal
    g = balanced_groups(points, 10, seed=3)
    assert g.shape == (10, 5)
    assert sorted(g.reshape(-1).tolist()) == list(range(50))


def test_planted_clusters_are_recovered_exactly():
    points, labels = planted(seed=2)
    for row in balanced_groups(points, 10, seed=0):
        assert len(set(labels[row].tolist())) == 1


def test_deterministic_for_a_seed():
    points, _ = planted(seed=4, noise=1.0)
    assert np.array_equal(balanced_groups(points, 10, seed=7), balanced_groups(points, 10, seed=7))


def test_assignment_is_the_cheapest_balanced_one():
    """For the centroids k-means found, no split into equal groups costs less (6 users, 2 groups:
    all 20 splits and both labelings checked)."""
    rng = np.random.default_rng(5)
    points = rng.normal(size=(6, 8))
    from scipy.cluster.vq import kmeans2

    got = balanced_groups(points, 2, seed=np.random.default_rng(9))
    centroids, _ = kmeans2(points, 2, minit="++", seed=np.random.default_rng(9))
    d = cosine_distances(points, centroids)
    def cost(rows):
        return sum(d[u, g] for g, members in enumerate(rows) for u in members)

    best = min(cost((a, tuple(set(range(6)) - set(a)))) for a in itertools.combinations(range(6), 3))
    assert abs(cost(got) - best) < 1e-12


def test_batch_order():
    assert batch_order_groups(6, 2).tolist() == [[0, 1, 2], [3, 4, 5]]
