"""Sweeps: the grid names every run once (jpeg cut at its markers, PHY specs at each SNR), a run is
a row whatever arrived, jpeg is matched in bytes on the wire, and plots put the configured
parameter on the x-axis. Runs here go through `run_task` in this process, as a worker runs
them; the Dask side is in test_pipeline_sweep_dask.py."""

import math

import pytest
from PIL import Image
from skimage import data

from netsem.phy import PhySpecError
from netsem.pipeline import DEFAULT_CODEC, DEFAULT_EXPECTED_LOSS
from netsem.pipeline.plot import choose_axis, describe, group, plot_quality
from netsem.pipeline.report import versions
from netsem.pipeline.session import EncodingCache, SessionOptions, prepare
from netsem.pipeline.sweep import (
    BPP_MATCH,
    EXPECT_CONFIGURED,
    SweepGrid,
    configured_loss,
    image_digest,
    parse_number_list,
    split_snr,
)
from netsem.pipeline.sweep_results import ResultsError, ResultsFile, read_results
from netsem.pipeline.sweep_tasks import (
    CONFIG_COLUMNS,
    OUTCOME_COLUMNS,
    bpp_choice,
    matched_quality,
    run_task,
    session_options,
    task_from_row,
    wire_bytes,
)


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("sweep") / "astronaut.png"
    Image.fromarray(data.astronaut()[::4, ::4]).save(path)  # 128 x 128
    return str(path)


def run_here(grid: SweepGrid) -> list[dict]:
    """Every run of the grid in this process, keyed as `run_sweep` keys them, a run at a rate
    target given its choice made apart as `run_sweep` does."""
    found = versions()
    rows = []
    for task in grid.tasks():
        quality = (matched_quality(task.codec, task.image, task.jpeg_match, task.mtu, task.refine, task.skip,
                                   task.bpp) if task.jpeg_match else None)
        choice = bpp_choice(session_options(task, None)) if task.bpp is not None and task.codec != "jpeg" else None
        rows.append(run_task(task, task.key(image_digest(task.image), found), quality, choice))
    return rows


def test_jpeg_runs_once_per_setting_whatever_the_latent_partitions(photo):
    grid = SweepGrid(images=(photo,), codecs=("raw", "jpeg"), partitions=("channel", "token"), interleave=(True,),
                     netem=("", "loss random 30%"), seeds=(0, 1))
    rows = run_here(grid)
    assert len(rows) == len(grid.tasks()) == (2 + 1) * 2 * 2
    assert sorted({(r["codec"], r["partition"]) for r in rows}) == [("jpeg", "segment"), ("raw", "channel"),
                                                                     ("raw", "token")]
    lossy = [r for r in rows if r["codec"] == "jpeg" and r["loss_percent"] == 30]
    assert all(r["unit_loss"] > 0 and r["delta_psnr_db"] < 0 for r in lossy)
    assert len({r["key"] for r in rows}) == len(rows)
    assert list(rows[0]) == [*CONFIG_COLUMNS, *OUTCOME_COLUMNS, *(f"version_{name}" for name in versions())]


@pytest.mark.parametrize("classic", ["jpeg", "webp"])
def test_a_matched_classic_codec_takes_the_best_quality_within_the_codec_bytes_on_the_wire(photo, classic):
    cache = EncodingCache()
    quality = matched_quality(classic, photo, "cnn", 1200)
    budget = wire_bytes(SessionOptions(image=photo, codec="cnn"), cache)

    def classic_bytes(q):
        return wire_bytes(SessionOptions(image=photo, codec=classic, partition="segment", jpeg_quality=q), cache)

    assert 1 < quality < 95
    assert classic_bytes(quality) <= budget < classic_bytes(quality + 1)
    rows = run_here(SweepGrid(images=(photo,), codecs=("cnn", classic), partitions=("channel",), interleave=(True,),
                              netem=("",), seeds=(0,), jpeg_match="cnn"))
    matched = next(r for r in rows if r["codec"] == classic)
    assert matched["jpeg_quality"] == quality and matched["bytes_on_wire"] <= budget
    assert matched["jpeg_setting"] == "match:cnn"


