"""Flat block-fading channels, SVD precoding + water-filling, ZF / LMMSE detection (numpy).

Model per datagram (one channel draw, `block fading`): y = H x + n, H is Nr x Nt with
E|h_ij|^2 = 1, total transmit power E||x||^2 = 1, n ~ CN(0, N0 I), SNR = 1 / N0 per receive
antenna. `awgn` is H = I (Nt = Nr); `rayleigh` has h_ij ~ CN(0, 1); `rician K` is
sqrt(K/(K+1)) * 1 (all-ones line-of-sight matrix) + sqrt(1/(K+1)) * CN(0, 1).
Imperfect CSI: both ends know only H_est = H + E, E_ij ~ CN(0, csi_error); the detector then
treats the error as extra noise (N0 + csi_error * P).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def draw_channel(rng: np.random.Generator, nr: int, nt: int, channel: str, k_factor: float = 0.0,
                 size: int | None = None) -> np.ndarray:
    shape = (nr, nt) if size is None else (size, nr, nt)
    if channel == "awgn":
        return np.broadcast_to(np.eye(nr, nt, dtype=complex), shape).copy()
    nlos = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)
    if channel == "rayleigh":
        return nlos
    if channel == "rician":
        k = k_factor
        return np.sqrt(k / (k + 1)) * np.ones(shape) + np.sqrt(1 / (k + 1)) * nlos
    raise ValueError(f"unknown channel {channel!r}")


def waterfill(gains: np.ndarray, total_power: float = 1.0) -> np.ndarray:
    """Powers p_i = (mu - 1/g_i)^+ with sum p_i = total_power, for mode gains g_i = lambda_i / N0."""
    g = np.asarray(gains, dtype=float)
    order = np.argsort(-g)
    gs = g[order]
    powers = np.zeros_like(g)
    for active in range(len(gs), 0, -1):
        inv = 1.0 / np.maximum(gs[:active], 1e-300)
        mu = (total_power + inv.sum()) / active
        if mu - inv[-1] > 0:
            p = mu - inv
            powers[order[:active]] = p
            break
    return powers


@dataclass
class Transmission:
    """What the receiver has after detection, per symbol: unbiased estimate and its noise variance."""

    estimates: np.ndarray  # complex, one per sent symbol
    noise_var: np.ndarray  # effective noise (+ interference) variance per symbol
    channel_uses: int  # time slots used (symbols per antenna)
    streams: int  # spatial streams carrying data
    sinr_db: np.ndarray  # mean post-detection SINR per stream


def precoder(h_est: np.ndarray, n0: float, *, kind: str, power: str) -> np.ndarray:
    """Nt x S precoding matrix F (power included: trace(F F^H) = 1)."""
    nr, nt = h_est.shape
    if kind == "none":
        return np.eye(nt, dtype=complex) / np.sqrt(nt)
    _, sv, vh = np.linalg.svd(h_est)
    s = min(nr, nt)
    lam = sv[:s] ** 2
    p = waterfill(lam / n0) if power == "waterfill" else np.full(s, 1.0 / s)
    active = p > 0
    return vh.conj().T[:, :s][:, active] * np.sqrt(p[active])[None, :]


def apply(matrix: np.ndarray, x: np.ndarray) -> np.ndarray:
    """matrix [A, B] @ x [B, L] for a small matrix and long rows, as B elementwise passes.

    OpenBLAS takes milliseconds for some of these shapes (a 1 x 2 by 2 x L complex product
    measured 12 ms on a busy machine, against ~20 us this way).
    """
    out = matrix[:, :1] * x[0]
    for j in range(1, matrix.shape[1]):
        out += matrix[:, j:j + 1] * x[j]
    return out


def detector_weights(g_est: np.ndarray, n_eff: float, detector: str) -> tuple[np.ndarray, np.ndarray]:
    """Linear detector for the effective channel G = H F [Nr, S]: (W [S, Nr] giving unbiased
    estimates W y, per-stream effective noise variance [S])."""
    s = g_est.shape[1]
    if detector == "zf":
        w = np.linalg.pinv(g_est)
        return w, n_eff * np.sum(np.abs(w) ** 2, axis=1)
    gh = g_est.conj().T
    w = np.linalg.solve(gh @ g_est + n_eff * np.eye(s), gh)
    mu = np.clip(np.real(np.einsum("ij,ji->i", w, g_est)), 1e-12, 1 - 1e-12)
    return w / mu[:, None], (1 - mu) / mu


def detect(y: np.ndarray, g_est: np.ndarray, n_eff: float, detector: str) -> tuple[np.ndarray, np.ndarray]:
    """Linear detection of S streams from y [Nr, L] given the effective channel G = H F [Nr, S].

    Returns unbiased estimates [S, L] and per-stream effective noise variance [S].
    """
    w, var = detector_weights(g_est, n_eff, detector)
    return apply(w, y), var


def transmit(rng: np.random.Generator, symbols: np.ndarray, h: np.ndarray, *, n0: float, precoder_kind: str,
             power: str, detector: str, csi_error: float) -> Transmission:
    """Send unit-energy `symbols` over the channel h [Nr, Nt] (drawn by the caller)."""
    nr = h.shape[0]
    if csi_error > 0:
        e = (rng.standard_normal(h.shape) + 1j * rng.standard_normal(h.shape)) * np.sqrt(csi_error / 2)
        h_est = h + e
    else:
        h_est = h
    f = precoder(h_est, n0, kind=precoder_kind, power=power)
    streams = f.shape[1]
    n = symbols.size
    slots = -(-n // streams)
    padded = np.zeros(slots * streams, dtype=complex)
    padded[:n] = symbols
    s = np.ascontiguousarray(padded.reshape(slots, streams).T)  # symbol i -> stream i % S, slot i // S
    noise = rng.standard_normal((2, nr, slots))
    y = apply(h @ f, s)
    y += (noise[0] + 1j * noise[1]) * np.sqrt(n0 / 2)
    n_eff = n0 + csi_error * float(np.real(np.trace(f @ f.conj().T)))
    est, var = detect(y, h_est @ f, n_eff, detector)
    estimates = est.T.reshape(-1)[:n]
    noise_var = np.broadcast_to(var[None, :], (slots, streams)).reshape(-1)[:n]
    return Transmission(estimates, noise_var, slots, streams, 10 * np.log10(1 / np.maximum(var, 1e-12)))
