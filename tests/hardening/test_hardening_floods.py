"""Long-running commands under hostile traffic: bounded memory, still serving, clean Ctrl-C.

Each test floods a real `netsem recv` / `netsem emulate` process with 1 000 000 datagrams
(garbage, CRC-valid headers claiming absurd shapes, and frames that never complete), samples
its resident memory throughout, then checks that a valid frame sent afterwards is still
served, and that SIGINT ends it within 1 s with a summary and exit code 130.
"""

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from flood import flood  # noqa: E402

from netsem.codecs.registry import get_codec  # noqa: E402
from netsem.pipeline.frames import latent_frame  # noqa: E402
from packetizers.packetizer import Packetizer  # noqa: E402
from packetizers.wire import PartitionKind  # noqa: E402

FLOOD_DATAGRAMS = 1_000_000
RSS_GROWTH_LIMIT = 64 * 2**20


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class RssSampler:
    """Peak resident memory of a process while a block runs, sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def start(args: list[str], ready_text: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "netsem", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    line = ""
    while ready_text not in line:
        line = process.stderr.readline()
        assert line or process.poll() is None, f"process ended: {process.stderr.read()}"
        assert time.monotonic() < deadline
    return process


def interrupt(process: subprocess.Popen) -> tuple[float, str, str]:
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=10)
    return time.monotonic() - started, stdout, stderr


def valid_datagrams(frame_id: int) -> list[bytes]:
    """A decodable frame: a small random image through the raw-pixel codec."""
    codec = get_codec("raw")
    image = np.random.default_rng(frame_id).integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    return Packetizer(PartitionKind.CHANNEL).packetize(latent_frame(codec.encode(image), codec.codec_id), frame_id)


def send_all(datagrams: list[bytes], address: tuple[str, int]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in datagrams:
            sock.sendto(datagram, address)


@pytest.mark.timeout(240)
def test_recv_survives_a_flood_with_bounded_memory_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    process = start(["recv", "--listen", f"127.0.0.1:{port}", "--out", str(tmp_path), "--json"], "listening")
    try:
        send_all(valid_datagrams(1), ("127.0.0.1", port))  # warm up: codec loaded, first decode done
        assert json.loads(process.stdout.readline())["frame_id"] == 1
        baseline = rss_bytes(process.pid)
        with RssSampler(process.pid) as sampler:
            flood(("127.0.0.1", port), FLOOD_DATAGRAMS)
            time.sleep(1.0)  # let it drain its queue and time the orphan frames out
        growth = sampler.peak - baseline
        assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.1f} MiB"
        send_all(valid_datagrams(2), ("127.0.0.1", port))
        deadline = time.monotonic() + 10
        while not (tmp_path / "frame-0-2.png").exists():
            assert time.monotonic() < deadline, "a valid frame after the flood was not decoded"
            time.sleep(0.05)
    finally:
        seconds, _, stderr = interrupt(process)
    assert process.returncode == 130
    assert seconds < 1.0, f"SIGINT took {seconds:.2f} s"
    summary = json.loads(stderr.strip().splitlines()[-1])
    assert summary["frames_decoded"] >= 2 and sum(summary["datagrams_rejected"].values()) > 0
    print(f"recv: RSS growth {growth / 2**20:.1f} MiB, rejects {summary['datagrams_rejected']}, SIGINT {seconds:.3f} s")


@pytest.mark.timeout(240)
def test_emulate_survives_a_flood_with_bounded_memory_and_stops_on_ctrl_c(tmp_path):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(0.2)
    port = free_port()
    process = start(["emulate", "--listen", f"127.0.0.1:{port}", "--forward", f"127.0.0.1:{sink.getsockname()[1]}",
                     "--seed", "1", "--stats", str(tmp_path / "stats.json"), "--", "loss", "random", "1%"],
                    "listening")
    try:
        baseline = rss_bytes(process.pid)
        with RssSampler(process.pid) as sampler:
            flood(("127.0.0.1", port), FLOOD_DATAGRAMS)
            time.sleep(1.0)
        growth = sampler.peak - baseline
        assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.1f} MiB"
        try:
            while True:
                sink.recv(65536)  # drain what the flood left in the sink
        except TimeoutError:
            pass
        marker = b"still serving after the flood"
        received = set()
        for attempt in range(20):  # 1 % loss: one of 20 tries gets through
            send_all([marker + bytes([attempt])], ("127.0.0.1", port))
            try:
                received.add(sink.recv(65536))
            except TimeoutError:
                continue
            break
        assert any(datagram.startswith(marker) for datagram in received)
    finally:
        seconds, stdout, stderr = interrupt(process)
        sink.close()
    assert process.returncode == 130
    assert seconds < 1.0, f"SIGINT took {seconds:.2f} s"
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert "received" in json.dumps(stats)
    print(f"emulate: RSS growth {growth / 2**20:.1f} MiB, SIGINT {seconds:.3f} s")
