"""Seed 003's Semantic Equalization: switches, broadcast matrix, dynamic scale."""

from __future__ import annotations

import pytest
import torch

from netsem.codecs.layers import DynamicScale, NeighbourBroadcast, broadcast_matrix
from netsem.codecs.models import NetConfig, build_net
from netsem.codecs.registry import CNN


def kinds(net):
    return {type(m).__name__ for m in net.modules()}


@pytest.mark.parametrize("scale,bcast", [(False, False), (True, False), (False, True), (True, True)])
def test_switches_change_the_module_structure(scale, bcast):
    net = build_net(NetConfig(**{**CNN.__dict__, "sem_scale": scale, "sem_broadcast": bcast,
                                 "hidden": 16}))
    assert ("DynamicScale" in kinds(net)) == scale
    assert ("NeighbourBroadcast" in kinds(net)) == bcast


def test_dynamic_scale_parameter_count_matches_the_paper():
    c = 64
    ds = DynamicScale(8, c)
    mlp = sum(p.numel() for p in ds.mlp.parameters())
    assert mlp == 576 + 17 * c


def test_broadcast_matrix_is_sparse_k_nearest_with_weight_one_over_k():
    b = broadcast_matrix(10, 3)
    assert torch.allclose(b.sum(1), torch.ones(10))
    assert ((b > 0).sum(1) == 3).all()
    assert torch.allclose(b[b > 0], torch.full(((b > 0).sum().item(),), 1 / 3))
    assert b[0, 0] > 0 and b[0, 1] > 0 and b[0, 9] > 0 and b[0, 5] == 0
    nb = NeighbourBroadcast(10, 3)
    assert not list(nb.parameters())  # fixed, not learned
    z = torch.randn(2, 10, 3, 4)
    assert torch.allclose(nb(z)[:, 0], (z[:, 9] + z[:, 0] + z[:, 1]) / 3, atol=1e-6)


def test_dynamic_scale_output_is_bounded_and_gains_average_to_the_gain():
    torch.manual_seed(0)
    ds = DynamicScale(8, 16)
    g = ds.gamma()
    assert torch.allclose(g.mean(), ds.log_gain.exp(), rtol=1e-5)
    out = ds(torch.randn(2, 8, 5, 5) * 100)
    assert out.abs().max() <= 1.0
    # rescaling a channel's weights changes nothing: rows are normalised
    with torch.no_grad():
        before = ds(torch.ones(1, 8, 1, 1))
        ds.weight[3] *= 10
        ds.bias[3] *= 10
        after = ds(torch.ones(1, 8, 1, 1))
    assert torch.allclose(before, after, atol=1e-5)
