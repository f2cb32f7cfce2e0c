"""Sweeps on Dask: the same grid gives the same file on a LocalCluster of 2 workers and on an
existing cluster of 1 reached by its address, the sweep says what share of datagrams its runs lost
at each configured loss, an interrupted sweep (stopped by a run budget, its last line torn as by a
kill) goes on without running again what it finished, and runs at a rate target, whose choice is a
task of its own, send what `simulate --bpp` sends."""

import csv

import pytest
from click.testing import CliRunner
from distributed import LocalCluster
from PIL import Image
from skimage import data

from netsem.pipeline import DEFAULT_CODEC
from netsem.pipeline.cli import sweep
from netsem.pipeline.session import SessionOptions, prepare
from netsem.pipeline.sweep import BPP_MATCH, SweepGrid
from netsem.pipeline.sweep_runner import achieved_losses, run_sweep
from netsem.pipeline.sweep_tasks import matched_quality
from packetizers.wire import DEFAULT_MTU


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("dask") / "tiny.png"
    Image.fromarray(data.astronaut()[::16, ::16]).save(path)  # 32 x 32
    return str(path)


def grid_of(image: str) -> SweepGrid:
    # raw and jpeg matched to raw's bytes: the jpeg runs wait for the task that finds their quality
    return SweepGrid(images=(image,), codecs=("raw", "jpeg"), partitions=("channel",), interleave=(True,),
                     netem=("", "loss random 40%", "loss random 100%"), seeds=(0, 1), jpeg_match="raw")


def lines(path) -> list[str]:
    return path.read_text().splitlines()


def test_two_workers_write_the_table_one_worker_writes(tiny, tmp_path):
    grid = grid_of(tiny)
    two = run_sweep(grid, tmp_path / "two.csv", workers=2)
    # one worker of a cluster that was running already, reached by its address (--scheduler)
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
        one = run_sweep(grid, tmp_path / "one.csv", scheduler=cluster.scheduler_address)
    assert (two.ran, two.skipped, one.ran) == (12, 0, 12)
    assert two.delivered_nothing == 4  # loss random 100 %: rows that say so, not an abort
    assert lines(tmp_path / "two.csv") == lines(tmp_path / "one.csv")
    rows = list(csv.DictReader((tmp_path / "two.csv").open()))
    assert [row["delivered"] for row in rows].count("False") == 4
    assert {row["jpeg_quality"] for row in rows if row["codec"] == "jpeg"} == {"95"}
    # what the runs lost against what was configured, for each impairment with a loss model
    achieved = {loss.netem: loss for loss in achieved_losses(grid, tmp_path / "two.csv")}
    assert set(achieved) == {"loss random 40%", "loss random 100%"}
    assert (achieved["loss random 100%"].achieved, achieved["loss random 100%"].seed_range) == (100, (100, 100))
    forty = achieved["loss random 40%"]
    lost = {seed: [float(row["datagram_loss"]) for row in rows if row["netem"] == forty.netem and row["seed"] == seed]
            for seed in ("0", "1")}
    assert (forty.configured, forty.runs, forty.seeds) == (40, 4, 2)
    assert forty.achieved == pytest.approx(100 * sum(lost["0"] + lost["1"]) / 4)
    assert forty.seed_range == pytest.approx(sorted(100 * sum(seed) / 2 for seed in lost.values()))


def test_an_interrupted_sweep_goes_on_without_redoing_finished_runs(tiny, tmp_path):
    out = tmp_path / "resumed.csv"
    result = CliRunner().invoke(sweep, [tiny, "--codec", "raw,jpeg", "--jpeg-quality", "match:raw", "--loss",
                                        "0,40,100", "--seeds", "0-1", "--workers", "2", "--max-runs", "5", "--out",
                                        str(out)])
    assert result.exit_code == 0, result.output
    assert "5 runs" in result.output and "7 of 12 runs left" in result.output
    assert "loss random 100%: the runs lost 100.0 % of their datagrams (configured 100 %)" in result.output
    header, *done = lines(out)
    assert len(done) == 5
    # A kill while the fifth row was being written leaves half a line; mark the other four,
    # which must come out of the resumed sweep untouched.
    note = header.split(",").index("note")
    marked = []
    for line in done[:4]:
        cells = line.split(",")
        cells[note] = "written by the first call"
        marked.append(",".join(cells))
    out.write_text("\n".join([header, *marked, done[4][: len(done[4]) // 2]]))

    outcome = run_sweep(grid_of(tiny), out, workers=2)
    assert (outcome.skipped, outcome.ran, outcome.remaining) == (4, 8, 0)
    resumed = lines(out)
    assert len(resumed) == 13 and all(line in resumed for line in marked)
    fresh = tmp_path / "fresh.csv"
    run_sweep(grid_of(tiny), fresh, workers=2)
    unmarked = [line if line not in marked else next(d for d in done if d.split(",")[0] == line.split(",")[0])
                for line in resumed]
    assert unmarked == lines(fresh)  # the same rows, in grid order, as one uninterrupted sweep


def test_runs_at_a_rate_target_send_what_simulate_bpp_sends_with_their_seed(tmp_path):
    """On a cluster each (image, target, seed) choice is one task its runs wait for; whichever
    worker runs them, each sends what `simulate --bpp` chooses with that seed."""
    path = tmp_path / "small.png"
    Image.fromarray(data.astronaut()[::8, ::8]).save(path)  # 64 x 64
    grid = SweepGrid(images=(str(path),), codecs=("jpeg",), partitions=("channel",), interleave=(True,),
                     netem=("", "loss random 40%"), seeds=(0, 1), bpps=(2.0,), jpeg_match=BPP_MATCH)
    assert run_sweep(grid, tmp_path / "bpp.csv", workers=2).ran == 8
    rows = list(csv.DictReader((tmp_path / "bpp.csv").open()))
    for seed in (0, 1):
        chosen = prepare(SessionOptions(image=str(path), bpp=2.0, seed=seed))
        assert {(row["codec"], int(row["skip_channels"]), int(row["bytes_on_wire"]))
                for row in rows if row["seed"] == str(seed) and row["codec"] != "jpeg"} == {
            (chosen.options.codec, chosen.options.skip, sum(map(len, chosen.datagrams)))}
    # jpeg matched to seed 0's choice, which the match waited for rather than made again
    assert {int(row["jpeg_quality"]) for row in rows if row["codec"] == "jpeg"} == {
        matched_quality("jpeg", str(path), DEFAULT_CODEC, DEFAULT_MTU, bpp=2.0)}
