"""Small torch building blocks: GDN, seed 003's Semantic Equalization, windowed attention.

compressai is not installable here (FACTS.md), so GDN is written out (Ballé et al. 2016).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import cnn_numpy
from .window_impute import WindowPlan


class GDN(nn.Module):
    """Generalized divisive normalization: y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2).

    ``inverse=True`` multiplies instead (IGDN, for the decoder).  Parameters are kept
    non-negative by squaring a free parameter (with a small floor on beta).  Always runs in
    fp32, also under autocast, since x^2 sums lose too much precision in bf16.
    """

    def __init__(self, channels: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.ones(channels))
        self.gamma = nn.Parameter(math.sqrt(0.1) * torch.eye(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.float()
            beta = self.beta.float() ** 2 + 1e-6
            gamma = (self.gamma.float() ** 2)[:, :, None, None]
            norm = F.conv2d(x * x, gamma, beta)
            y = x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)
        return y.to(dtype)


class DynamicScale(nn.Module):
    """Seed 003 §IV-B: z_i = tanh(gamma_i * W~_i f / ||W~_i||_2).

    W~ = [W, b] is a 1x1 projection whose rows (weights with bias) are normalised to unit
    length; gamma = Gamma(condition) comes from a 4-layer MLP with widths (1, 16, 16, 16, c)
    (576 + 17c parameters), normalised so that the c scales average ``gain`` (a learned
    positive scalar): no channel can take a larger share by growing its own weights.
    """

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels, in_channels) / math.sqrt(in_channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.mlp = nn.Sequential(
            nn.Linear(1, 16), nn.ReLU(),
            nn.Linear(16, 16), nn.ReLU(),
            nn.Linear(16, 16), nn.ReLU(),
            nn.Linear(16, channels),
        )
        self.log_gain = nn.Parameter(torch.tensor(math.log(2.0)))

    def gamma(self, condition: float = 1.0) -> torch.Tensor:
        cond = torch.full((1, 1), float(condition), device=self.weight.device)
        logits = self.mlp(cond)[0]
        share = torch.softmax(logits, dim=0) * logits.numel()  # mean 1
        return self.log_gain.exp() * share

    def forward(self, f: torch.Tensor, condition: float = 1.0) -> torch.Tensor:
        w_aug = torch.cat([self.weight, self.bias[:, None]], dim=1)
        w_aug = w_aug / w_aug.norm(dim=1, keepdim=True).clamp_min(1e-8)
        w_aug = w_aug * self.gamma(condition)[:, None]
        w, b = w_aug[:, :-1], w_aug[:, -1]
        z = F.conv2d(f, w[:, :, None, None].to(f.dtype), b.to(f.dtype))
        return torch.tanh(z)


def broadcast_matrix(channels: int, k: int) -> torch.Tensor:
    """Seed 003 §IV-C: B~_ij = 1/K for j among the K nearest neighbours of i (on a ring), else 0
    (`cnn_numpy.broadcast_matrix`, which the numpy engine uses too)."""
    return torch.from_numpy(cnn_numpy.broadcast_matrix(channels, k))


class NeighbourBroadcast(nn.Module):
    """Z~ = B~ Z applied at every spatial position; B~ is fixed (a buffer, not learned)."""

    def __init__(self, channels: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.register_buffer("matrix", broadcast_matrix(channels, k), persistent=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ij,bjhw->bihw", self.matrix.to(z.dtype), z)


class Imputer(nn.Module):
    """Receiver-side linear MMSE estimate of lost latent elements from the received ones.

    With a (learned) channel covariance S = L L^T + eps I and, at one position, the set R of
    channels received there, a lost channel l is replaced by S_lR S_RR^-1 z_R (received
    elements pass through unchanged; a position that lost every channel stays zero).  This is
    how a receiver exploits the redundancy that Neighbouring Semantic Broadcast puts between
    ring neighbours; the mask is always known at the receiver.  Positions are grouped by their
    received-channel pattern, so each distinct pattern costs one C x C solve (a channel loss:
    one per image; a datagram carrying half a channel: two).  Runs in fp32.
    """

    def __init__(self, channels: int, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps
        self.l = nn.Parameter(torch.eye(channels))

    def covariance(self) -> torch.Tensor:
        l = self.l.float()
        return l @ l.T + self.eps * torch.eye(l.shape[0], device=l.device)

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        dtype = z.dtype
        with torch.autocast(device_type=z.device.type, enabled=False):
            b, c, h, w = z.shape
            zp = z.float().permute(0, 2, 3, 1).reshape(-1, c)  # (positions, C)
            mp = (mask.permute(0, 2, 3, 1).reshape(-1, c) > 0.5).float()
            pats, inv = torch.unique(mp, dim=0, return_inverse=True)
            s = self.covariance()
            # blockdiag(S_RR, I) up to order: the lost channels' rows and columns are unit
            a = s[None] * pats[:, :, None] * pats[:, None, :] + torch.diag_embed(1.0 - pats)
            # est = S A^-1 (received values, zero elsewhere); A^-1 keeps the zeros
            gain = s[None] @ torch.linalg.inv(a)  # (patterns, C, C)
            rhs = zp * mp
            est = torch.empty_like(zp)
            for k in range(len(pats)):
                sel = (inv == k).nonzero().squeeze(1)
                est[sel] = rhs[sel] @ gain[k].T
            out = torch.where(mp > 0.5, zp, est)
            out = out.view(b, h, w, c).permute(0, 3, 1, 2)
        return out.to(dtype).contiguous(memory_format=_format_of(z))


class WindowImputer(nn.Module):
    """`window_impute.impute` in torch, on (B, C, h, w): each lost element estimated from the
    elements received in the window around it.  The plan (groups and gains) comes from the mask
    alone, in numpy; the estimate is linear in the received values, so gradients reach them
    (refinement decodes through it).  Replaces `Imputer` at inference when the codec ships
    window moments; never trained."""

    def __init__(self, plan: WindowPlan) -> None:
        super().__init__()
        self.plan = plan

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        dtype = z.dtype
        b, c, h, w = z.shape
        r = self.plan.moments.window // 2
        out = []
        for i in range(b):
            received = mask[i].permute(1, 2, 0) > 0.5  # (h, w, C)
            zi = torch.where(received, z[i].permute(1, 2, 0).float(), 0.0)
            groups = self.plan.groups(received.cpu().numpy())
            flat = zi.reshape(-1, c)
            if groups:
                padded = F.pad(zi.permute(2, 0, 1), (r, r, r, r)).permute(1, 2, 0)
                flat = flat.clone()
                for g in groups:
                    ys, xs = (torch.from_numpy(a) for a in np.divmod(g.positions, w))
                    f = torch.cat([padded[ys + r + dy, xs + r + dx] for dy, dx in self.plan.offsets], 1)
                    est = f[:, torch.from_numpy(g.received)] @ torch.from_numpy(g.gain).to(f)
                    rows = torch.from_numpy(g.positions)[:, None]
                    flat = flat.index_put((rows, torch.from_numpy(g.lost)[None, :]), est)
            out.append(flat.view(h, w, c).permute(2, 0, 1))
        return torch.stack(out).to(dtype).contiguous(memory_format=_format_of(z))


def _format_of(x: torch.Tensor) -> torch.memory_format:
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


class WindowBlock(nn.Module):
    """A Swin-style block on (B, H, W, C): windowed multi-head self-attention, then an MLP.

    Odd blocks shift the windows by half a window with torch.roll (the wrapped border is not
    masked: a simplification of Swin's shifted-window mask).  Grids that are not a multiple
    of the window are zero-padded inside the block and cropped back.
    """

    def __init__(self, dim: int, heads: int, window: int, shift: bool, mlp_ratio: float = 2.0):
        super().__init__()
        self.heads, self.window, self.shift = heads, window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        ws = self.window
        s = ws // 2 if self.shift else 0
        if s:
            x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))
        ph, pw = (-h) % ws, (-w) % ws
        if ph or pw:
            x = F.pad(x, (0, 0, 0, pw, 0, ph))
        hp, wp = h + ph, w + pw
        win = x.view(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
        win = win.reshape(-1, ws * ws, c)
        qkv = self.qkv(win).view(win.shape[0], ws * ws, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(-1, ws * ws, c)
        out = self.proj(out)
        out = out.view(b, hp // ws, wp // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
        out = out.reshape(b, hp, wp, c)[:, :h, :w]
        if s:
            out = torch.roll(out, shifts=(s, s), dims=(1, 2))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._attend(self.norm1(x))
        return x + self.mlp(self.norm2(x))
