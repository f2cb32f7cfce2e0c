"""The event log: every decision with its random stream position; replays repeat runs exactly."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections import Counter
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
sys.path.insert(0, str(REPO / "tools"))
from processes import (  # noqa: E402
    paused,
    read_queued,
    receive_count,
    receive_until,
    start_emulate,
    stop_emulate,
    wait_drained,
)

DEADLINE = 30.0  # seconds without progress before a wait fails: only a broken run reaches it
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


def flood(process: subprocess.Popen, port: int, n: int, family: int = socket.AF_INET,
          host: str = "127.0.0.1", size: int = 100) -> None:
    """Queue n numbered datagrams on the emulator's socket while it is stopped, so it meets them
    all at once (more than its queue holds), then wait until it has read every one."""
    sender = socket.socket(family, socket.SOCK_DGRAM)
    with paused(process.pid):
        for i in range(n):
            sender.sendto(i.to_bytes(4, "big") + bytes(size), (host, port))
    wait_drained(port, DEADLINE)


def forward_records(path: Path) -> tuple[list[dict], dict[int, dict], list[dict]]:
    """A log's records, its arrivals by packet, and its departures (not discarded) in the order they left."""
    records = [json.loads(line) for line in path.read_text().splitlines()[1:]]
    arrivals = {r["packet"]: r for r in records if r["event"] == "in"}
    return records, arrivals, [r for r in records if r["event"] == "out" and "cause" not in r]


def as_sent(arrival: dict, size: int = 100) -> bytes:
    """Datagram number `packet` of a flood as it left: with the bit its arrival record flipped."""
    datagram = bytearray(arrival["packet"].to_bytes(4, "big") + bytes(size))
    if arrival.get("corrupted") and arrival.get("bit", -1) >= 0:
        datagram[arrival["bit"] >> 3] ^= 1 << (arrival["bit"] & 7)
    return bytes(datagram)


def test_replay_over_sockets_repeats_a_run_with_queue_overflow_exactly(tmp_path):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sink.bind(("127.0.0.1", 0))
    target = f"127.0.0.1:{sink.getsockname()[1]}"
    log, again = tmp_path / "run.jsonl", tmp_path / "again.jsonl"
    # 300 datagrams met at once by a queue of 20 that holds each for 196-204 ms: the queue drops
    # most of them unless reading 300 datagrams took the emulator longer than 196 ms (per 20 more)
    words = ["limit", "20", "delay", "200ms", "4ms", "loss", "10%", "corrupt", "5%"]
    # Loss and corruption are decided before the queue's limit, one draw per arrival: the first 20
    # datagrams the loss lets through find room in the queue however the run is timed, and the
    # offline link says which they are and how they are corrupted.
    offline = run_offline(Link(parse_netem(words), seed=5),
                          [(i * 1.0, i.to_bytes(4, "big") + bytes(100)) for i in range(300)])
    certain = Counter(d for _, d in offline.deliveries[:20])
    process, (port,) = start_emulate(["--listen", "0", "--forward", target, "--seed", "5", "--event-log", str(log), "--", *words])
    flood(process, port, 300)
    first = receive_until(sink, lambda got: not certain - Counter(got), DEADLINE, "the first run's certain datagrams")
    stop_emulate(process)  # what is still queued now (if the run was slow) stays queued in the log and in its replay
    first += read_queued(sink)
    records, arrivals, departures = forward_records(log)
    assert first == [as_sent(arrivals[r["packet"]]) for r in departures]  # what left, as the log says, in order
    process, (port,) = start_emulate(["--listen", "0", "--forward", target, "--replay", str(log), "--event-log", str(again)])
    flood(process, port, 300)
    second = receive_count(sink, len(first), DEADLINE, "the replay's datagrams")
    stderr = stop_emulate(process)
    second += read_queued(sink)
    # the same datagrams (the queue drops too, whatever the timing of the second run), corrupted
    # alike, each held as logged after its arrival in this run (which orders them as they left)
    _, arrivals_again, _ = forward_records(again)
    held = {r["packet"]: (r["send"] - arrivals[r["packet"]]["t"], r["seq"]) for r in departures}
    leaving = sorted(held, key=lambda packet: (arrivals_again[packet]["t"] + held[packet][0], held[packet][1]))
    assert second == [as_sent(arrivals[packet]) for packet in leaving]
    assert sorted(second) == sorted(first)
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
    process, (port,) = start_emulate(["--listen", "[::1]:0", "--forward", f"[::1]:{sink.getsockname()[1]}", "--seed", "1",
                           "--event-log", str(log), "--", "rate", "10kbit"])
    flood(process, port, 3, socket.AF_INET6, "::1", 996)  # 1062 bytes: 849.6 ms each at 1250 B/s, so they queue
    stop_emulate(process)  # their arrivals are logged: nothing needs to leave
    sends = [json.loads(line)["send"] for line in log.read_text().splitlines()[1:] if '"event":"in"' in line]
    assert [b - a for a, b in zip(sends, sends[1:])] == [849_600_000, 849_600_000]
