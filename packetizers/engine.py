"""Which engine packs and unpacks frames: numpy (the default) or numba-compiled kernels.

Both give the same bytes and values (tests/packetizers/test_kernels.py). The compiled kernels
(`packetizers.kernels`) pack a frame in one pass instead of a gather and a dozen whole-array
steps, and unpack a received frame straight into place instead of joining its pieces in
Python: about twice the packetize + reassemble throughput (tools/bench_packetizer.py).  But
importing numba and loading the cached kernels costs a process ~0.3 s, more than a cold
`netsem send` can spare (issue #20), so only processes that live long enough to repay it
switch them on: `netsem recv`, the sweep workers, the benchmarks.
"""

from __future__ import annotations

from types import ModuleType

compiled: ModuleType | None = None  # packetizers.kernels once switched on


def use_compiled(enabled: bool = True) -> bool:
    """Switch the compiled kernels on (compiling them on a fresh install, once, cached beside
    the module) or off; whether they are on. Without numba the numpy engine stays."""
    global compiled
    if not enabled:
        compiled = None
        return False
    try:
        from packetizers import kernels
    except ImportError:  # no numba wheel for this platform
        return False
    kernels.warm_up()
    compiled = kernels
    return True
