"""Over real sockets: `netsem emulate` as a subprocess, and `serve_proxy` in-process."""

from __future__ import annotations

import json
import re
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import trio

from emulator.grammar import parse_netem
from emulator.link import Link
from emulator.offline import run_offline
from emulator.pcap import CaptureWriter
from emulator.proxy import serve_proxy

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from netsem.cli import main; main()", "emulate"]


def udp_socket(bind_port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", bind_port))
    return sock


def start_emulator(*args: str) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([*CLI, *args], cwd=REPO, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if match:
            return process, int(match.group(1))
    raise AssertionError(f"emulator did not start: exit {process.wait()}")


def stop(process: subprocess.Popen, sig: int = signal.SIGINT) -> tuple[int, str]:
    process.send_signal(sig)
    rest = process.stderr.read()
    return process.wait(timeout=20), rest


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def send_paced(sender: socket.socket, target: tuple[str, int], sink: socket.socket, n: int,
               window: int = 32) -> list[int]:
    """Send n numbered datagrams, never more than `window` ahead of the highest one received
    (with a 50 ms grace when a whole window is lost), so no kernel buffer overflows."""
    received: list[int] = []
    highest, allowed, next_seq = -1, window, 0
    sink.setblocking(False)
    while next_seq < n or select.select([sink], [], [], 0.3)[0]:
        while next_seq < n and next_seq < allowed:
            sender.sendto(next_seq.to_bytes(4, "big") + bytes(60), target)
            next_seq += 1
        ready = select.select([sink], [], [], 0.05)[0]
        if not ready:
            allowed += window  # a burst swallowed the whole window: move on
            continue
        while True:
            try:
                seq = int.from_bytes(sink.recv(2048)[:4], "big")
            except BlockingIOError:
                break
            received.append(seq)
            highest = max(highest, seq)
        allowed = max(allowed, highest + 1 + window)
    return received


def test_ten_thousand_datagrams_through_emulate_match_the_offline_link(tmp_path):
    words = ["loss", "gemodel", "2%", "15%", "80%", "0.5%"]
    n, seed = 10_000, 1234
    sink, sender = udp_socket(), udp_socket()
    stats_path = tmp_path / "stats.json"
    process, port = start_emulator(
        "--listen", "127.0.0.1:0", "--forward", f"127.0.0.1:{sink.getsockname()[1]}",
        "--seed", str(seed), "--stats", str(stats_path), "--", *words,
    )
    try:
        received = send_paced(sender, ("127.0.0.1", port), sink, n)
    finally:
        code, stderr = stop(process)
    offline = run_offline(Link(parse_netem(words), seed=seed), [(i * 1e-4, i.to_bytes(4, "big")) for i in range(n)])
    expected = [int.from_bytes(d[:4], "big") for _, d in offline.deliveries]
    assert received == expected  # the same datagrams lost, the rest in order
    assert 0.05 < 1 - len(expected) / n < 0.25  # loss = (r(1-k) + p(1-h)) / (p + r) = 0.1168
    assert code == 130 and "Traceback" not in stderr
    assert f"forward: received {n}, sent {len(expected)}" in stderr
    stats = json.loads(stats_path.read_text())
    assert stats["forward"] == offline.counters.as_dict()
    assert stats["configuration"]["seed"] == seed


def test_malformed_spec_is_one_line_exit_2():
    result = run_cli("--listen", "0", "--forward", "127.0.0.1:9", "--", "delay", "10ms", "25%")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and 'Illegal "latency"' in result.stderr
    result = run_cli("--listen", "0", "--forward", "127.0.0.1:9", "--", "bogus")
    assert result.returncode == 2 and 'What is "bogus"?' in result.stderr and "Traceback" not in result.stderr


def test_port_in_use_is_one_line_exit_2():
    busy = udp_socket()
    result = run_cli("--listen", f"127.0.0.1:{busy.getsockname()[1]}", "--forward", "127.0.0.1:9")
    assert result.returncode == 2
    assert "address already in use" in result.stderr and result.stderr.strip().count("\n") == 0


def test_unresolvable_forward_address_is_one_line_exit_2():
    result = run_cli("--listen", "0", "--forward", "no-such-host.invalid:9")
    assert result.returncode == 2 and "cannot forward to no-such-host.invalid:9" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli("--listen", "0", "--forward", "127.0.0.1:99999")
    assert result.returncode == 2 and "port must be a number" in result.stderr


def test_unreachable_forward_port_warns_and_keeps_running():
    closed = udp_socket()
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: the kernel answers with ICMP port unreachable
    process, port = start_emulator("--listen", "0", "--forward", f"127.0.0.1:{closed_port}")
    sender = udp_socket()
    for i in range(20):
        sender.sendto(bytes([i]), ("127.0.0.1", port))
        select.select([], [], [], 0.005)
    code, stderr = stop(process)
    assert code == 130 and "Traceback" not in stderr
    assert "refused a datagram" in stderr and "is anything listening there?" in stderr
    assert "forward: received 20" in stderr


def test_flood_larger_than_the_queue_is_reported_and_bounded():
    sink, sender = udp_socket(), udp_socket()
    process, port = start_emulator(
        "--listen", "0", "--forward", f"127.0.0.1:{sink.getsockname()[1]}", "--", "limit", "50", "delay", "200ms",
    )
    for i in range(20_000):
        sender.sendto(i.to_bytes(4, "big"), ("127.0.0.1", port))
    select.select([], [], [], 0.3)
    code, stderr = stop(process, signal.SIGTERM)
    assert code == 143 and "Traceback" not in stderr
    assert "queue full (limit 50 packets)" in stderr
    queue_dropped = int(re.search(r"queue-dropped (\d+)", stderr).group(1))
    received = int(re.search(r"forward: received (\d+)", stderr).group(1))
    assert queue_dropped > 0 and received - queue_dropped <= 50 + 200  # at most the queue plus what left


def test_duration_ends_cleanly_with_exit_0():
    result = run_cli("--listen", "0", "--forward", "127.0.0.1:9", "--duration", "0.3", "--", "delay", "1ms")
    assert result.returncode == 0 and "forward: received 0, sent 0" in result.stderr


def test_serve_proxy_in_process_with_reverse_link_and_capture(tmp_path):
    """The Python API: start inside a trio program, echo through both directions, capture fates."""
    from scapy.all import rdpcap

    spec = parse_netem("delay 20ms loss gemodel 10% 50%")
    forward, reverse = Link(spec, seed=5), Link(spec, seed=5, stream="reverse")
    capture_path = tmp_path / "proxy.pcapng"
    replies: list[int] = []

    async def main() -> None:
        echo = trio.socket.socket(type=trio.socket.SOCK_DGRAM)
        await echo.bind(("127.0.0.1", 0))
        client = trio.socket.socket(type=trio.socket.SOCK_DGRAM)
        await client.bind(("127.0.0.1", 0))
        with CaptureWriter(capture_path) as capture:
            async with trio.open_nursery() as nursery:
                address = await nursery.start(
                    lambda task_status: serve_proxy(("127.0.0.1", 0), echo.getsockname(), forward,
                                                    reverse_link=reverse, capture=capture, task_status=task_status)
                )

                async def echo_server() -> None:
                    while True:
                        data, peer = await echo.recvfrom(2048)
                        await echo.sendto(data, peer)

                async def collect() -> None:
                    while True:
                        replies.append(int.from_bytes(await client.recv(2048), "big"))

                nursery.start_soon(echo_server)
                nursery.start_soon(collect)
                for i in range(200):
                    await client.sendto(i.to_bytes(4, "big"), address)
                    await trio.sleep(0.001)
                await trio.sleep(0.3)
                nursery.cancel_scope.cancel()

    trio.run(main)
    offline_forward = run_offline(Link(spec, seed=5), [(i * 1e-3, i.to_bytes(4, "big")) for i in range(200)])
    survivors = [int.from_bytes(d, "big") for _, d in offline_forward.deliveries]
    offline_reverse = run_offline(
        Link(spec, seed=5, stream="reverse"), [(i * 1e-3, s.to_bytes(4, "big")) for i, s in enumerate(survivors)]
    )
    assert replies == [int.from_bytes(d, "big") for _, d in offline_reverse.deliveries]
    assert forward.counters.received == 200 and reverse.counters.received == len(survivors)
    comments = [p.comments[0].decode() for p in rdpcap(str(capture_path))]
    assert "dropped: gemodel bad state" in comments and "delayed 20.0 ms" in comments
    assert len(comments) == 200 + len(survivors) + len(survivors) + len(replies)


def test_cli_capture_has_a_fate_comment_per_packet(tmp_path):
    from scapy.all import rdpcap

    sink, sender = udp_socket(), udp_socket()
    capture_path = tmp_path / "cli.pcapng"
    process, port = start_emulator(
        "--listen", "0", "--forward", f"127.0.0.1:{sink.getsockname()[1]}", "--seed", "3",
        "--pcap", str(capture_path), "--", "loss", "gemodel", "20%", "30%", "corrupt", "10%",
    )
    received = send_paced(sender, ("127.0.0.1", port), sink, 300)
    code, stderr = stop(process)
    assert code == 130 and "Traceback" not in stderr
    packets = rdpcap(str(capture_path))
    comments = [p.comments[0].decode() for p in packets]
    assert len(packets) == 300 + len(received)  # every arrival and every departure
    assert "dropped: gemodel bad state" in comments and any(c.startswith("corrupted bit ") for c in comments)
    assert {p["UDP"].dport for p in packets} == {port, sink.getsockname()[1]}


def test_emulator_package_imports_no_netsem_packetizers_or_torch():
    code = (
        "import sys, emulator, emulator.cli, emulator.proxy, emulator.pcap, emulator.offline, emulator.presets_cli,"
        " emulator.trace_cli, emulator.eventlog, emulator.rules, emulator.traces, emulator.burst;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('netsem', 'packetizers', 'torch')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
