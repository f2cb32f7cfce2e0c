"""End to end: real UDP sockets through the in-process emulator versus the virtual clock."""

from pathlib import Path

import numpy as np
import pytest
import trio
from PIL import Image
from skimage import data

from netsem.pipeline.send import run_send, transmit_udp
from netsem.pipeline.session import SessionOptions, prepare
from netsem.pipeline.simulate import run_simulate, transmit_virtual
from netsem.pipeline.udp import NothingArrived, collect_frames, send_paced, udp_socket
from packetizers.reassembler import Reassembler, ReassemblerLimits


@pytest.fixture(scope="module")
def small_photo(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("img") / "chelsea.png"
    Image.fromarray(data.chelsea()[::3, ::3]).save(path)  # 100 x 151
    return str(path)


@pytest.mark.parametrize("netem", ["loss random 20%", "loss gemodel 5% 30% 70% 0.1%",
                                   "delay 5ms 2ms loss 10% duplicate 5% corrupt 2%"])
@pytest.mark.parametrize("partition", ["channel", "spatial"])
def test_sockets_and_virtual_clock_receive_the_same_mask(small_photo, netem, partition):
    outgoing = [prepare(SessionOptions(image=small_photo, codec="raw", partition=partition, netem=netem, seed=5))]
    over_udp, virtual = transmit_udp(outgoing), transmit_virtual(outgoing)
    (udp_frame,), (virtual_frame,) = over_udp.frames, virtual.frames
    assert 0 < udp_frame.received.mean() < 1  # the loss really happened
    np.testing.assert_array_equal(udp_frame.received, virtual_frame.received)
    np.testing.assert_array_equal(udp_frame.latent, virtual_frame.latent)
    assert over_udp.link == virtual.link
    assert over_udp.receiver["datagrams_rejected"] == virtual.receiver["datagrams_rejected"]


def test_send_and_simulate_report_identical_metrics(small_photo):
    options = SessionOptions(image=small_photo, codec="raw", partition="token", netem="loss random 20%", seed=9)
    (over_udp,), (virtual,) = run_send(options).reports, run_simulate(options).reports
    for field in ("psnr_db", "ssim", "lossless_psnr_db", "datagrams_sent", "datagrams_received",
                  "units_total", "units_received", "bytes_on_wire", "bpp"):
        assert getattr(over_udp, field) == getattr(virtual, field), field
    assert over_udp.transport == "udp" and virtual.transport == "virtual"
    assert over_udp.units_received < over_udp.units_total


def test_nothing_lost_without_impairments(small_photo):
    (report,) = run_send(SessionOptions(image=small_photo, codec="raw")).reports
    assert report.datagrams_received == report.datagrams_sent
    assert report.units_received == report.units_total
    assert report.psnr_db == report.lossless_psnr_db


def test_sender_that_stops_mid_frame_gives_a_partial_frame_at_the_deadline(small_photo):
    datagrams = prepare(SessionOptions(image=small_photo, codec="raw")).datagrams

    async def main():
        reassembler = Reassembler(ReassemblerLimits(frame_timeout=0.1))
        with udp_socket() as receiver, udp_socket() as sender:
            await send_paced(sender, [(0.0, d) for d in datagrams[: len(datagrams) // 2]], receiver.getsockname())
            started = trio.current_time()
            (frame,) = await collect_frames(receiver, reassembler, 1, all_sent=lambda: False)
            return frame, trio.current_time() - started

    frame, waited = trio.run(main)
    assert not frame.complete and frame.datagrams_received == len(datagrams) // 2
    assert waited < 1.0


def test_receiver_gives_up_when_nothing_arrives():
    async def main():
        with udp_socket() as receiver:
            await collect_frames(receiver, Reassembler(), 1, all_sent=lambda: False, first_datagram_timeout=0.2)

    with pytest.raises(NothingArrived):
        trio.run(main)


def test_jpeg_travels_as_restart_intervals_identically_over_sockets_and_virtual_clock(small_photo):
    options = SessionOptions(image=small_photo, codec="jpeg", partition="segment", netem="loss random 25%", seed=4)
    (over_udp,), (virtual,) = run_send(options).reports, run_simulate(options).reports
    for field in ("psnr_db", "ssim", "lossless_psnr_db", "datagrams_received", "units_received", "bytes_on_wire"):
        assert getattr(over_udp, field) == getattr(virtual, field), field
    assert 0 < over_udp.units_received < over_udp.units_total
    assert over_udp.units_total == 1 + -(-100 // 16)  # header segment + one restart interval per MCU row
    assert over_udp.psnr_db < over_udp.lossless_psnr_db


def test_lossless_jpeg_over_the_wire_is_the_encoder_output_and_costs_its_true_bytes(small_photo):
    outgoing = prepare(SessionOptions(image=small_photo, codec="jpeg", partition="segment", jpeg_quality=90))
    stream = outgoing.frame.stream
    (frame,) = transmit_virtual([outgoing]).frames
    assert frame.unit_received.all()
    assert b"".join(frame.segments()[u] for u in range(frame.header.unit_count)) == stream
    (report,) = run_simulate(SessionOptions(image=small_photo, codec="jpeg", partition="segment",
                                           jpeg_quality=90)).reports
    assert report.psnr_db == report.lossless_psnr_db
    overhead = report.bytes_on_wire - len(stream)  # headers, unit tables, CRCs
    assert 0 < overhead <= report.datagrams_sent * (70 + 4) + report.units_total * 2 * 12


def test_recv_decodes_a_jpeg_frame(small_photo, tmp_path):
    from netsem.pipeline.recv import FrameStore, decode_and_store

    outgoing = prepare(SessionOptions(image=small_photo, codec="jpeg", partition="segment", netem="loss random 30%",
                                      seed=1))
    (frame,) = transmit_virtual([outgoing]).frames
    report = decode_and_store(frame, FrameStore(tmp_path))
    assert report["codec"] == "jpeg" and "error" not in report
    assert Path(report["image"]).exists()
    assert report["units_received"] == int(frame.unit_received.sum()) < frame.header.unit_count


@pytest.mark.parametrize("fields", [dict(image_width=0, dim2=0), dict(image_height=60000, image_width=60000),
                                    dict(unit_count=3), dict(dim1=1000, dim2=2**32 - 1)])
def test_recv_reports_a_hostile_jpeg_header_instead_of_crashing(small_photo, tmp_path, fields):
    from netsem.pipeline.recv import decode_frame
    from packetizers.wire import rewrite_header

    datagrams = prepare(SessionOptions(image=small_photo, codec="jpeg", partition="segment")).datagrams
    reassembler = Reassembler()
    for datagram in datagrams[1:]:  # without the header segment's datagram, when it is first
        reassembler.receive(rewrite_header(datagram, **fields), 0.0)
    frames = reassembler.flush()
    for frame in frames:
        image, report = decode_frame(frame)
        assert ("error" in report) == (image is None)
    assert frames or sum(reassembler.rejected.values()) == len(datagrams) - 1


def test_a_sequence_travels_as_consecutive_frames_of_one_stream(small_photo):
    from netsem.pipeline.images import load_images

    images = load_images((small_photo, "skimage:coffee", small_photo))
    options = SessionOptions(codec="raw", netem="loss random 10%", seed=3, stream_id=7, first_frame_id=2**32 - 2)
    over_udp, virtual = run_send(options, images=images), run_simulate(options, images=images)
    assert [r.frame_id for r in over_udp.reports] == [2**32 - 2, 2**32 - 1, 0]  # ids count up, wrapping
    assert all(r.stream_id == 7 for r in over_udp.reports)
    assert [r.psnr_db for r in over_udp.reports] == [r.psnr_db for r in virtual.reports]
    assert over_udp.summary["frames_received"] == 3
    assert over_udp.summary["datagrams_received"] < over_udp.summary["datagrams_sent"]


def test_a_paced_sender_spreads_its_datagrams_and_changes_no_result(small_photo):
    from netsem.pipeline.session import Pacing, send_schedule

    options = SessionOptions(image=small_photo, codec="raw", netem="loss random 10%", seed=3,
                             pacing=Pacing(rate=10e6 / 8, gap=50e-6))
    outgoing = [prepare(options)]
    schedule = send_schedule(outgoing)
    sizes = [len(d) for _, d in schedule]
    assert schedule[-1][0] == pytest.approx(sum(s + 42 for s in sizes[:-1]) * 8 / 10e6)  # 10 Mbit/s on the wire
    assert all(b - a >= 50e-6 - 1e-12 for (a, _), (b, _) in zip(schedule, schedule[1:]))
    (paced,) = run_send(options).reports
    (burst,) = run_simulate(SessionOptions(image=small_photo, codec="raw", netem="loss random 10%", seed=3)).reports
    assert paced.psnr_db == burst.psnr_db
    assert paced.network_s >= schedule[-1][0]


def test_report_times_add_up_to_the_session_and_name_the_phy(small_photo):
    import time

    options = SessionOptions(image=small_photo, codec="raw", phy="awgn snr 20dB ldpc 1/2 qpsk", seed=1)
    started = time.perf_counter()
    (report,) = run_simulate(options).reports
    wall = time.perf_counter() - started
    assert report.total_s == pytest.approx(sum(report.timings.values()))
    assert report.timings["phy"] > 0 and report.total_s <= wall
    assert wall - report.total_s < 0.05  # only the return from run_simulate is left out
    assert report.network_virtual_s is not None


def test_the_reference_decode_is_skipped_when_not_asked_for_or_not_needed(small_photo):
    lossy = SessionOptions(image=small_photo, codec="cnn-sem", netem="loss random 20%", seed=1)
    (full,) = run_simulate(lossy).reports
    (light,) = run_simulate(SessionOptions(**{**lossy.__dict__, "reference": False})).reports
    assert light.psnr_db == full.psnr_db and light.lossless_psnr_db is None
    assert "reference decode" not in light.timings and full.lossless_psnr_db > full.psnr_db
    (whole,) = run_simulate(SessionOptions(image=small_photo, codec="cnn-sem")).reports
    assert whole.lossless_psnr_db == whole.psnr_db  # a frame that arrived whole is its own reference
    assert whole.timings["reference decode"] < whole.timings["decode"] / 10
