"""Over real sockets: `netsem emulate` as a subprocess, and `serve_proxy` in-process.

No test waits for a quiet period: the emulator is seeded, so the offline replay of its link
says in advance which datagrams reach the sink; a test waits (with a deadline) for exactly
those, paces its sending by what the sink has received, and makes sure the emulator has read
everything it was sent (its socket's receive queue is empty) before stopping it.
"""

from __future__ import annotations

import itertools
import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import trio

from emulator.fate import DEPARTURE
from emulator.grammar import parse_netem
from emulator.link import Link
from emulator.offline import run_offline
from emulator.pcap import CaptureWriter
from emulator.proxy import serve_proxy

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from netsem.cli import main; main()", "emulate"]
sys.path.insert(0, str(REPO / "tools"))
from processes import Program, read_queued, receive_until, wait_drained  # noqa: E402

DEADLINE = 30.0  # seconds without progress before a wait fails: generous, only a broken run reaches it


def udp_socket(bind_port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", bind_port))
    return sock


def start_emulator(*args: str) -> tuple[Program, int]:
    program = Program("emulate", *args)
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)", program.stderr_lines[-1])
    assert match, program.stderr_text()
    return program, int(match.group(1))


def stop(program: Program, sig: int = signal.SIGINT) -> tuple[int, str]:
    code, _, stderr = program.stop(sig)
    return code, stderr


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def delivered_packets(words: list[str], seed: int, datagrams: list[bytes]):
    """The offline run of the link the emulator builds, and which arrivals (by index) leave it."""
    offline = run_offline(Link(parse_netem(words), seed=seed, record_fates=True),
                          [(i * 1e-4, datagram) for i, datagram in enumerate(datagrams)])
    leaving = {f.packet for f in offline.fates if f.direction == DEPARTURE and f.cause is None}
    return offline, [i in leaving for i in range(len(datagrams))]


def send_through(sender: socket.socket, target: tuple[str, int], sink: socket.socket, datagrams: list[bytes],
                 reaches: list[bool], window: int = 32) -> list[bytes]:
    """Send the datagrams in order, never more than `window` of those that reach the sink
    (`reaches`, from the offline replay) ahead of what it has received, so no socket buffer
    overflows; a run of lost ones costs no wait. Returns what the sink received once all
    `sum(reaches)` came (AssertionError after DEADLINE seconds without progress), after the
    emulator has read every datagram sent, the lost tail included."""
    reaching_so_far = list(itertools.accumulate(reaches))  # reaching among datagrams[: i + 1]
    expected = sum(reaches)
    received: list[bytes] = []
    sent = 0

    def send_allowed(got: list[bytes]) -> bool:
        nonlocal sent
        while sent < len(datagrams) and reaching_so_far[sent] <= len(got) + window:
            sender.sendto(datagrams[sent], target)
            sent += 1
        return len(got) >= expected

    receive_until(sink, send_allowed, DEADLINE, f"the sink (expecting {expected})", received)
    for datagram in datagrams[sent:]:  # a lost tail beyond the last window
        sender.sendto(datagram, target)
    wait_drained(target[1], DEADLINE)
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
    datagrams = [i.to_bytes(4, "big") + bytes(60) for i in range(n)]
    offline, reaches = delivered_packets(words, seed, datagrams)
    try:
        received = send_through(sender, ("127.0.0.1", port), sink, datagrams, reaches)
    finally:
        code, stderr = stop(process)
    received = [int.from_bytes(d[:4], "big") for d in received + read_queued(sink)]  # none may come late
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
    wait_drained(port, DEADLINE)  # all 20 read
    process.wait_for_stderr("refused a datagram", DEADLINE)  # the last one's ICMP error is reported at the latest
    code, stderr = stop(process)
    assert code == 130 and "Traceback" not in stderr
    assert "refused a datagram" in stderr and "is anything listening there?" in stderr
    assert "forward: received 20" in stderr


