"""Speed-up of a sweep on 2 Dask workers against 1, on this machine, for a 64-run grid; and a
check that both write the same results file (exit 1 if not).

    .venv/bin/python tools/bench_sweep.py

The grid: cnn-sem (channel partition) on two photographs, Bernoulli loss 0/10/20/30 %, seeds
0-7. Each time is the whole `run_sweep` call, starting the LocalCluster included. Since the
cores may be shared, it first measures what two plain CPU-bound processes get together against
one (the most any 2-worker speed-up can be right now).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from netsem.pipeline.sweep import SweepGrid
from netsem.pipeline.sweep_runner import run_sweep

GRID = SweepGrid(images=("skimage:astronaut", "skimage:coffee"), codecs=("cnn-sem",), partitions=("channel",),
                 interleave=(True,), netem=("", "loss random 10%", "loss random 20%", "loss random 30%"),
                 seeds=tuple(range(8)))


BURN = "sum(range(30_000_000))"


def cpu_capacity() -> float:
    """Throughput of two CPU-bound processes side by side, relative to one alone."""
    def burn(copies: int) -> float:
        started = time.perf_counter()
        for process in [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(copies)]:
            process.wait()
        return time.perf_counter() - started

    return 2 * burn(1) / burn(2)


def timed_sweep(workers: int, out: Path) -> float:
    started = time.perf_counter()
    outcome = run_sweep(GRID, out, workers=workers)
    assert outcome.ran == len(GRID.tasks()), outcome
    return time.perf_counter() - started


def main() -> int:
    runs = len(GRID.tasks())
    print(f"{runs} runs; {os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.2f}; two CPU-bound "
          f"processes get {cpu_capacity():.2f}x the throughput of one")
    with tempfile.TemporaryDirectory() as folder:
        one, two = Path(folder) / "one.csv", Path(folder) / "two.csv"
        seconds = {workers: timed_sweep(workers, out) for workers, out in ((1, one), (2, two))}
        identical = one.read_bytes() == two.read_bytes()
    for workers, elapsed in seconds.items():
        print(f"{workers} worker{'s' * (workers > 1)}: {elapsed:6.1f} s  ({runs / elapsed:.2f} runs/s)")
    print(f"speed-up of 2 workers over 1: {seconds[1] / seconds[2]:.2f}x")
    print(f"results tables identical: {'yes' if identical else 'NO'}")
    return 0 if identical else 1


if __name__ == "__main__":  # the workers are spawned processes: they import this file without running it
    sys.exit(main())
