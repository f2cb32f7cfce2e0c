"""The event log: every decision with its random stream position; replays repeat runs exactly."""

from __future__ import annotations

import json
import re
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

from emulator.eventlog import (
    EventLogWriter,
    ReplayLink,
    diff_event_logs,
    read_event_log,
)
from emulator.grammar import parse_netem
from emulator.link import Link
from emulator.offline import run_offline

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from netsem.cli import main; main()", "emulate"]
DIFF = [sys.executable, str(REPO / "tools" / "emulator_log_diff.py")]
WORDS = "limit 30 delay 20ms 5ms duplicate 5% loss gemodel 5% 30% corrupt 3% frame reorder 10% gap 3 rate 2mbit"


def write_log(path: Path, words: str, fates) -> None:
    with EventLogWriter(path, {"seed": 3, "links": [{"name": "forward", "netem": words.split()}], "rules": []}) as log:
        log.write("forward", fates)


def test_offline_replay_writes_the_same_log_again(tmp_path):
    spec = parse_netem(WORDS)
    arrivals = [(i * 0.3e-3, i.to_bytes(4, "big") + bytes(200)) for i in range(3000)]
    first = run_offline(Link(spec, seed=3, record_fates=True, draw_positions=True), arrivals)
    write_log(tmp_path / "first.jsonl", WORDS, first.fates)
    logged = read_event_log(tmp_path / "first.jsonl")
    replay = run_offline(ReplayLink(logged.of_link("forward"), spec, record_fates=True), arrivals)
    write_log(tmp_path / "again.jsonl", WORDS, replay.fates)
    assert replay.deliveries == first.deliveries and replay.counters == first.counters
    assert first.counters.queue_dropped > 0 and first.counters.corrupted > 0 and first.counters.reordered > 0
    assert diff_event_logs(logged, read_event_log(tmp_path / "again.jsonl"), times=True) == []
    assert (tmp_path / "first.jsonl").read_text() == (tmp_path / "again.jsonl").read_text()


def test_records_carry_the_random_stream_positions(tmp_path):
    link = Link(parse_netem("loss 50% delay 1ms 1ms"), seed=1, record_fates=True, draw_positions=True)
    result = run_offline(link, [(i * 1e-3, bytes(8)) for i in range(100)])
    arrivals = [f for f in result.fates if f.direction == "in"]
    loss, delay = link.draw_names.index("loss"), link.draw_names.index("delay")
    # one loss draw per packet; a delay draw only for packets that were not lost
    assert [f.draws[loss] for f in arrivals] == list(range(1, 101))
    assert arrivals[-1].draws[delay] == len(result.deliveries)


def test_diff_tool_agrees_on_equal_logs_and_lists_differences(tmp_path):
    spec = parse_netem(WORDS)
    arrivals = [(i * 1e-3, i.to_bytes(4, "big") + bytes(100)) for i in range(500)]
    for seed, name in ((3, "a"), (3, "b"), (4, "c")):
        write_log(tmp_path / f"{name}.jsonl", WORDS, run_offline(Link(spec, seed=seed, record_fates=True), arrivals).fates)
    same = subprocess.run([*DIFF, str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")], capture_output=True, text=True)
    assert same.returncode == 0 and "the logs agree" in same.stdout
    other = subprocess.run([*DIFF, str(tmp_path / "a.jsonl"), str(tmp_path / "c.jsonl")], capture_output=True, text=True)
    assert other.returncode == 1 and re.search(r"\d+ differences", other.stdout)
    assert "forward packet" in other.stdout


def start(args: list[str]) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([*CLI, *args], cwd=REPO, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        match = re.search(r"listening on [^ ]+:(\d+),", line)
        if match:
            return process, int(match.group(1))
    raise AssertionError(f"emulator did not start: exit {process.wait()}")


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    assert process.wait(timeout=20) == 130 and "Traceback" not in rest, rest
    return rest


def flood(port: int, sink: socket.socket, n: int) -> list[int]:
    """Send n numbered datagrams at once (more than the queue holds), then collect what arrives."""
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    received = []
    for i in range(n):
        sender.sendto(i.to_bytes(4, "big") + bytes(100), ("127.0.0.1", port))
    while select.select([sink], [], [], 0.5)[0]:
        received.append(int.from_bytes(sink.recv(2048)[:4], "big"))
    return received


def test_replay_over_sockets_repeats_a_run_with_queue_overflow_exactly(tmp_path):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    target = f"127.0.0.1:{sink.getsockname()[1]}"
    log, again = tmp_path / "run.jsonl", tmp_path / "again.jsonl"
    process, port = start(["--listen", "0", "--forward", target, "--seed", "5", "--event-log", str(log), "--",
                           "limit", "20", "delay", "20ms", "4ms", "loss", "10%", "corrupt", "5%"])
    first = flood(port, sink, 300)
    stop(process)
    process, port = start(["--listen", "0", "--forward", target, "--replay", str(log), "--event-log", str(again)])
    second = flood(port, sink, 300)
    stderr = stop(process)
    assert second == first  # the queue drops too, whatever the timing of the second run
    records = [json.loads(line) for line in log.read_text().splitlines()[1:]]
    assert sum(r.get("cause") == "queue full" for r in records) > 100
    assert "forward: received 300" in stderr and "beyond the log" not in stderr
    agree = subprocess.run([*DIFF, str(log), str(again)], capture_output=True, text=True)
    assert agree.returncode == 0, agree.stdout


def test_replay_refuses_other_impairments(tmp_path):
    log = tmp_path / "x.jsonl"
    write_log(log, "loss 1%", [])
    result = subprocess.run([*CLI, "--listen", "0", "--forward", "127.0.0.1:9", "--replay", str(log), "--", "delay", "1ms"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "give no netem words" in result.stderr


def test_ipv6_flows_count_62_header_bytes(tmp_path):
    """Over IPv6 `rate` counts 14 + 40 + 8 header bytes: read from the link's own schedule."""
    sink = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sink.bind(("::1", 0))
    log = tmp_path / "v6.jsonl"
    process, port = start(["--listen", "[::1]:0", "--forward", f"[::1]:{sink.getsockname()[1]}", "--seed", "1",
                           "--event-log", str(log), "--", "rate", "10kbit"])
    sender = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    for _ in range(3):
        sender.sendto(bytes(1000), ("::1", port))  # 1062 bytes: 849.6 ms each at 1250 B/s, so they queue
    select.select([sink], [], [], 1.0)
    stop(process)
    sends = [json.loads(line)["send"] for line in log.read_text().splitlines()[1:] if '"event":"in"' in line]
    assert [b - a for a, b in zip(sends, sends[1:])] == [849_600_000, 849_600_000]
