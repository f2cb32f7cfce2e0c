"""`netsem trace from-pcap`: traces for the emulator made from a capture of a real transfer.

    netsem trace from-pcap transfer.pcapng --port 47474 --out link.trace               # Mahimahi link trace
    netsem trace from-pcap em.pcapng --kind packets --out path.ptrace                  # per-packet loss/delay

`--kind link` (default): what arrived at the receiver (UDP to `--port`, or an emulator
capture's `egress` interface) during a transfer that kept the path busy becomes a Mahimahi
trace with the transfer's own rate (`emulator.traces.opportunities_from_arrivals`). Bytes
count as the emulator counts them for `rate`: UDP payload + 42 (IPv4) or 62 (IPv6).

`--kind packets`: each datagram sent (UDP to `--sent-port`, or an emulator capture's
`ingress`) is paired with the first not yet paired datagram with the same bytes received
(UDP to `--port`, or `egress`); its delay is the difference, and a datagram never received
(or received changed, e.g. corrupted) is `lost`.
"""

from __future__ import annotations

import sys
from collections import defaultdict, deque
from pathlib import Path

import click

from emulator.capture_reader import CaptureError, decode_udp, read_capture
from emulator.link import ETHERNET_IPV4_UDP_HEADER_BYTES, ETHERNET_IPV6_UDP_HEADER_BYTES
from emulator.traces import (
    MTU_BYTES,
    TraceError,
    format_link_trace,
    format_packet_trace,
    opportunities_from_arrivals,
)

INGRESS, EGRESS = "ingress", "egress"  # the emulator capture's interfaces (emulator/pcap.py)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def trace() -> None:
    """Make link and packet traces for `link-trace` / `packet-trace`."""


@trace.command("from-pcap")
@click.argument("capture", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="The trace file to write.")
@click.option("--kind", type=click.Choice(["link", "packets"]), default="link", show_default=True,
              help="link: a Mahimahi delivery-opportunity trace; packets: per-packet loss and delay.")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="The receiver's UDP port (default: the emulator capture's egress interface).")
@click.option("--sent-port", type=click.IntRange(0, 65535), default=None,
              help="--kind packets: the UDP port datagrams were sent to (default: the capture's ingress interface).")
@click.option("--bytes", "opportunity_bytes", type=click.IntRange(min=1), default=MTU_BYTES, show_default=True,
              help="--kind link: bytes one delivery opportunity carries.")
def from_pcap(capture: str, out_path: str, kind: str, port: int | None, sent_port: int | None,
              opportunity_bytes: int) -> None:
    """Make a trace from a pcap/pcapng CAPTURE of a real transfer."""
    try:
        received, sent = _datagrams(capture, port, sent_port, need_sent=kind == "packets")
        if kind == "link":
            text = format_link_trace(opportunities_from_arrivals(
                [(time, len(payload) + header) for time, payload, header in received], opportunity_bytes))
        else:
            text = format_packet_trace(pair_packets(sent, received), source=Path(capture).name)
    except (CaptureError, OSError, TraceError) as error:
        click.echo(f"netsem trace: error: {error}", err=True)
        sys.exit(2)
    Path(out_path).write_text(text)
    lines = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    click.echo(f"netsem trace: wrote {lines} lines to {out_path}", err=True)


def _datagrams(capture: str, port: int | None, sent_port: int | None, *, need_sent: bool):
    """(received, sent): (time ns, payload, header bytes) per UDP datagram, in capture order."""
    received, sent = [], []
    for record in read_capture(capture):
        udp = decode_udp(record.link_type, record.data)
        if udp is None or record.time_ns is None:
            continue
        header = ETHERNET_IPV6_UDP_HEADER_BYTES if ":" in udp.dst else ETHERNET_IPV4_UDP_HEADER_BYTES
        item = (record.time_ns, udp.payload, header)
        dropped = any(comment.startswith("dropped") for comment in record.comments)
        if port is not None and udp.dport == port or port is None and record.interface_name == EGRESS and not dropped:
            received.append(item)
        elif sent_port is not None and udp.dport == sent_port or sent_port is None and record.interface_name == INGRESS:
            sent.append(item)
    if not received:
        raise TraceError(f"{capture}: no received datagrams (give --port, or use an emulator capture)")
    if need_sent and not sent:
        raise TraceError(f"{capture}: no sent datagrams (give --sent-port, or use an emulator capture)")
    return received, sent


def pair_packets(sent, received) -> list[tuple[int, int | None]]:
    """(send time since the first send, delay or None) per sent datagram, paired by identical bytes."""
    waiting: dict[bytes, deque[int]] = defaultdict(deque)
    for time, payload, _ in received:
        waiting[payload].append(time)
    start = sent[0][0]
    packets = []
    for time, payload, _ in sent:
        arrivals = waiting.get(payload)
        while arrivals and arrivals[0] < time:  # an earlier copy of the same bytes, not this one's
            arrivals.popleft()
        packets.append((time - start, arrivals.popleft() - time if arrivals else None))
    return packets