def test_refine_applies_to_the_cnn_codecs_and_to_the_bytes_jpeg_matches(photo):
    grid = SweepGrid(images=(photo,), codecs=("cnn-sem-impute-q1-ec", "raw", "jpeg"), partitions=("channel",),
                     interleave=(True,), netem=("",), seeds=(0,), jpeg_match="cnn-sem-impute-q1-ec", refine=3)
    assert {t.codec: t.refine for t in grid.tasks()} == {"cnn-sem-impute-q1-ec": 3, "raw": 0, "jpeg": 3}
    rows = {r["codec"]: r for r in run_here(grid)}
    assert rows["cnn-sem-impute-q1-ec"]["refine"] == 3 and rows["raw"]["refine"] == 0
    assert rows["jpeg"]["bytes_on_wire"] <= rows["cnn-sem-impute-q1-ec"]["bytes_on_wire"]
    plain = run_here(SweepGrid(images=(photo,), codecs=("cnn-sem-impute-q1-ec",), partitions=("channel",),
                               interleave=(True,), netem=("",), seeds=(0,)))[0]
    assert plain["key"] != rows["cnn-sem-impute-q1-ec"]["key"]
    assert plain["lossless_psnr_db"] != rows["cnn-sem-impute-q1-ec"]["lossless_psnr_db"]


def test_skip_applies_to_the_imputing_codecs_and_to_the_bytes_jpeg_matches(photo):
    grid = SweepGrid(images=(photo,), codecs=("cnn-sem-impute-q1-ec", "cnn-sem-ec", "jpeg"), partitions=("channel",),
                     interleave=(True,), netem=("",), seeds=(0,), jpeg_match="cnn-sem-impute-q1-ec", skip=20)
    assert {t.codec: t.skip for t in grid.tasks()} == {"cnn-sem-impute-q1-ec": 20, "cnn-sem-ec": 0, "jpeg": 20}
    rows = {r["codec"]: r for r in run_here(grid)}
    assert rows["cnn-sem-impute-q1-ec"]["skip_channels"] == 20 and rows["cnn-sem-ec"]["skip_channels"] == 0
    plain = run_here(SweepGrid(images=(photo,), codecs=("cnn-sem-impute-q1-ec", "jpeg"), partitions=("channel",),
                               interleave=(True,), netem=("",), seeds=(0,), jpeg_match="cnn-sem-impute-q1-ec"))
    assert plain[0]["bytes_on_wire"] > rows["cnn-sem-impute-q1-ec"]["bytes_on_wire"] >= rows["jpeg"]["bytes_on_wire"]
    assert plain[1]["jpeg_quality"] > rows["jpeg"]["jpeg_quality"]
    assert task_from_row(rows["jpeg"]).skip == 20
    both = [*plain, *rows.values()]
    labels = [series.label for series in group(both, choose_axis(both))[0]]
    assert sum("20 channels not sent" in label for label in labels) == 2  # q1-ec's series, and jpeg matched to it
    assert any(label.startswith("jpeg") and "matched to cnn-sem-impute-q1-ec's bytes, 20 channels" in label
               for label in labels)


def test_a_rate_target_runs_what_bpp_chooses_and_a_classic_codec_matches_its_bytes(photo):
    grid = SweepGrid(images=(photo,), codecs=("jpeg",), partitions=("token",), interleave=(True,),
                     netem=("", "loss random 50%"), seeds=(0, 1), jpeg_match=BPP_MATCH, bpps=(1.0, 2.0))
    tasks = grid.tasks()
    assert [(t.codec, t.partition, t.bpp) for t in tasks[::4]] == [
        (DEFAULT_CODEC, "channel", 1.0), (DEFAULT_CODEC, "channel", 2.0), ("jpeg", "segment", 1.0),
        ("jpeg", "segment", 2.0)]
    assert {t.expected_loss_percent for t in tasks} == {DEFAULT_EXPECTED_LOSS}  # chosen as `simulate --bpp` does
    rows = run_here(grid)
    for target in (1.0, 2.0):  # (at 0.5 bpp, a 128x128 photograph is fewer bytes than jpeg's least)
        learned = [r for r in rows if r["bpp_target"] == target and r["codec"] != "jpeg"]
        for seed in (0, 1):  # every run sends what `simulate --bpp` sends with its seed, whatever ran before
            chosen = prepare(SessionOptions(image=photo, bpp=target, seed=seed))
            assert {(r["codec"], r["skip_channels"], r["bytes_on_wire"]) for r in learned if r["seed"] == seed} == {
                (chosen.options.codec, chosen.options.skip, sum(map(len, chosen.datagrams)))}
        assert all(r["bpp"] <= target for r in learned)
        assert all(r["delta_psnr_db"] < 0 for r in learned if 0 < r["datagram_loss"] < 1)
        matched = [r for r in rows if r["bpp_target"] == target and r["codec"] == "jpeg"]
        seed_0 = next(r for r in learned if r["seed"] == 0)["bytes_on_wire"]  # jpeg matches them with seed 0's packing
        assert len(matched) == 4 and all(r["bytes_on_wire"] <= seed_0 for r in matched if r["seed"] == 0)
        assert len({r["jpeg_quality"] for r in matched}) == 1
    given = run_task(tasks[0], "k", None, ("cnn-sem-impute-q1-ec", 3))  # a choice made apart is the one sent
    assert (given["codec"], given["skip_channels"], given["bpp_target"]) == ("cnn-sem-impute-q1-ec", 3, 1.0)
    assert ("cnn-sem-impute-q1-ec", 3) not in {(r["codec"], r["skip_channels"]) for r in rows}  # nor chosen here
    found = versions()
    assert [task_from_row(row).key(image_digest(photo), found) for row in rows] == [row["key"] for row in rows]
    labels = [series.label for series in group(rows, choose_axis(rows))[0]]
    assert labels[:2] == ["--bpp 1 (chosen per image) / channel", "--bpp 2 (chosen per image) / channel"]
    assert [label.endswith(f"matched to --bpp {t}'s bytes)") for t in ("1", "2") for label in labels[2:]] == [
        True, False, False, True]


