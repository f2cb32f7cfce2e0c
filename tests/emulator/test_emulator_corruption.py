"""Corruption modes (payload, frame, frame-checksum) and the header bytes of IPv4 and IPv6."""

from __future__ import annotations

import math

import pytest

from emulator.grammar import parse_netem
from emulator.link import (
    CAUSE_CORRUPT_CHECKSUM,
    CAUSE_CORRUPT_HEADER,
    ETHERNET_IPV4_UDP_HEADER_BYTES,
    ETHERNET_IPV6_UDP_HEADER_BYTES,
    Link,
)
from emulator.offline import run_offline

PAYLOAD = 100


def corrupt_all(mode: str, n: int, header_bytes: int = ETHERNET_IPV4_UDP_HEADER_BYTES, seed: int = 3):
    link = Link(parse_netem(f"corrupt 100% {mode}"), seed=seed, header_bytes=header_bytes, record_fates=True)
    payloads = [bytes([i % 251]) * PAYLOAD for i in range(n)]
    result = run_offline(link, [(i * 1e-4, p) for i, p in enumerate(payloads)])
    return result, payloads


def flipped_bits(a: bytes, b: bytes) -> int:
    return sum(bin(x ^ y).count("1") for x, y in zip(a, b))


def test_payload_mode_is_the_default_and_delivers_one_flipped_bit():
    result, payloads = corrupt_all("payload", 2000)
    assert len(result.deliveries) == 2000 and result.counters.corrupted == 2000
    assert all(flipped_bits(sent, original) == 1 for (_, sent), original in zip(result.deliveries, payloads))


@pytest.mark.parametrize("header_bytes", [ETHERNET_IPV4_UDP_HEADER_BYTES, ETHERNET_IPV6_UDP_HEADER_BYTES])
def test_frame_mode_loses_the_header_share_and_delivers_payload_hits(header_bytes):
    n = 40_000
    result, payloads = corrupt_all("frame", n, header_bytes)
    share = header_bytes / (header_bytes + PAYLOAD)  # 0.296 over IPv4, 0.383 over IPv6
    lost = result.counters.dropped[CAUSE_CORRUPT_HEADER]
    assert abs(lost / n - share) < 4 * math.sqrt(share * (1 - share) / n)  # 4 standard errors
    assert lost + len(result.deliveries) == n and result.counters.corrupted == n
    by_packet = {f.packet: f for f in result.fates if f.direction == "out" and not f.dropped}
    assert all(flipped_bits(fate.datagram, payloads[packet]) == 1 for packet, fate in by_packet.items())
    header_hits = [f for f in result.fates if f.direction == "in" and f.header_bit >= 0]
    assert len(header_hits) == lost and all(0 <= f.header_bit < header_bytes * 8 for f in header_hits)
    assert any("the receiver's stack discards it" in f.comment for f in result.fates if f.direction == "out")


def test_frame_checksum_mode_discards_every_corrupted_datagram():
    result, _ = corrupt_all("frame-checksum", 5000)
    assert result.deliveries == []
    assert sum(result.counters.dropped.values()) == 5000
    assert set(result.counters.dropped) == {CAUSE_CORRUPT_HEADER, CAUSE_CORRUPT_CHECKSUM}


def test_a_corrupted_header_still_takes_its_place_in_the_queue_and_on_the_wire():
    # The frame travels and is discarded by the receiver: it is counted against limit and rate.
    link = Link(parse_netem("corrupt 100% frame-checksum rate 1mbit limit 3"), seed=1)
    for _ in range(5):
        link.submit(bytes(1208), 0.0)  # 1250 bytes with IPv4 headers: 10 ms each at 125 000 B/s
    assert link.queued == 3 and link.counters.queue_dropped == 2
    assert link.next_deadline_ns() == 10_000_000


@pytest.mark.parametrize("header_bytes, expected_ns", [(42, 10_000_000), (62, 10_160_000)])
def test_rate_counts_the_header_bytes_of_the_family(header_bytes, expected_ns):
    link = Link(parse_netem("rate 1mbit"), seed=0, header_bytes=header_bytes)
    link.submit_ns(bytes(1208), 0)
    assert link.next_deadline_ns() == expected_ns  # (1208 + 62) bytes / 125 000 B/s = 10.16 ms


def test_header_bytes_can_be_given_per_datagram():
    link = Link(parse_netem("rate 1mbit"), seed=0)
    link.submit_ns(bytes(1208), 0, header_bytes=ETHERNET_IPV6_UDP_HEADER_BYTES)
    link.submit_ns(bytes(1208), 0)
    assert [link.next_deadline_ns(), len(link.due_ns(10_160_000))] == [10_160_000, 1]
    assert link.next_deadline_ns() == 20_160_000
