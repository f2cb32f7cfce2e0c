"""Seed 000's composite loss: Charbonnier reconstruction (8) + lambda x repulsion (9).

    repulsion = mean_{i != j} exp(-d_ij)                      Euclidean repulsion
              + lambda_c || mean_i g_i ||^2                   centre regularisation
              + mean_{i != j} (cos_ij - T_ij)^2,  T_ij = -1 / (G - 1)   angular repulsion

over the G common features of a batch, d_ij = ||c_i - c_j||^2. The seed gives no values for
lambda and lambda_c, nor the scale at which d_ij is measured. On the transmitted features
(unit power per complex symbol) d_ij is about 2 L_c (hundreds) and exp(-d_ij) is 0 with no
gradient, so the three terms are taken on the common features scaled to unit norm, where d_ij
lies in [0, 4] and all three push towards the same equiangular simplex (the seed's Fig. 3).
Our defaults, LAMBDA = 0.01 and LAMBDA_CENTRE = 1, keep the repulsion about a tenth of the
reconstruction loss at the start of training.
"""

from __future__ import annotations

import torch

CHARBONNIER_EPS = 1e-3
LAMBDA = 0.01
LAMBDA_CENTRE = 1.0


def charbonnier(target: torch.Tensor, output: torch.Tensor, eps: float = CHARBONNIER_EPS) -> torch.Tensor:
    return torch.sqrt((target - output).pow(2) + eps * eps).mean()


def repulsion_terms(common: torch.Tensor) -> dict[str, torch.Tensor]:
    """The three terms of (9) (centre term unweighted) for G >= 2 common features (G, L)."""
    groups = common.shape[0]
    if groups < 2:
        raise ValueError("repulsion needs at least two groups")
    g = common / common.norm(dim=1, keepdim=True).clamp_min(1e-12)
    off = ~torch.eye(groups, dtype=torch.bool, device=common.device)
    cos = g @ g.T
    d = 2.0 - 2.0 * cos  # ||g_i - g_j||^2 for unit vectors (cdist's gradient is NaN at 0)
    target = -1.0 / (groups - 1)
    return {
        "euclidean": torch.exp(-d)[off].mean(),
        "centre": g.mean(dim=0).pow(2).sum(),
        "angular": (cos - target).pow(2)[off].mean(),
    }


def repulsion(common: torch.Tensor, lambda_centre: float = LAMBDA_CENTRE) -> torch.Tensor:
    t = repulsion_terms(common)
    return t["euclidean"] + lambda_centre * t["centre"] + t["angular"]
