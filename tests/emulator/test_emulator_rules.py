"""Per-flow rules: parsing, selection, and two receivers on different ports through one emulator."""

from __future__ import annotations

import itertools
import json
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulator.grammar import parse_netem
from emulator.link import Link
from emulator.offline import run_offline
from emulator.rules import RuleError, RuleSet, parse_rule

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from netsem.cli import main; main()", "emulate"]
sys.path.insert(0, str(REPO / "tools"))
from processes import start_emulate, stop_emulate, wait_drained  # noqa: E402

DEADLINE = 30.0  # seconds without progress before a wait fails: only a broken run reaches it


def test_rule_parsing():
    rule = parse_rule("src 10.0.0.0/8 sport 4000-4999 dport 5000: loss 5% delay 1ms")
    assert rule.sports == (4000, 4999) and rule.dports == (5000, 5000) and rule.direction is None
    assert rule.spec.latency_ns == 1_000_000 and rule.match_text == "src 10.0.0.0/8 sport 4000-4999 dport 5000"
    assert parse_rule("src ::1/128: delay 1ms").src.version == 6  # the match ends at ': ', not inside ::1
    assert parse_rule("reverse dport 6000: delay 5ms").direction == "reverse"
    assert parse_rule("default:").default and parse_rule("default:").spec.words == ()
    for text, message in [("dport 5000 loss 5%", "needs 'MATCH: NETEM WORDS'"), ("dport x: loss 1%", "dport needs"),
                          ("dport 1 dport 2: loss 1%", "given twice"), ("color red: loss 1%", "unknown match word"),
                          ("default dport 1: loss 1%", "takes no other"), (": loss 1%", "matches nothing"),
                          ("dport 1: loss 200%", 'Illegal "loss percent"')]:
        with pytest.raises(RuleError, match=message):
            parse_rule(text)


def test_first_matching_rule_wins_per_direction():
    rules = [parse_rule("dport 5000: loss 5%"), parse_rule("src 10.0.0.0/8: delay 1ms"),
             parse_rule("reverse: delay 2ms")]
    forward = [object(), object(), None]
    reverse = [object(), None, object()]
    default_forward, default_reverse = object(), object()
    rule_set = RuleSet(rules, {i: (forward[i], reverse[i]) for i in range(3)}, default_forward, default_reverse)
    assert rule_set.forward_link(("10.1.1.1", 9), ("127.0.0.1", 5000)) is forward[0]
    assert rule_set.forward_link(("10.1.1.1", 9), ("127.0.0.1", 6000)) is forward[1]
    assert rule_set.forward_link(("192.0.2.1", 9), ("127.0.0.1", 6000)) is default_forward
    assert rule_set.reverse_link(("10.1.1.1", 9), ("127.0.0.1", 5000)) is reverse[0]
    assert rule_set.reverse_link(("10.1.1.1", 9), ("127.0.0.1", 6000)) is reverse[2]  # rule 1 has no reverse link
    assert [name for name, _ in rule_set.named_links()] == [
        "forward", "reverse", "rule 0/forward", "rule 0/reverse", "rule 1/forward", "rule 2/reverse"]


def sink() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def drain(sinks: dict[str, socket.socket], received: dict[str, list]) -> None:
    """Read what the sinks hold now, each datagram with the time it was read."""
    for name, sock in sinks.items():
        while True:
            try:
                received[name].append((time.monotonic(), sock.recv(2048)))
            except BlockingIOError:
                break


def test_two_receivers_on_different_ports_each_see_their_own_impairment(tmp_path):
    """Issue 21: per-flow rules over sockets, two receivers on different ports, measured."""
    n, seed = 1000, 77
    sinks = {"a": sink(), "b": sink()}
    port_a, port_b = sinks["a"].getsockname()[1], sinks["b"].getsockname()[1]
    log = tmp_path / "rules.jsonl"
    process, (listen_a, listen_b) = start_emulate(
        ["--listen", "0", "--forward", f"127.0.0.1:{port_a}", "--forward", f"0=127.0.0.1:{port_b}", "--seed", str(seed),
         "--rule", f"dport {port_a}: loss 20%", "--rule", f"dport {port_b}: delay 30ms", "--event-log", str(log)],
        routes=2)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    received: dict[str, list] = {"a": [], "b": []}
    sent_at = {}
    # A's loss is known in advance (the offline replay of its link): wait for exactly what reaches it
    offline = run_offline(Link(parse_netem("loss 20%"), seed=seed, stream="rule 0/forward"),
                          [(i * 1e-3, i.to_bytes(4, "big")) for i in range(n)])
    expected_a = [int.from_bytes(d, "big") for _, d in offline.deliveries]
    reaching_a = list(itertools.accumulate(i in set(expected_a) for i in range(n)))  # among 0..i
    window = 64  # datagrams on their way to each sink, at most: paced by what arrived, not by the clock
    try:
        sent = 0
        while len(received["a"]) < len(expected_a) or len(received["b"]) < n:
            while sent < n and reaching_a[sent] <= len(received["a"]) + window and sent < len(received["b"]) + window:
                payload = sent.to_bytes(4, "big") + bytes(60)
                sent_at[sent] = time.monotonic()
                sender.sendto(payload, ("127.0.0.1", listen_a))
                sender.sendto(payload, ("127.0.0.1", listen_b))
                sent += 1
            assert select.select(list(sinks.values()), [], [], DEADLINE)[0], (  # a deadline, not a quiet period
                f"nothing arrived within {DEADLINE} s: A {len(received['a'])} of {len(expected_a)}, "
                f"B {len(received['b'])} of {n}")
            drain(sinks, received)
        wait_drained(listen_a, DEADLINE)  # B got all n, so all were sent: the emulator has read A's lost tail too
    finally:
        stderr = stop_emulate(process)
    drain(sinks, received)  # nothing more may have come
    got_a = [int.from_bytes(d[:4], "big") for _, d in received["a"]]
    got_b = [int.from_bytes(d[:4], "big") for _, d in received["b"]]
    assert got_a == expected_a  # A: its own loss, decision for decision
    assert 0.16 < 1 - len(got_a) / n < 0.24  # 20 % (4 standard errors: 0.05)
    assert sorted(got_b) == list(range(n))  # B: nothing lost
    delays_b = [arrived - sent_at[int.from_bytes(d[:4], "big")] for arrived, d in received["b"]]
    assert min(delays_b) >= 0.030  # B: every datagram held its 30 ms
    records = [json.loads(line) for line in log.read_text().splitlines()[1:]]
    held = {r["link"]: set() for r in records}
    for r in records:
        if r["event"] == "in" and "send" in r:
            held[r["link"]].add(r["send"] - r["t"])
    assert held["rule 0/forward"] == {0} and held["rule 1/forward"] == {30_000_000}
    assert "rule 0/forward: received 1000" in stderr and "rule 1/forward: received 1000, sent 1000" in stderr


def test_cli_rule_errors_are_one_line():
    base = ["--listen", "0", "--forward", "127.0.0.1:9"]
    for args, message in [(["--rule", "dport x: loss 1%"], "dport needs"),
                          (["--rule", "default: loss 1%", "--", "delay", "1ms"], "both say what unmatched flows get"),
                          (["--forward", "127.0.0.1:10"], "give one --forward HOST:PORT for --listen")]:
        result = subprocess.run([*CLI, *base, *args], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr
