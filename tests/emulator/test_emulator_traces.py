"""Trace replay: Mahimahi link traces as the rate, packet traces, and traces made from captures."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from emulator.grammar import parse_netem
from emulator.link import Link
from emulator.offline import run_offline
from emulator.pcap import CaptureWriter
from emulator.trace_cli import trace
from emulator.traces import (
    CAUSE_LINK_TRACE_ENDED,
    CAUSE_PACKET_TRACE_ENDED,
    CAUSE_PACKET_TRACE_LOST,
)

PAYLOAD = 1200
WIRE = PAYLOAD + 42


def mahimahi_trace(path) -> float:
    """A short trace in Mahimahi's own format (one integer millisecond per line, one line per
    1500-byte delivery opportunity): two per ms for 40 ms, a 30 ms outage, one per ms for 30 ms.
    Returns its average rate in bytes/s."""
    lines = [ms for ms in range(1, 41) for _ in range(2)] + list(range(71, 101))
    path.write_text("".join(f"{ms}\n" for ms in lines))
    return len(lines) * 1500 / 0.100


def saturate(words: list[str], seconds: float, spacing: float = 0.2e-3):
    link = Link(parse_netem(["limit", "1000000", *words]), seed=0)
    n = int(seconds / spacing)
    return run_offline(link, [(i * spacing, bytes(PAYLOAD)) for i in range(n)], until=seconds)


def test_mahimahi_trace_replays_at_its_average_rate(tmp_path):
    path = tmp_path / "short.up"
    average = mahimahi_trace(path)  # 1.65 MB/s, offered 6.2 MB/s
    result = saturate(["link-trace", str(path)], 2.0)  # 20 repetitions
    delivered = len(result.deliveries) * WIRE / 2.0
    assert delivered == pytest.approx(average, rel=0.02)  # issue 21: within 2 %
    assert parse_netem(["link-trace", str(path)]).link_trace.average_bytes_per_s == average


def test_mahimahi_trace_outage_holds_packets_and_bytes_are_packed(tmp_path):
    path = tmp_path / "short.up"
    mahimahi_trace(path)
    result = saturate(["link-trace", str(path)], 0.2)
    times_ms = sorted({round(t * 1e3, 6) for t, _ in result.deliveries})
    assert not [t for t in times_ms if 40 < t < 71 or 140 < t < 171]  # nothing leaves in the outages
    first_ms = [t for t, _ in result.deliveries if t <= 0.040]
    assert len(first_ms) == (80 * 1500) // WIRE  # 1242-byte packets packed into 1500-byte opportunities


def test_stretch_halves_the_rate_and_once_ends_the_link(tmp_path):
    path = tmp_path / "short.up"
    average = mahimahi_trace(path)
    stretched = saturate(["link-trace", str(path), "stretch", "2"], 2.0)
    assert len(stretched.deliveries) * WIRE / 2.0 == pytest.approx(average / 2, rel=0.02)
    once = saturate(["link-trace", str(path), "once"], 0.3)
    assert max(t for t, _ in once.deliveries) <= 0.100
    assert once.counters.dropped[CAUSE_LINK_TRACE_ENDED] > 0


def test_packet_trace_one_column_replays_each_line(tmp_path):
    path = tmp_path / "p.ptrace"
    path.write_text("# delay or lost per packet\n5\nlost\n1.5\n")
    link = Link(parse_netem(["packet-trace", str(path)]), seed=0)
    result = run_offline(link, [(i * 0.010, bytes([i])) for i in range(6)])
    assert [(round(t * 1e3, 6), d[0]) for t, d in result.deliveries] == [(5, 0), (21.5, 2), (35, 3), (51.5, 5)]
    assert result.counters.dropped[CAUSE_PACKET_TRACE_LOST] == 2
    once = run_offline(Link(parse_netem(["packet-trace", str(path), "once"]), seed=0),
                       [(i * 0.010, bytes([i])) for i in range(5)])
    assert once.counters.dropped[CAUSE_PACKET_TRACE_ENDED] == 2


def test_packet_trace_two_columns_follows_the_clock(tmp_path):
    path = tmp_path / "p.ptrace"
    path.write_text("100 1\n110 lost\n120 3\n")  # period 30 ms: 20 ms span + 10 ms mean spacing
    link = Link(parse_netem(["packet-trace", str(path), "in-order"]), seed=0)
    arrivals = [(t / 1e3, bytes([i])) for i, t in enumerate([0, 5, 10, 19, 25, 31, 40])]
    result = run_offline(link, arrivals)
    assert [(round(t * 1e3, 6), d[0]) for t, d in result.deliveries] == [(1, 0), (6, 1), (28, 4), (32, 5)]


def test_from_pcap_packet_trace_reproduces_a_recorded_path(tmp_path):
    original = Link(parse_netem("delay 10ms 2ms loss 10%"), seed=4, record_fates=True)
    arrivals = [(i * 1e-3, i.to_bytes(4, "big") + bytes(60)) for i in range(500)]
    recorded = run_offline(original, arrivals)
    capture = tmp_path / "em.pcapng"
    with CaptureWriter(capture) as writer:
        writer.write_fates(recorded.fates, arrival=(("10.0.0.1", 5000), ("10.0.0.2", 47000)),
                           departure=(("10.0.0.2", 6000), ("10.0.0.3", 47474)))
    out = tmp_path / "path.ptrace"
    result = CliRunner().invoke(trace, ["from-pcap", str(capture), "--kind", "packets", "--out", str(out)])
    assert result.exit_code == 0, result.output
    replayed = run_offline(Link(parse_netem(["packet-trace", str(out)]), seed=99), arrivals)
    assert replayed.deliveries == recorded.deliveries  # the same datagrams, at the same nanosecond


def test_from_pcap_link_trace_has_the_transfers_rate(tmp_path):
    original = Link(parse_netem("limit 100000 rate 5mbit"), seed=0, record_fates=True)
    recorded = run_offline(original, [(i * 0.5e-3, bytes(PAYLOAD)) for i in range(4000)])  # 19.9 Mbit/s offered
    capture = tmp_path / "transfer.pcapng"
    with CaptureWriter(capture) as writer:
        writer.write_fates(recorded.fates, arrival=(("10.0.0.1", 5000), ("10.0.0.2", 47000)),
                           departure=(("10.0.0.2", 6000), ("10.0.0.3", 47474)))
    out = tmp_path / "link.trace"
    result = CliRunner().invoke(trace, ["from-pcap", str(capture), "--port", "47474", "--out", str(out)])
    assert result.exit_code == 0, result.output
    spec = parse_netem(["link-trace", str(out)])
    assert spec.link_trace.average_bytes_per_s == pytest.approx(625_000, rel=0.02)  # 5 Mbit/s
    replay = saturate(["link-trace", str(out)], 2.0)
    assert len(replay.deliveries) * WIRE / 2.0 == pytest.approx(625_000, rel=0.02)


def test_trace_errors_name_the_line(tmp_path):
    path = tmp_path / "bad.trace"
    path.write_text("5\n3\n")
    result = CliRunner().invoke(trace, ["from-pcap", str(path), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "not a pcap or pcapng file" in result.output
    with pytest.raises(ValueError, match="must not decrease"):
        parse_netem(["link-trace", str(path)])
    path.write_text("0\n0\n")
    with pytest.raises(ValueError, match="nonzero amount of time"):
        parse_netem(["link-trace", str(path)])
