"""One-way delay through `netsem emulate -- delay D`, with and without `--pcap`.

    python tools/bench_delay.py                    # 1000 datagrams at 1 kHz, delay 20ms
    python tools/bench_delay.py --count 5000 --delay 5ms --rate 2000

A sender thread stamps each datagram with the monotonic clock and paces them; a receiver
thread takes each from the sink the moment it arrives. Printed: the median, 90th and 99th
percentile of the one-way delay in both runs, and, from the capture, how far each packet's
egress timestamp minus its ingress timestamp lies from the delay its fate comment names
(0 when the emulator sends on time and the capture stamps true times).
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from emulator.capture_reader import decode_udp, read_capture  # noqa: E402


def start_emulate(sink_port: int, delay: str, pcap: Path | None) -> tuple[subprocess.Popen, int]:
    extra = ["--pcap", str(pcap)] if pcap else []
    process = subprocess.Popen([sys.executable, "-m", "netsem", "emulate", "--listen", "127.0.0.1:0", "--forward",
                                f"127.0.0.1:{sink_port}", *extra, "--", "delay", delay],
                               stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if match:
            return process, int(match.group(1))
    raise RuntimeError(f"netsem emulate did not start (exit {process.wait()})")


def measure(count: int, rate: float, delay: str, pcap: Path | None) -> np.ndarray:
    """One-way delays in seconds of `count` datagrams sent at `rate` per second."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 2**20)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(2.0)
    process, port = start_emulate(sink.getsockname()[1], delay, pcap)
    delays: list[float] = []

    def receive() -> None:
        while len(delays) < count:
            try:
                data = sink.recv(2048)
            except TimeoutError:
                return
            delays.append((time.monotonic_ns() - int.from_bytes(data[:8], "big")) * 1e-9)

    receiver = threading.Thread(target=receive)
    receiver.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        start = time.monotonic()
        for number in range(count):
            pause = start + number / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            sender.sendto(time.monotonic_ns().to_bytes(8, "big") + number.to_bytes(4, "big") + bytes(88),
                          ("127.0.0.1", port))
    receiver.join()
    process.send_signal(signal.SIGINT)
    process.wait()
    sink.close()
    return np.asarray(delays)


def capture_excess_ms(path: Path) -> np.ndarray:
    """Per packet: (egress - ingress timestamp) - the delay its comment names, in ms."""
    ingress, excess = {}, []
    for record in read_capture(path):
        packet = decode_udp(record.link_type, record.data)
        key = packet.payload[:12]
        if record.interface_name == "ingress":
            ingress[key] = record.time_ns
            continue
        named = re.search(r"delayed ([\d.]+) ms", " ".join(record.comments))
        if named and key in ingress:
            excess.append((record.time_ns - ingress[key]) * 1e-6 - float(named.group(1)))
    return np.asarray(excess)


def describe(name: str, delays: np.ndarray, count: int) -> str:
    ms = delays * 1e3
    return (f"{name:>14}: {delays.size}/{count} arrived, one-way delay median {np.median(ms):.2f} ms, "
            f"p90 {np.percentile(ms, 90):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1000.0, help="datagrams per second")
    parser.add_argument("--delay", default="20ms")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        capture = Path(folder) / "delay.pcapng"
        plain = measure(args.count, args.rate, args.delay, None)
        captured = measure(args.count, args.rate, args.delay, capture)
        excess = capture_excess_ms(capture)
    print(describe("without --pcap", plain, args.count))
    print(describe("with --pcap", captured, args.count))
    print(f"{'capture':>14}: egress - ingress - commented delay: median {np.median(excess):.3f} ms, "
          f"p99 {np.percentile(excess, 99):.3f} ms, max {excess.max():.3f} ms over {excess.size} packets")


if __name__ == "__main__":
    main()
