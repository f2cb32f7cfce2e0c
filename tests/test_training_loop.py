"""The step-loop pieces the trainers share."""

import math

import pytest
import torch

from netsem.training import StatWindow, adam_step, cosine_lr


def test_cosine_schedule_ends_and_middle():
    assert cosine_lr(0, 100, 1e-3, 1e-5) == pytest.approx(1e-3)
    assert cosine_lr(50, 100, 1e-3, 1e-5) == pytest.approx((1e-3 + 1e-5) / 2)
    assert cosine_lr(100, 100, 1e-3, 1e-5) == cosine_lr(500, 100, 1e-3, 1e-5) == pytest.approx(1e-5)


def test_adam_step_sets_the_rate_and_moves_the_weights():
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([w], lr=1.0)
    adam_step(opt, (w ** 2).sum(), 0.1)
    assert opt.param_groups[0]["lr"] == 0.1 and torch.allclose(w.detach(), torch.full((3,), 0.9))


def test_window_reports_means_and_starts_again():
    window = StatWindow()
    window.add({"mse": 0.01, "fa": 1.0})
    window.add({"mse": 0.03, "fa": 3.0})
    line = window.line(7, 0.5)
    assert line.startswith("step 7 mse 0.02000 fa 2.00000") and f"psnr {10 * math.log10(50):.2f} dB, 0.500 h" in line
    window.add({"mse": 1.0})
    assert window.line(8, 1.0).startswith("step 8 mse 1.00000 psnr 0.00 dB")