def test_expect_loss_configured_makes_each_choice_for_its_runs_loss(photo):
    grid = SweepGrid(images=(photo,), codecs=("jpeg",), partitions=("channel",), interleave=(True,),
                     netem=("", "loss random 40%", "loss gemodel 2% 20% 100% 0%"), seeds=(0,), jpeg_match=BPP_MATCH,
                     bpps=(2.0,), expect_loss=EXPECT_CONFIGURED)
    tasks = grid.tasks()
    assert [t.expected_loss_percent for t in tasks] == pytest.approx([0, 40, 100 * 2 / 22] * 2)
    assert SweepGrid(images=(photo,), codecs=("raw",), partitions=("channel",), interleave=(True,), netem=("",),
                     seeds=(0,), expect_loss="10").tasks()[0].expect_loss == ""  # only the targets' runs choose
    rows = run_here(grid)
    for row, task in zip(rows[:3], tasks):
        chosen = prepare(SessionOptions(image=photo, bpp=2.0, expected_loss=task.expected_loss_percent))
        assert (row["codec"], row["skip_channels"], row["expect_loss"]) == (
            chosen.options.codec, chosen.options.skip, EXPECT_CONFIGURED)
    found = versions()
    assert [task_from_row(row).key(image_digest(photo), found) for row in rows] == [row["key"] for row in rows]
    assert [row["expect_loss"] for row in read_results_of(rows, photo)] == [EXPECT_CONFIGURED] * 6
    assert "chosen for the configured loss" in group(rows, choose_axis(rows))[1]  # the same for all: in the title


def test_a_sweep_reads_several_expected_losses_and_its_plots_name_them(photo):
    grid = SweepGrid(images=(photo,), codecs=(), partitions=("channel",), interleave=(True,), netem=("",),
                     seeds=(0,), bpps=(2.0,), expect_loss="10,40")
    (task,) = grid.tasks()
    assert task.expected_loss_percent == (10.0, 40.0)
    assert describe("expect_loss", task.expect_loss) == "chosen for 10 % or 40 % loss"
    assert describe("expect_loss", "10") == "chosen for 10 % loss"


def read_results_of(rows: list[dict], photo: str) -> list[dict]:
    """`rows` written to a results file and read back, as `netsem plot` reads them."""
    from pathlib import Path

    path = Path(photo).with_name("expect.csv")
    path.unlink(missing_ok=True)
    results = ResultsFile(path, list(versions()))
    for row in rows:
        results.append(row)
    results.close(order=[row["key"] for row in rows])
    return read_results(path)


def test_a_run_that_delivers_nothing_is_a_row_that_says_so(photo):
    rows = run_here(SweepGrid(images=(photo,), codecs=("raw",), partitions=("channel",), interleave=(True,),
                              netem=("loss random 100%",), seeds=(0,)))
    assert rows[0]["delivered"] is False and "none of the" in rows[0]["note"]
    assert rows[0]["psnr_db"] is None and rows[0]["ssim"] is None and rows[0]["datagrams_received"] == 0
    assert rows[0]["datagrams_sent"] > 0


