"""Forwarding throughput of `netsem emulate` next to a plain Python forwarder.

The forwarders run as separate processes and are measured in the same run with the same
load generator: 1200-byte datagrams, at most WINDOW in flight (the generator sends until
WINDOW datagrams are unanswered, then waits for the sink, which lives in the same process).
Three forwarders, alternating over the rounds (the best of each is kept):

- plain: a blocking `send(recv())` loop;
- emulate: `netsem emulate` with no impairment (target >= 0.8 x plain);
- emulate + rules + log: two `--rule`s (the traffic matches the second, `corrupt 1%`, which
  loses nothing, so the closed loop keeps running) and `--event-log` writing every decision
  with its random stream positions (target >= 0.6 x plain).

It prints datagrams/s for each, the ratios, and the load average (the machine may be shared:
rerun when it is high).

    .venv/bin/python tools/bench_emulator.py [--seconds 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = bytes(1200)
WINDOW = 64

PLAIN_FORWARDER = """
import socket, sys
listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
listen.bind(("127.0.0.1", 0))
out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
target = ("127.0.0.1", int(sys.argv[1]))
print(f"listening on 127.0.0.1:{listen.getsockname()[1]}", file=sys.stderr, flush=True)
recv, send = listen.recv, out.sendto
while True:
    send(recv(65535), target)
"""


def start(command: list[str]) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if match:
            return process, int(match.group(1))
    raise RuntimeError(f"{command[:3]} did not start")


def measure(port: int, sink: socket.socket, seconds: float) -> float:
    """Datagrams/s delivered to the sink with at most WINDOW in flight."""
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target = ("127.0.0.1", port)
    sink.setblocking(False)
    sent = received = 0
    start_time = time.perf_counter()
    warmup_end = start_time + 0.5
    counted_from = None
    base = 0
    while True:
        now = time.perf_counter()
        if counted_from is None and now >= warmup_end:
            counted_from, base = now, received
        if counted_from is not None and now - counted_from >= seconds:
            break
        while sent - received < WINDOW:
            sender.sendto(PAYLOAD, target)
            sent += 1
        if not select.select([sink], [], [], 0.2)[0]:
            sent = received  # a datagram was lost somewhere: reopen the window
            continue
        while True:
            try:
                sink.recv(2048)
            except BlockingIOError:
                break
            received += 1
    elapsed = time.perf_counter() - counted_from
    sender.close()
    while select.select([sink], [], [], 0.1)[0]:  # drain what is still in flight
        try:
            sink.recv(2048)
        except BlockingIOError:
            break
    return (received - base) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per forwarder and round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (the best of each is kept)")
    args = parser.parse_args()

    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sink.bind(("127.0.0.1", 0))
    sink_port = sink.getsockname()[1]
    emulate = [sys.executable, "-c", "from netsem.cli import main; main()", "emulate",
               "--listen", "127.0.0.1:0", "--forward", f"127.0.0.1:{sink_port}", "--seed", "1"]
    log_dir = tempfile.TemporaryDirectory(prefix="bench_emulator_")
    commands = {
        "plain": [sys.executable, "-c", PLAIN_FORWARDER, str(sink_port)],
        "emulate": [*emulate, "--"],
        "emulate + rules + log": [*emulate, "--rule", "sport 1-1023: loss 50%", "--rule", "dst 127.0.0.0/8: corrupt 1%",
                                  "--event-log", str(Path(log_dir.name) / "bench.jsonl")],
    }
    best = {name: 0.0 for name in commands}
    loads = []
    for round_index in range(args.rounds):
        for name, command in commands.items():
            loads.append(os.getloadavg()[0])
            process, port = start(command)
            try:
                rate = measure(port, sink, args.seconds)
            finally:
                process.terminate()
                process.wait(timeout=10)
            best[name] = max(best[name], rate)
            print(f"round {round_index + 1}: {name:22s} {rate:10.0f} datagrams/s", flush=True)
    log_dir.cleanup()
    plain = best["plain"]
    print(f"plain blocking forwarder: {plain:.0f} datagrams/s")
    print(f"netsem emulate (no impairment): {best['emulate']:.0f} datagrams/s, "
          f"ratio {best['emulate'] / plain:.2f} (target >= 0.8)")
    print(f"netsem emulate with 2 rules and an event log: {best['emulate + rules + log']:.0f} datagrams/s, "
          f"ratio {best['emulate + rules + log'] / plain:.2f} (target >= 0.6)")
    print(f"load average (1 min) during the runs: {min(loads):.2f} to {max(loads):.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
