"""Layered normalized min-sum decoding of quasi-cyclic LDPC codes, vectorised over codewords.

A layer is one block of Z rows of a lifted parity-check matrix (Z = the lifting size): each
row of the block meets every column block it touches through one circulant permutation, so
the rows of a layer share their degree and never share a variable. That is what lets numpy
update a whole layer of many codewords with a handful of array operations:

    q   = P[cols] - R           variable-to-check messages     [B, d, Z]
    R'  = alpha * sign * min    check-to-variable (normalized min-sum, exact min / second min)
    P[cols] = q + R'            posterior LLRs, used at once by the next layer

The serial-over-layers schedule converges in about half the iterations of flooding belief
propagation, which is why min-sum's cheaper check update does not cost BLER with the same
iteration budget (checked against the `ldpc` package's flooding product-sum decoder on the same
LLRs in tests/phy/test_phy_decoders.py). Per layer the work is a fixed dozen passes over
[d, Z, B] float32 arrays, in place where numpy allows: the gather uses mode="clip" (with
mode="raise" numpy buffers `out`, which cost more than the update), and the extrinsic magnitude
and sign are selected with bit operations rather than a comparison mask (see `_update`).

`decode` runs the compiled form of this algorithm (`layered_kernel`, numba: the same float32
operations codeword by codeword, 5x faster) where numba is installed; the numpy form stays as
the reference it is tested against, decision for decision.

Every codeword is decoded independently of the others in its batch (elementwise arithmetic,
reductions only along a codeword's own edges), so a codeword's result does not depend on the
batch it travels in. A codeword leaves the batch after the first iteration whose hard
decisions satisfy every check (early stop) and otherwise after `max_iter` iterations.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

try:
    from netsem.phy.layered_kernel import decode_batch
except ImportError:  # no numba wheel for this platform: the numpy decoder, same results, ~8x slower
    decode_batch = None

KNOWN_LLR = 1e4  # LLR of a bit the receiver knows to be 0: no message can outweigh it
# Give up on a codeword whose number of unsatisfied checks has not fallen over STALL_WINDOW
# iterations, from iteration STALL_FROM on: the stall of a block far below the threshold, which
# would otherwise spend all the iterations (a quarter of the work at 6 dB on 2x2 Rayleigh).
# Measured: on the 2x2 Rayleigh chain (1400 codewords of 4812 bits, 3 to 10 dB) no codeword that
# would have converged within 20 iterations was stopped; on AWGN at the waterfall a few are (BLER
# 0.120 -> 0.125 for k=4812 at 1.1 dB, 0.117 -> 0.142 for k=1024 at 1.25 dB), still below `bp`'s
# (tests/phy/test_phy_decoders.py). Tighter rules (window 2, or from iteration 4) lost codewords.
STALL_WINDOW = 3
STALL_FROM = 6
_SIGN_BIT = np.int32(-(2**31))
_SMALL_BATCH = 8
# Dropping finished columns copies every message (a strided gather costing about a quarter of an
# iteration at full width), so it waits until 1/_COMPACT_FRACTION of the columns are finished.
_COMPACT_FRACTION = 8


@dataclass(frozen=True)
class _Layer:
    cols: np.ndarray  # [d * rows] variable index per edge, degree-major: edge t of row r at t * rows + r
    degree: int
    rows: int
    offset: int  # where this layer's messages start in the flat [B, edges] message array


class LayeredMinSum:
    """Decoder for one parity-check matrix; `decode` takes LLRs log P(0)/P(1) per column."""

    def __init__(self, pcm: sp.spmatrix, lifting: int, *, max_iter: int = 20, alpha: float = 0.75,
                 known_zero: np.ndarray | None = None) -> None:
        pcm = sp.csr_matrix(pcm, dtype=np.uint8)
        pcm.sort_indices()
        self.columns = pcm.shape[1]
        self.max_iter, self.alpha = max_iter, np.float32(alpha)
        self.known_zero = np.asarray(known_zero if known_zero is not None else [], dtype=np.intp)
        degrees = np.diff(pcm.indptr)
        layers, offset = [], 0
        for start in range(0, pcm.shape[0], lifting):
            stop = min(start + lifting, pcm.shape[0])
            d = int(degrees[start])
            if np.any(degrees[start:stop] != d):
                raise ValueError(f"rows {start}..{stop - 1} are not one lifted layer (unequal degrees)")
            cols = pcm.indices[pcm.indptr[start]:pcm.indptr[stop]].reshape(stop - start, d)
            if any(np.unique(c).size != c.size for c in cols.T):
                raise ValueError(f"rows {start}..{stop - 1} share a variable: not a circulant layer")
            layers.append(_Layer(np.ascontiguousarray(cols.T).reshape(-1), d, stop - start, offset))
            offset += d * (stop - start)
        self.layers = layers
        self.edges = offset
        # the layers as flat arrays for the compiled kernel, and each edge block as a circulant
        # (its first column block and shift) where it is one
        self._cols = np.concatenate([layer.cols for layer in layers]).astype(np.int64)
        self._starts = np.array([layer.offset for layer in layers], dtype=np.int64)
        self._degrees = np.array([layer.degree for layer in layers], dtype=np.int64)
        self._rows = np.array([layer.rows for layer in layers], dtype=np.int64)
        self._block_base, self._block_shift = _circulants(layers, lifting)
        self.widest = max(layer.degree * layer.rows for layer in layers)
        self._flat: dict[tuple[int, int], np.ndarray] = {}

    def decode(self, llr: np.ndarray, groups: np.ndarray | None = None,
               compiled: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """LLRs [columns, B], one codeword per column, log P(0)/P(1) (known-zero rows are set here)
        -> (hard decisions [columns, B] uint8, converged [B] bool, iterations used [B] int).

        `groups` [B]: codewords with equal values (the codewords of one transport block) stop
        together once one of them fails, unconverged.  `compiled`: through the numba kernel
        (`layered_kernel`) where numba is installed; False runs the numpy decoder, which gives
        the same results.
        """
        if compiled and decode_batch is not None:
            return self._decode_compiled(llr, groups)
        batch = llr.shape[1]
        groups = np.arange(batch) if groups is None else np.asarray(groups)
        # codewords along the last axis: a layer's gather and scatter then move whole rows
        posterior = np.array(llr, dtype=np.float32, order="C")
        posterior += 0.0  # no -0.0 from the caller: signs are read from the sign bit
        posterior[self.known_zero] = KNOWN_LLR
        hard_out = np.zeros((self.columns, batch), dtype=np.uint8)
        converged = np.zeros(batch, dtype=bool)
        iterations = np.zeros(batch, dtype=np.int64)
        # messages live in one of two buffers: dropping columns gathers into the other, so no
        # step allocates (fresh pages of a large array cost as much as the copy)
        buffers = [np.zeros(self.edges * batch, dtype=np.float32), np.empty(self.edges * batch, dtype=np.float32)]
        messages = buffers[0].reshape(self.edges, batch)
        work = _Work(self.widest * batch)
        active = np.arange(batch)  # the codeword in each column of the working arrays
        live = np.ones(batch, dtype=bool)  # columns still decoding; finished ones wait to be dropped
        history = np.full((STALL_WINDOW, batch), np.iinfo(np.int64).max)  # syndrome weights, a ring
        for iteration in range(1, self.max_iter + 1):
            for layer in self.layers:
                self._update(layer, posterior, messages, work)
            hard = np.signbit(posterior).view(np.uint8)
            weight = self.syndrome_weight(hard)
            satisfied = weight == 0
            slot = iteration % STALL_WINDOW
            stalled = weight >= history[slot] if iteration >= STALL_FROM else np.zeros(active.size, dtype=bool)
            failed = live & ~satisfied & (stalled | (iteration == self.max_iter))
            done = live & (satisfied | failed)
            if failed.any():
                done |= live & np.isin(groups[active], groups[active[failed]])
            history[slot] = weight
            if not done.any():
                continue
            finished = active[done]
            hard_out[:, finished] = hard[:, done]
            converged[finished] = satisfied[done]
            iterations[finished] = iteration
            live &= ~done
            if not live.any():
                break
            if _COMPACT_FRACTION * np.count_nonzero(~live) >= live.size:
                keep = np.flatnonzero(live)
                active, live = active[keep], live[keep]
                posterior = posterior.take(keep, axis=1)
                buffers.reverse()
                messages = np.take(messages, keep, axis=1, mode="clip",
                                   out=buffers[0][:self.edges * keep.size].reshape(self.edges, keep.size))
                history = history.take(keep, axis=1)
        return hard_out, converged, iterations

    def _decode_compiled(self, llr: np.ndarray, groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        batch = llr.shape[1]
        if batch == 0:
            return np.zeros((self.columns, 0), np.uint8), np.zeros(0, bool), np.zeros(0, np.int64)
        posterior = np.array(llr.T, dtype=np.float32, order="C")  # a codeword per row
        posterior += 0.0  # no -0.0 from the caller: signs are read from the sign bit
        posterior[:, self.known_zero] = KNOWN_LLR
        dense = np.unique(np.arange(batch) if groups is None else np.asarray(groups), return_inverse=True)[1]
        dense = dense.reshape(-1).astype(np.int64)
        hard = np.zeros((batch, self.columns), dtype=np.uint8)
        converged = np.zeros(batch, dtype=bool)
        iterations = np.zeros(batch, dtype=np.int64)
        # whole transport blocks per worker thread (the kernel lets go of the GIL); a codeword's
        # result does not depend on the others, nor on which thread decodes it
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        workers = min(cores, int(dense.max()) + 1 if batch else 1)
        parts = [np.flatnonzero(dense % workers == w) for w in range(workers)]

        def run(rows: np.ndarray) -> None:
            part_hard = np.zeros((rows.size, self.columns), dtype=np.uint8)
            part_ok = np.zeros(rows.size, dtype=bool)
            part_iterations = np.zeros(rows.size, dtype=np.int64)
            decode_batch(posterior[rows], self._cols, self._starts, self._degrees, self._rows, self._block_base,
                         self._block_shift, self.alpha, self.max_iter, STALL_WINDOW, STALL_FROM, dense[rows],
                         int(dense.max()) + 1,
                         part_hard, part_ok, part_iterations)
            hard[rows], converged[rows], iterations[rows] = part_hard, part_ok, part_iterations

        if workers == 1:
            run(parts[0])
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(run, parts))
        return hard.T, converged, iterations

    def syndrome_weight(self, hard: np.ndarray) -> np.ndarray:
        """Unsatisfied checks per codeword for hard decisions [columns, B] (0/1 uint8)."""
        packed = np.packbits(hard, axis=1)  # the batch bit-packed: one byte carries 8 codewords
        parity = np.concatenate([
            np.bitwise_xor.reduce(packed.take(layer.cols, axis=0).reshape(layer.degree, layer.rows, -1), axis=0)
            for layer in self.layers])
        return np.count_nonzero(np.unpackbits(parity, axis=1, count=hard.shape[1]), axis=0)

    def _update(self, layer: _Layer, posterior: np.ndarray, messages: np.ndarray, work: _Work) -> None:
        batch = posterior.shape[1]
        d, rows = layer.degree, layer.rows
        shape, size = (d, rows, batch), d * rows * batch
        r_old = messages[layer.offset:layer.offset + d * rows].reshape(shape)
        q = work.q[:size].reshape(shape)
        flat = self._flat_index(layer, batch)
        if flat is None:
            np.take(posterior, layer.cols, axis=0, out=q.reshape(d * rows, batch), mode="clip")
        else:
            np.take(posterior.reshape(-1), flat, out=q.reshape(-1), mode="clip")
        q -= r_old
        mag = np.abs(q, out=work.mag[:size].reshape(shape))
        mag *= self.alpha
        # the two smallest magnitudes per check (a tie makes them equal), folded over the edges
        min1 = np.minimum(mag[0], mag[1], out=work.min1[:rows * batch].reshape(rows, batch))
        min2 = np.maximum(mag[0], mag[1], out=work.min2[:rows * batch].reshape(rows, batch))
        spare = work.spare[:rows * batch].reshape(rows, batch)
        for edge in mag[2:]:
            np.maximum(min1, edge, out=spare)
            np.minimum(min2, spare, out=min2)
            np.minimum(min1, edge, out=min1)
        # Extrinsic magnitude: the second minimum on the minimum's own edge, the minimum elsewhere.
        # min(|q|, min2) is min1 on the minimum's edge and min2 on every other (they are >= min2),
        # so XOR with the bits of min1 ^ min2 swaps the two exactly; no comparison mask needed.
        # Extrinsic sign: the product of the other edges' signs; the XOR of a check's words
        # carries the XOR of all their sign bits, and the edge's own sign bit cancels its share.
        words = q.view(np.int32)
        swap = np.bitwise_xor.reduce(words, axis=0, out=work.parity[:rows * batch].reshape(rows, batch))
        swap &= _SIGN_BIT
        swap ^= min1.view(np.int32)
        swap ^= min2.view(np.int32)
        np.minimum(mag, min2, out=mag)
        sign = np.bitwise_and(words, _SIGN_BIT, out=work.sign[:size].reshape(shape))
        sign ^= mag.view(np.int32)
        np.bitwise_xor(sign, swap, out=r_old.view(np.int32))
        q += r_old
        if flat is None:
            posterior[layer.cols] = q.reshape(d * rows, batch)
        else:
            posterior.reshape(-1)[flat] = q.reshape(-1)

    def _flat_index(self, layer: _Layer, batch: int) -> np.ndarray | None:
        """Indices into the flattened posterior for a small batch, where row-wise fancy
        indexing of a few values per row costs more than element-wise indexing."""
        if batch > _SMALL_BATCH:
            return None
        key = (layer.offset, batch)
        flat = self._flat.get(key)
        if flat is None:
            flat = (layer.cols[:, None] * batch + np.arange(batch)).reshape(-1)
            self._flat[key] = flat
        return flat


def _circulants(layers: list[_Layer], lifting: int) -> tuple[np.ndarray, np.ndarray]:
    """Per edge block (layer by layer, block t of a layer holds its rows' t-th edges): the
    first column of its column block and its shift, when row r reads column base + (shift + r)
    mod Z; shift -1 where the block is no such circulant (the kernel then reads its columns)."""
    bases, shifts = [], []
    for layer in layers:
        for block in layer.cols.reshape(layer.degree, layer.rows):
            base = int(block.min()) // lifting * lifting
            shift = int(block[0]) - base
            circulant = layer.rows == lifting and np.array_equal(
                block, base + (shift + np.arange(lifting)) % lifting)
            bases.append(base)
            shifts.append(shift if circulant else -1)
    return np.array(bases, dtype=np.int64), np.array(shifts, dtype=np.int64)


class _Work:
    """Scratch arrays for one decode call, sized for the widest layer (views serve the rest)."""

    def __init__(self, size: int) -> None:
        self.q = np.empty(size, dtype=np.float32)
        self.mag = np.empty(size, dtype=np.float32)
        self.sign = np.empty(size, dtype=np.int32)
        self.min1 = np.empty(size, dtype=np.float32)
        self.min2 = np.empty(size, dtype=np.float32)
        self.spare = np.empty(size, dtype=np.float32)
        self.parity = np.empty(size, dtype=np.int32)
