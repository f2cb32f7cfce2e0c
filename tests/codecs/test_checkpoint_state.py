"""The shared training checkpoint (seed 000's and seed 001's trainers): weights and Adam's state
come back exactly."""

from __future__ import annotations

import torch

from netsem.codecs.weights import load_state, restore_checkpoint_state, save_checkpoint_state


def _trained(steps: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        model(torch.ones(5, 4)).pow(2).sum().backward()
        optimizer.step()
    return model, optimizer


def test_round_trip(tmp_path):
    model, optimizer = _trained(3)
    save_checkpoint_state(tmp_path / "c.safetensors", model, optimizer, {"step": "3"})
    state, meta = load_state(tmp_path / "c.safetensors")
    assert meta == {"step": "3"}
    fresh, fresh_opt = _trained(0)
    restore_checkpoint_state(state, fresh, fresh_opt)
    for (name, a), b in zip(model.named_parameters(), fresh.parameters()):
        assert torch.equal(a, b), name
        for field in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(torch.as_tensor(optimizer.state[a][field]), torch.as_tensor(fresh_opt.state[b][field]))
