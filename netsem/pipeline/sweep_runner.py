"""Runs a sweep's runs as Dask tasks: on a `LocalCluster` of worker processes here (one thread
each), or on an existing cluster (`dask scheduler` + `dask worker` on any machines) by its
address. Rows go to the results file as tasks finish; runs the file already holds are not
submitted at all.

Each task is one run (`sweep_tasks.run_task`). A classic codec (jpeg, webp, jpeg2000-tiles) matched in bytes to
another codec (or to a rate target's runs) depends on one more task per (classic codec, image, codec or
target, MTU) that finds the quality; Dask hands its result to the runs that need it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from netsem.pipeline.report import versions
from netsem.pipeline.sweep import SweepGrid, SweepTask, configured_loss, image_digest
from netsem.pipeline.sweep_results import ResultsFile, read_results


@dataclass(frozen=True)
class SweepOutcome:
    total: int  # runs in the grid
    skipped: int  # already in the results file
    ran: int  # run now
    delivered_nothing: int  # of those run now

    @property
    def remaining(self) -> int:
        return self.total - self.skipped - self.ran


@dataclass(frozen=True)
class AchievedLoss:
    """What one lossy impairment's runs lost against what it configured."""

    netem: str
    configured: float | None  # mean loss in percent; None where the model has none (the four-state one)
    achieved: float  # percent of their datagrams the runs lost
    runs: int
    seeds: int
    seed_range: tuple[float, float]  # the least and the most one seed's runs lost, percent


def achieved_losses(grid: SweepGrid, out: Path) -> list[AchievedLoss]:
    """For each impairment of `grid` with a loss model, the share of datagrams its runs in `out`
    lost. A frame is a few dozen datagrams, so one seed's loss pattern strays far from the
    configured rate (16 datagrams at 40 %: a seed loses 6 of them or 10); every codec and image
    meets the same patterns, so a sweep of few seeds measures all of them at another loss."""
    keys = set(keyed_tasks(grid))
    rows = [row for row in read_results(out) if row["key"] in keys]
    found = []
    for words, _ in grid.netem_points():
        model, configured = configured_loss(words)
        runs = [row for row in rows if row["netem"] == words and row["datagram_loss"] is not None]
        if model == "none" or not runs:
            continue
        per_seed = {}
        for row in runs:
            per_seed.setdefault(row["seed"], []).append(row["datagram_loss"])
        means = [100 * sum(lost) / len(lost) for lost in per_seed.values()]
        found.append(AchievedLoss(words, configured, 100 * sum(row["datagram_loss"] for row in runs) / len(runs),
                                  len(runs), len(per_seed), (min(means), max(means))))
    return found


@contextlib.contextmanager
def dask_client(workers: int, scheduler: str | None) -> Iterator:
    """A client of the cluster at `scheduler`, or of a LocalCluster of `workers` processes
    with one thread each, closed on leaving."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    # All on the loopback; the scheduler's HTTP server (dashboard) on any free port, not 8787,
    # which another cluster may hold.
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client


def keyed_tasks(grid: SweepGrid) -> dict[str, SweepTask]:
    """The grid's runs by key, in grid order (a run named twice is run once)."""
    found = versions()
    tasks = grid.tasks()
    digests = {image: image_digest(image) for image in dict.fromkeys(task.image for task in tasks)}
    return {task.key(digests[task.image], found): task for task in tasks}


def run_sweep(grid: SweepGrid, out: Path, *, workers: int = 2, scheduler: str | None = None,
              max_runs: int | None = None, on_progress: Callable[[int, int], None] | None = None) -> SweepOutcome:
    """Run the runs of `grid` that `out` does not hold yet (at most `max_runs` of them, in
    grid order), appending each row as it comes; `on_progress(done, total)` after each."""
    from distributed import as_completed

    from netsem.pipeline.frames import CLASSIC_CODECS
    from netsem.pipeline.sweep_tasks import (
        bpp_choice,
        bpp_choice_key,
        match_options,
        matched_quality,
        run_task,
        session_options,
    )

    tasks = keyed_tasks(grid)
    results = ResultsFile(out, list(versions()))
    pending = [(key, task) for key, task in tasks.items() if key not in results.done]
    chosen = pending if max_runs is None else pending[:max_runs]
    skipped = len(tasks) - len(pending)
    report = on_progress or (lambda done, total: None)
    report(skipped, len(tasks))
    ran = nothing = 0
    try:
        if chosen:
            with dask_client(workers, scheduler) as client:
                qualities, choices = {}, {}

                def choice_of(options, name: str):
                    """A `--bpp` choice as a task of its own, one per `bpp_choice_key`: every run of it
                    (and the classic codecs matched to seed 0's) waits for it, none makes it again."""
                    same = bpp_choice_key(options)
                    if same not in choices:
                        choices[same] = client.submit(bpp_choice, options, key=f"netsem-bpp-choice-{name}")
                    return choices[same]

                futures = []
                for key, task in chosen:
                    quality = None if task.jpeg_match or not task.jpeg else int(task.jpeg)
                    if task.jpeg_match:
                        match = (task.codec, task.image, task.jpeg_match, task.mtu, task.refine, task.skip, task.bpp,
                                 task.expected_loss_percent)
                        if match not in qualities:
                            choice = None if task.bpp is None else choice_of(match_options(*match[1:]), f"match-{key}")
                            qualities[match] = client.submit(matched_quality, *match, choice,
                                                             key=f"netsem-quality-match-{key}")
                        quality = qualities[match]
                    choice = None
                    if task.bpp is not None and task.codec not in CLASSIC_CODECS:
                        choice = choice_of(session_options(task, None), key)
                    futures.append(client.submit(run_task, task, key, quality, choice, key=f"netsem-run-{key}"))
                for future in as_completed(futures):
                    row = future.result()
                    future.release()
                    results.append(row)
                    ran += 1
                    nothing += not row["delivered"]
                    report(skipped + ran, len(tasks))
    finally:
        results.close(order=list(tasks))
    return SweepOutcome(total=len(tasks), skipped=skipped, ran=ran, delivered_nothing=nothing)
