"""5G NR LDPC codes as parity-check matrices, from 3GPP TS 38.212 (no Sionna import).

Building one through Sionna's `LDPC5GEncoder` + `LDPC5GDecoder` costs ~0.15 s, and importing
Sionna ~2.8 s (it imports torch and compiles with torch.compile at import): a `netsem send
--phy` of the default codec, whose datagrams have many sizes and so many codes, spent 8 of its
11 s there (issue #20).  The construction is short: base graph by size and rate (§7.2.2), the
lifting size Z and its set i_LS (§5.2.2, Table 5.3.2-1), each base-graph entry a Z x Z
identity shifted by V mod Z (§5.3.2, shift values of Tables 5.3.2-2/-3, read from the CSV
copies that ship in the sionna package, located without importing it).  The decoder's matrix
drops the trailing punctured degree-1 columns and their checks, as Sionna's decoder does;
tests/phy/test_phy_nr_ldpc.py checks both matrices against Sionna's for many (k, n).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp

# TS 38.212 Table 5.3.2-1: the lifting sizes of each set i_LS = 0..7 (a * 2^j)
LIFTING_SETS = tuple(tuple(a << j for j in range(8) if a << j <= 384) for a in (2, 3, 5, 7, 9, 11, 13, 15))
BASE_GRAPH_SHAPE = {1: (46, 68), 2: (42, 52)}
INFORMATION_COLUMNS = {1: 22, 2: 10}


@dataclass(frozen=True)
class NrLdpcCode:
    k: int  # information bits
    n: int  # transmitted bits
    base_graph: int  # 1 or 2
    z: int  # lifting size
    i_ls: int  # lifting set
    k_ldpc: int  # information columns x Z (k plus filler bits)
    pcm: sp.csr_matrix  # the decoder's matrix: filler columns included, punctured degree-1 tail pruned


def base_graph_for(k: int, rate: float) -> int:
    """§7.2.2: base graph 2 for small blocks or low rates, else 1."""
    if k <= 292 or (k <= 3824 and rate <= 0.67) or rate <= 0.25:
        return 2
    return 1


def lifting_for(k: int, base_graph: int) -> tuple[int, int]:
    """§5.2.2: the smallest Z of Table 5.3.2-1 with K_b x Z >= k, and its set."""
    if base_graph == 1:
        k_b = 22
    else:
        k_b = 10 if k > 640 else 9 if k > 560 else 8 if k > 192 else 6
    return min((z, i_ls) for i_ls, sizes in enumerate(LIFTING_SETS) for z in sizes if k_b * z >= k)


@lru_cache(maxsize=2)
def _shift_table(base_graph: int) -> np.ndarray:
    """Rows (row, column, V for i_LS 0..7) of Table 5.3.2-2 (BG1) or -3 (BG2)."""
    spec = importlib.util.find_spec("sionna")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 5G base graph tables ship with the sionna package (sionna-no-rt): not installed")
    path = Path(spec.submodule_search_locations[0]) / "phy" / "fec" / "ldpc" / "codes" / f"5G_bg{base_graph}.csv"
    table = np.genfromtxt(path, delimiter=";")[2:]  # two title rows
    rows = table[:, 0]
    filled = np.maximum.accumulate(np.where(np.isnan(rows), -1, rows))  # a row index is given once per row
    return np.column_stack([filled, table[:, 1:10]])


@lru_cache(maxsize=64)
def lifted(base_graph: int, z: int, i_ls: int) -> sp.csr_matrix:
    """The whole lifted parity-check matrix (before rate matching)."""
    table = _shift_table(base_graph)
    rows, cols = table[:, 0].astype(np.int64), table[:, 1].astype(np.int64)
    shifts = table[:, 2 + i_ls].astype(np.int64) % z
    offsets = np.arange(z)
    r = (rows[:, None] * z + offsets).ravel()
    c = (cols[:, None] * z + (offsets + shifts[:, None]) % z).ravel()
    height, width = BASE_GRAPH_SHAPE[base_graph]
    pcm = sp.csr_matrix((np.ones(r.size, np.uint8), (r, c)), shape=(height * z, width * z))
    pcm.sort_indices()
    return pcm


def nr_ldpc_code(k: int, n: int) -> NrLdpcCode:
    """The code of k information bits sent as n bits (38.212 rate matching: the first 2Z
    systematic bits punctured, filler bits known)."""
    if not 12 <= k <= 8448 or not k / 0.95 <= n <= 316 * 384 or k / n < 0.2:
        raise ValueError(f"no 5G LDPC code for k={k}, n={n}")
    graph = base_graph_for(k, k / n)
    z, i_ls = lifting_for(k, graph)
    k_ldpc = INFORMATION_COLUMNS[graph] * z
    if graph == 1 and k / n < 1 / 3:
        raise ValueError(f"no 5G LDPC code for k={k}, n={n} (base graph 1 below rate 1/3)")
    full = lifted(graph, z, i_ls)
    n_ldpc = full.shape[1]
    # prune the tail of punctured parity columns of degree 1 (each with its one check), as far
    # as both the degrees and the puncturing allow
    degree = np.diff(full.tocsc().indptr)
    tail = n_ldpc
    while tail > 1 and degree[tail - 1] == 1:
        tail -= 1
    punctured = (n_ldpc - (k_ldpc - k)) - n - 2 * z
    keep = max(tail, n_ldpc - punctured)
    pruned = n_ldpc - keep
    pcm = full[: full.shape[0] - pruned, :keep] if pruned else full
    return NrLdpcCode(k, n, graph, z, i_ls, k_ldpc, sp.csr_matrix(pcm))
