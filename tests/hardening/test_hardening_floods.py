"""Long-running commands under hostile traffic: bounded memory, still serving, clean Ctrl-C.

Each test floods a real `netsem recv` / `netsem emulate` process with 400 000 datagrams
(garbage, CRC-valid headers claiming absurd shapes, and frames that never complete: the flood's
pool of 3000 repeats, so more datagrams would only take longer), samples
its resident memory throughout, then checks that a valid frame sent afterwards is still
served, and that SIGINT ends it within 1 s with a summary and exit code 130.
"""

import json
import signal
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from flood import flood  # noqa: E402
from processes import Program, RssSampler, free_port, send_all, wait_drained, wait_readable  # noqa: E402

from netsem.codecs.registry import get_codec  # noqa: E402
from netsem.pipeline.frames import outgoing_frame  # noqa: E402
from packetizers.packetizer import Packetizer  # noqa: E402
from packetizers.wire import PartitionKind  # noqa: E402

FLOOD_DATAGRAMS = 400_000
RSS_GROWTH_LIMIT = 64 * 2**20


def valid_datagrams(frame_id: int) -> list[bytes]:
    """A decodable frame: a small random image through the raw-pixel codec."""
    codec = get_codec("raw")
    image = np.random.default_rng(frame_id).integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    return Packetizer(PartitionKind.CHANNEL).packetize(outgoing_frame(codec, image, mtu=1200), frame_id)


@pytest.mark.timeout(240)
def test_recv_survives_a_flood_with_bounded_memory_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    recv = Program("recv", "--listen", f"127.0.0.1:{port}", "--out", str(tmp_path), "--json")
    try:
        send_all(valid_datagrams(1), ("127.0.0.1", port))  # warm up: codec loaded, first decode done
        recv.report_where(60, frame_id=1)
        with RssSampler(recv.pid) as sampler:
            baseline = sampler.peak
            flood(("127.0.0.1", port), FLOOD_DATAGRAMS)
            wait_drained(port, 30)  # datagrams sent into a full socket buffer would be dropped by the kernel
            send_all(valid_datagrams(2), ("127.0.0.1", port))
            report = recv.report_where(30, frame_id=2)  # served after the flood
        growth = sampler.peak - baseline
        assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.1f} MiB"
        assert report["complete"] and Path(report["image"]).exists()
    finally:
        code, seconds, stderr = recv.stop(signal.SIGINT)
    assert code == 130
    assert seconds < 1.0, f"SIGINT took {seconds:.2f} s"
    summary = json.loads(stderr.strip().splitlines()[-1])
    assert summary["frames_decoded"] >= 2 and sum(summary["datagrams_rejected"].values()) > 0
    handled = summary["datagrams_accepted"] + sum(summary["datagrams_rejected"].values()) + summary["kernel_dropped"]
    assert handled >= FLOOD_DATAGRAMS  # every datagram accounted for: taken, rejected, or dropped by the kernel
    print(f"recv: RSS growth {growth / 2**20:.1f} MiB, rejects {summary['datagrams_rejected']}, "
          f"kernel-dropped {summary['kernel_dropped']}, SIGINT {seconds:.3f} s")


@pytest.mark.timeout(240)
def test_emulate_survives_a_flood_with_bounded_memory_and_stops_on_ctrl_c(tmp_path):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    port = free_port()
    emulate = Program("emulate", "--listen", f"127.0.0.1:{port}", "--forward", f"127.0.0.1:{sink.getsockname()[1]}",
                      "--seed", "1", "--stats", str(tmp_path / "stats.json"), "--", "loss", "random", "1%")
    try:
        with RssSampler(emulate.pid) as sampler:
            baseline = sampler.peak
            flood(("127.0.0.1", port), FLOOD_DATAGRAMS)
        growth = sampler.peak - baseline
        assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.1f} MiB"
        marker = b"still serving after the flood"
        received = False
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for attempt in range(50):  # 1 % loss, and the flood's tail still in the queues
                send_all([marker + bytes([attempt])], ("127.0.0.1", port), sender)
                while wait_readable(sink, 2.0):
                    if sink.recv(65536).startswith(marker):
                        received = True
                        break
                if received:
                    break
        assert received
    finally:
        code, seconds, stderr = emulate.stop(signal.SIGINT)
        sink.close()
    assert code == 130
    assert seconds < 1.0, f"SIGINT took {seconds:.2f} s"
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert "received" in json.dumps(stats)
    print(f"emulate: RSS growth {growth / 2**20:.1f} MiB, SIGINT {seconds:.3f} s")