def test_flood_larger_than_the_queue_is_reported_and_bounded(tmp_path):
    sink, sender = udp_socket(), udp_socket()
    log = tmp_path / "flood.jsonl"
    process, port = start_emulator(
        "--listen", "0", "--forward", f"127.0.0.1:{sink.getsockname()[1]}", "--event-log", str(log),
        "--", "limit", "50", "delay", "200ms",
    )
    for i in range(20_000):
        sender.sendto(i.to_bytes(4, "big"), ("127.0.0.1", port))
    wait_drained(port, DEADLINE)  # the emulator has read the whole flood (what the kernel kept of it)
    process.wait_for_stderr("queue full (limit 50 packets)", DEADLINE)
    code, stderr = stop(process, signal.SIGTERM)
    assert code == 143 and "Traceback" not in stderr
    line = re.search(r"forward: received (\d+), sent (\d+), .*queue-dropped (\d+)(?:, still queued (\d+))?", stderr)
    received, sent, queue_dropped, queued = (int(value or 0) for value in line.groups())
    kernel_dropped = int(re.search(r"kernel-dropped (\d+)", stderr).group(1))
    assert received + kernel_dropped == 20_000  # every datagram read or counted as dropped by the kernel
    assert queue_dropped > 0 and received - queue_dropped == sent + queued and queued <= 50
    held = most_held = 0  # the queue's length after each decision, in the order the link took them
    for record in map(json.loads, log.read_text().splitlines()[1:]):
        if record["event"] == "out":
            held -= 1
        elif "cause" not in record:
            held += 1
        most_held = max(most_held, held)
    assert most_held == 50 and held == queued  # never more than the queue holds, whatever the timing


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
    arrived = trio.Event()  # set (and replaced) at each reply

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
                    nonlocal arrived
                    while True:
                        replies.append(int.from_bytes(await client.recv(2048), "big"))
                        arrived.set()
                        arrived = trio.Event()

                nursery.start_soon(echo_server)
                nursery.start_soon(collect)
                with trio.fail_after(DEADLINE):  # generous: only a broken proxy gets there
                    for i in range(200):  # at most `window` expected replies outstanding
                        while replied_so_far[i] > len(replies) + window:
                            await arrived.wait()
                        await client.sendto(i.to_bytes(4, "big"), address)
                    while len(replies) < len(expected):
                        await arrived.wait()
                    while forward.counters.received < 200 or reverse.counters.received < len(survivors):
                        await trio.sleep(0.001)  # the lost tails: polled with the deadline above
                nursery.cancel_scope.cancel()

    offline_forward = run_offline(Link(spec, seed=5), [(i * 1e-3, i.to_bytes(4, "big")) for i in range(200)])
    survivors = [int.from_bytes(d, "big") for _, d in offline_forward.deliveries]
    offline_reverse = run_offline(
        Link(spec, seed=5, stream="reverse"), [(i * 1e-3, s.to_bytes(4, "big")) for i, s in enumerate(survivors)]
    )
    expected = [int.from_bytes(d, "big") for _, d in offline_reverse.deliveries]
    replied_so_far = list(itertools.accumulate(i in set(expected) for i in range(200)))
    window = 64
    trio.run(main)
    assert replies == expected
    assert forward.counters.received == 200 and reverse.counters.received == len(survivors)
    comments = [p.comments[0].decode() for p in rdpcap(str(capture_path))]
    assert "dropped: gemodel bad state" in comments and "delayed 20.0 ms" in comments
    assert len(comments) == 200 + len(survivors) + len(survivors) + len(replies)


def test_cli_capture_has_a_fate_comment_per_packet(tmp_path):
    from scapy.all import rdpcap

    sink, sender = udp_socket(), udp_socket()
    capture_path = tmp_path / "cli.pcapng"
    words = ["loss", "gemodel", "20%", "30%", "corrupt", "10%"]
    process, port = start_emulator(
        "--listen", "0", "--forward", f"127.0.0.1:{sink.getsockname()[1]}", "--seed", "3",
        "--pcap", str(capture_path), "--", *words,
    )
    datagrams = [i.to_bytes(4, "big") + bytes(60) for i in range(300)]
    offline, reaches = delivered_packets(words, 3, datagrams)
    try:
        received = send_through(sender, ("127.0.0.1", port), sink, datagrams, reaches)
    finally:
        code, stderr = stop(process)
    received += read_queued(sink)
    assert received == [d for _, d in offline.deliveries]  # lost and corrupted (same bits) as offline
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
