"""Sweeps: every combination once, jpeg cut at its markers, jpeg matched in bytes on the wire."""

import pytest
from PIL import Image
from skimage import data

from netsem.pipeline.session import EncodingCache, SessionOptions
from netsem.pipeline.sweep import SweepGrid, matched_jpeg_quality, run_sweep, wire_bytes


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("sweep") / "astronaut.png"
    Image.fromarray(data.astronaut()[::4, ::4]).save(path)  # 128 x 128
    return str(path)


def test_jpeg_runs_once_per_setting_whatever_the_latent_partitions(photo):
    grid = SweepGrid(images=(photo,), codecs=("raw", "jpeg"), partitions=("channel", "token"), interleave=(True,),
                     netem=("", "loss random 30%"), seeds=(0, 1))
    rows = run_sweep(grid)
    assert len(rows) == len(grid) == (2 + 1) * 2 * 2
    assert sorted({(r["codec"], r["partition"]) for r in rows}) == [("jpeg", "segment"), ("raw", "channel"),
                                                                     ("raw", "token")]
    lossy = [r for r in rows if r["codec"] == "jpeg" and r["loss_percent"] == 30]
    assert all(r["unit_loss"] > 0 and r["delta_psnr_db"] < 0 for r in lossy)


def test_matched_jpeg_is_the_best_quality_within_the_codec_bytes_on_the_wire(photo):
    cache = EncodingCache()
    quality = matched_jpeg_quality(photo, "cnn", 1200, cache)
    budget = wire_bytes(SessionOptions(image=photo, codec="cnn"), cache)

    def jpeg_bytes(q):
        return wire_bytes(SessionOptions(image=photo, codec="jpeg", partition="segment", jpeg_quality=q), cache)

    assert 1 < quality < 95
    assert jpeg_bytes(quality) <= budget < jpeg_bytes(quality + 1)
    rows = run_sweep(SweepGrid(images=(photo,), codecs=("cnn", "jpeg"), partitions=("channel",), interleave=(True,),
                               netem=("",), seeds=(0,), jpeg_match="cnn"))
    jpeg = next(r for r in rows if r["codec"] == "jpeg")
    assert jpeg["jpeg_quality"] == quality and jpeg["bytes_on_wire"] <= budget
