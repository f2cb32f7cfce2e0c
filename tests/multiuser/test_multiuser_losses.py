"""Repulsion (9): zero angular and centre terms at the regular simplex, larger elsewhere;
Charbonnier (8); finite gradients even for identical features."""

import numpy as np
import torch

from netsem.multiuser.losses import charbonnier, repulsion, repulsion_terms


def simplex(groups, dims=32):
    e = torch.eye(groups, dims)
    return e - e.mean(dim=0, keepdim=True)  # centred basis vectors: equiangular, cos = -1/(G-1)


def test_simplex_is_the_target():
    t = repulsion_terms(simplex(10) * 3.0)  # the scale does not matter: features are normalised
    assert abs(t["angular"].item()) < 1e-10 and abs(t["centre"].item()) < 1e-10
    d = 2 + 2 / 9  # squared distance of unit vectors with cos -1/9
    assert abs(t["euclidean"].item() - np.exp(-d)) < 1e-6
    random = torch.randn(10, 32, generator=torch.Generator().manual_seed(0))
    assert repulsion(random).item() > repulsion(simplex(10)).item() + 0.05


def test_gradient_finite_for_collapsed_features():
    c = torch.ones(4, 16, requires_grad=True)
    repulsion(c + 1e-3 * torch.randn(4, 16, generator=torch.Generator().manual_seed(1))).backward()
    assert torch.isfinite(c.grad).all()


def test_charbonnier():
    a, b = torch.zeros(2, 3), torch.full((2, 3), 0.5)
    assert abs(charbonnier(a, b, eps=1e-3).item() - (0.25 + 1e-6) ** 0.5) < 1e-7
