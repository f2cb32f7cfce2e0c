"""Packets of a pcap/pcapng file, reduced to what `netsem inspect` needs.

The file is read one packet at a time (a capture may be large) by `emulator.capture_reader`,
which raises `CaptureError` after the last good packet of a damaged file instead of stopping
quietly. Every packet yields a `CapturedPacket`, UDP or not, so that nothing in the file goes
uncounted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from emulator.capture_reader import decode_udp, read_capture


@dataclass(frozen=True)
class CapturedPacket:
    number: int  # 1-based, as Wireshark counts
    time: float  # seconds since the epoch (or the emulator's clock); 0.0 when the file records none
    comment: str  # the pcapng per-packet comments joined with "; " ("" when none)
    dport: int | None  # None: not UDP
    udp_payload: bytes | None  # None: not UDP
    interface: str | None = None  # the pcapng interface's name ("ingress", "egress"); None when unnamed


def read_packets(path: str | Path) -> Iterator[CapturedPacket]:
    """Every packet of the capture, in file order; CaptureError after the last good one if the file is damaged."""
    for record in read_capture(path):
        udp = decode_udp(record.link_type, record.data)
        yield CapturedPacket(
            number=record.number,
            time=0.0 if record.time_ns is None else record.time_ns / 1e9,  # Wireshark shows the epoch, too
            comment="; ".join(record.comments),
            dport=None if udp is None else udp.dport,
            udp_payload=None if udp is None else udp.payload,
            interface=record.interface_name,
        )
