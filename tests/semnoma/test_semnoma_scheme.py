"""SIC through the model: users land where they belong; distillation losses' definitions."""

import torch

from netsem.semnoma.channel import Uplink
from netsem.semnoma.distill import affinity, cross_head_loss, feature_affinity_loss
from netsem.semnoma.model import SemNomaJscc
from netsem.semnoma.scheme import noma_sic, oma


def test_sic_output_follows_the_user_not_the_position(small_model):
    """Swapping the users (images and power shares) swaps the outputs exactly: the gather /
    scatter over SIC positions puts every image back at its user."""
    torch.manual_seed(1)
    images = torch.rand(3, 2, 3, 32, 32)
    noise = torch.Generator().manual_seed(4)
    up = Uplink.draw(torch.full((3,), 12.0), 512, "awgn", (0.7, 0.3), noise)
    swapped = Uplink(up.fading.flip(1), up.gains.flip(1), up.noise)
    with torch.no_grad():
        a = noma_sic(small_model, images, up)
        b = noma_sic(small_model, images.flip(1), swapped)
    assert torch.allclose(a.images, b.images.flip(1), atol=1e-6)
    assert a.images.shape == (3, 2, 3, 32, 32) and a.features.shape == (3, 2, 96, 8, 8)


def test_oma_ignores_the_other_user(small_model):
    images = torch.rand(2, 2, 3, 32, 32)
    up = Uplink.draw(torch.full((2,), 10.0), 512, "awgn", generator=torch.Generator().manual_seed(0))
    other = images.clone()
    other[:, 1] = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(oma(small_model, images, up).images[:, 0], oma(small_model, other, up).images[:, 0])
        assert not torch.allclose(noma_sic(small_model, images, up).images[:, 0],
                                  noma_sic(small_model, other, up).images[:, 0])


def test_symbols_have_unit_power_and_the_bandwidth_ratio(small_model):
    s = small_model.transmit(torch.rand(2, 3, 32, 32), torch.zeros(2, 3))
    assert s.shape == (2, 512)  # 1/6 of 3072 pixel values
    assert torch.allclose(s.abs().pow(2).mean(1), torch.ones(2), atol=1e-5)


def test_feature_affinity_compares_relations_not_scale():
    f = torch.randn(2, 2, 8, 4, 4)
    assert affinity(f.flatten(0, 1)).shape == (4, 16, 16)
    scaled = f * torch.rand(2, 2, 1, 4, 4) * 5 + 0  # every position rescaled: cosines unchanged
    assert feature_affinity_loss(f, scaled) < 1e-10
    assert feature_affinity_loss(f, torch.randn(2, 2, 8, 4, 4)) > 0.01


def test_cross_head_moves_the_student_only(small_model):
    teacher = SemNomaJscc()
    for p in teacher.parameters():
        p.requires_grad_(False)
    features = torch.randn(1, 2, 96, 8, 8, requires_grad=True)
    loss = cross_head_loss(teacher, features, torch.zeros(1, 2, 3), torch.rand(1, 2, 3, 32, 32))
    loss.backward()
    assert features.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
