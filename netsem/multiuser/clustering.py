"""Seed 000's Algorithm 1, balanced clustering of users by their private features.

K-means with G clusters on the private features P (N x L) gives centroids C; the cost of
putting user k in group g is the cosine distance d_kg = 1 - cos(p_k, c_g); the Hungarian
method (scipy's `linear_sum_assignment`) then assigns users so that every group gets exactly
N / G of them: each centroid is offered as N / G identical columns, making the problem a
square N x N assignment whose optimum is the seed's (11) with equal group sizes (the seed's
(11) states only that each user is in one group; "balanced" and the batches of 10 x 5 say
the sizes are equal). K-means is scipy's `kmeans2` (k-means++ start) with a seeded generator.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.optimize import linear_sum_assignment


def cosine_distances(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(N, L) and (G, L) -> (N, G) of 1 - cosine similarity."""
    p = points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)
    c = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    return 1.0 - p @ c.T


def balanced_groups(private: np.ndarray, groups: int, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Algorithm 1: (G, N / G) user indices, each row one group, ascending within a row."""
    points = np.asarray(private, dtype=np.float64)
    users = points.shape[0]
    if groups < 1 or users % groups:
        raise ValueError(f"{users} users do not split into {groups} equal groups")
    size = users // groups
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    with warnings.catch_warnings():  # an empty cluster keeps its start; the assignment still fills it
        warnings.simplefilter("ignore", UserWarning)
        centroids, _ = kmeans2(points, groups, minit="++", seed=rng)
    cost = np.repeat(cosine_distances(points, centroids), size, axis=1)  # (N, N): column j is group j // size
    rows, cols = linear_sum_assignment(cost)
    group_of = np.empty(users, dtype=np.int64)
    group_of[rows] = cols // size
    return np.stack([np.flatnonzero(group_of == g) for g in range(groups)])


def batch_order_groups(users: int, groups: int) -> np.ndarray:
    """The seed's ablation without clustering: consecutive users of the (random) batch order."""
    if groups < 1 or users % groups:
        raise ValueError(f"{users} users do not split into {groups} equal groups")
    return np.arange(users).reshape(groups, users // groups)