def test_every_axis_phy_at_each_snr_and_mtu(photo):
    grid = SweepGrid(images=(photo,), codecs=("raw",), partitions=("channel",), interleave=(True, False),
                     netem=("",), seeds=(3,), mtus=(600, 1200), phy=("siso awgn ldpc 1/2 qpsk",), snrs=(-10.0, 20.0))
    tasks = grid.tasks()
    assert len(tasks) == 2 * 2 * 2
    assert {(t.mtu, t.snr_db, t.interleave) for t in tasks} == {(m, s, i) for m in (600, 1200) for s in (-10.0, 20.0)
                                                                for i in (True, False)}
    assert tasks[0].phy_spec == "siso awgn ldpc 1/2 qpsk snr -10dB"
    row = run_task(tasks[-1], "k")  # 20 dB over AWGN: everything arrives
    assert row["snr_db"] == 20.0 and row["phy"] == "siso awgn ldpc 1/2 qpsk" and row["mtu"] == 1200
    assert row["datagrams_received"] == row["datagrams_sent"]
    assert task_from_row(row) == tasks[-1]
    with pytest.raises(PhySpecError, match="not both"):
        SweepGrid(images=(photo,), codecs=("raw",), partitions=("channel",), interleave=(True,), netem=("",),
                  seeds=(0,), phy=("siso snr 3dB",), snrs=(1.0,)).tasks()
    with pytest.raises(PhySpecError, match="needs an SNR"):
        SweepGrid(images=(photo,), codecs=("raw",), partitions=("channel",), interleave=(True,), netem=("",),
                  seeds=(0,), phy=("siso",)).tasks()


def test_a_preset_is_a_point_of_the_netem_axis_under_its_name(photo):
    grid = SweepGrid(images=(photo,), codecs=("raw",), partitions=("channel",), interleave=(True,),
                     netem=("",), presets=("wlan-ep6",), seeds=(0,))
    plain, preset = grid.tasks()
    assert (plain.netem, plain.preset) == ("", "")
    assert (preset.netem, preset.preset) == ("loss burst 32.4% 2.71", "wlan-ep6")
    row = run_task(preset, "k")
    assert row["preset"] == "wlan-ep6" and row["loss_model"] == "gemodel"
    assert row["loss_percent"] == pytest.approx(32.4, abs=0.01)
    assert task_from_row(row) == preset
    with pytest.raises(LookupError, match="unknown preset"):
        SweepGrid(images=(photo,), codecs=("raw",), partitions=("channel",), interleave=(True,), netem=(),
                  presets=("nowhere",), seeds=(0,)).tasks()


def test_a_results_file_of_other_columns_is_refused(tmp_path):
    other = tmp_path / "old.csv"
    other.write_text("key,codec,psnr_db\nabc,raw,30.0\n")
    with pytest.raises(ResultsError, match="other columns"):
        ResultsFile(other, list(versions()))
    assert other.read_text() == "key,codec,psnr_db\nabc,raw,30.0\n"


def test_grid_words():
    assert parse_number_list("0,2,...,10") == [0, 2, 4, 6, 8, 10]
    assert parse_number_list("0,0.1,...,0.3") == [0, 0.1, 0.2, 0.3]
    assert parse_number_list("0,3,...,10") == [0, 3, 6, 9, 10]
    assert parse_number_list("5") == [5]
    for bad in ("0,...,10", "10,8,...,0", "0,2,...", "0,x"):
        with pytest.raises(ValueError):
            parse_number_list(bad)
    assert split_snr("mimo 2x2 snr 6 dB ldpc 1/2") == ("mimo 2x2 ldpc 1/2", 6.0)
    assert split_snr("siso awgn") == ("siso awgn", None)
    assert configured_loss("") == ("none", 0.0)
    assert configured_loss("loss random 20%") == ("random", 20.0)
    kind, mean = configured_loss("loss gemodel 2% 20% 100% 0%")  # stationary bad share 2 / 22
    assert kind == "gemodel" and math.isclose(mean, 100 * 2 / 22)


def test_the_x_axis_is_the_configured_loss_not_what_each_run_achieved(photo, tmp_path):
    """Seed 003's burst sweep: with gemodel the old plot put each run's achieved loss on the
    x-axis and joined seeds into a line. Now every run of a configuration is one point."""
    netem = ("", "loss gemodel 10% 30% 100% 0%", "loss gemodel 20% 30% 100% 0%")
    rows = run_here(SweepGrid(images=(photo,), codecs=("raw",), partitions=("channel",), interleave=(True,),
                              netem=netem, seeds=(0, 1, 2)))
    assert len({r["datagram_loss"] for r in rows if r["loss_percent"] == 25}) > 1  # the runs achieve different losses
    results = ResultsFile(tmp_path / "burst.csv", list(versions()))
    for row in rows:
        results.append(row)
    results.close([row["key"] for row in rows])
    typed = read_results(tmp_path / "burst.csv")
    axis = choose_axis(typed)
    assert axis.column == "loss_percent" and "configured mean" in axis.label
    (series,), shared = group(typed, axis)
    assert [point.x for point in series.points] == [0.0, 25.0, 40.0]
    assert [point.runs for point in series.points] == [3, 3, 3]
    assert "loss model gemodel" in shared
    plot_quality(typed, tmp_path / "burst.png")
    assert (tmp_path / "burst.png").stat().st_size > 10_000
