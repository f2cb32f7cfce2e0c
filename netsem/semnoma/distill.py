"""Seed 004's two distillation losses: the OMA teacher guides the NOMA student.

Both compare, per user and image, the student's decoding of the superposed signal with the
teacher's decoding of the same user's interference-free signal (same channel gain and noise
draw; `scheme.oma`), at the output of the decoder's trunk (the 96-channel map at H/4 x W/4).

Feature affinity (FA): A(F) is the (hw x hw) matrix of cosine similarities between the
feature vectors at every pair of positions of a map F (C x h x w). The loss is the mean
squared difference mean((A(F_student) - A(F_teacher))^2): the student is asked to relate its
positions the way the teacher does, not to copy its numbers (the two live in different bases
once trained apart).

Cross-head prediction (CH): the student's trunk features go through the teacher's frozen head
(with the teacher's context, interference-free); the loss is the mean squared difference
between that image and the teacher's own output: the student's features must mean to the
teacher's head what the teacher's features mean — the distilled signal reaches the student's
trunk through a head that knows no interference. The teacher's weights never move.

Student loss = MSE(student image, image) + lambda_FA FA + lambda_CH CH (defaults 0.1 and 0.5:
at the start of stage 2 the FA term is then ~20 % of the MSE and the CH term ~40 %; with
lambda_FA = 1 the affinity term was twice the MSE, measured on the first 200 steps).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from netsem.semnoma.model import SemNomaJscc

LAMBDA_FA = 0.1
LAMBDA_CH = 0.5


def affinity(features: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) -> (N, hw, hw) cosine similarities between positions."""
    v = F.normalize(features.flatten(2), dim=1)
    return v.transpose(1, 2) @ v


def feature_affinity_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    return (affinity(student.flatten(0, 1)) - affinity(teacher.flatten(0, 1))).pow(2).mean()


def cross_head_loss(teacher: SemNomaJscc, student_features: torch.Tensor, teacher_context: torch.Tensor,
                    teacher_images: torch.Tensor) -> torch.Tensor:
    """student_features (B, K, C, h, w), teacher_context (B, K, 3), teacher_images (B, K, 3, H, W)."""
    out = teacher.head(student_features.flatten(0, 1), teacher_context.flatten(0, 1))
    return (out - teacher_images.flatten(0, 1)).pow(2).mean()
