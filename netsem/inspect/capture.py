"""Packets of a pcap/pcapng file, reduced to what `netsem inspect` needs.

scapy reads the file one packet at a time (a capture may be large); every packet yields a
`CapturedPacket`, UDP or not, so that nothing in the file goes uncounted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scapy.layers.inet import UDP
from scapy.utils import PcapReader

import netsem.inspect.layer  # noqa: F401  (binds NetsemHeader to UDP on the default port)


@dataclass(frozen=True)
class CapturedPacket:
    number: int  # 1-based, as Wireshark counts
    time: float  # seconds since the epoch (or the emulator's clock)
    comment: str  # the pcapng per-packet comments joined with "; " ("" when none)
    dport: int | None  # None: not UDP
    udp_payload: bytes | None  # None: not UDP


def _comment(packet) -> str:
    comments = getattr(packet, "comments", None) or []
    return "; ".join(c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c) for c in comments)


def _udp_payload(udp: UDP) -> bytes:
    """The UDP payload as captured, not as scapy would rebuild it from its layers."""
    raw = bytes(udp.original) if udp.original else bytes(udp)
    end = udp.len if udp.len is not None and 8 <= udp.len <= len(raw) else len(raw)
    return raw[8:end]


def read_packets(path: str | Path) -> Iterator[CapturedPacket]:
    """Every packet of the capture, in file order."""
    with PcapReader(str(path)) as reader:
        for number, packet in enumerate(reader, start=1):
            udp = packet.getlayer(UDP)
            yield CapturedPacket(
                number=number,
                time=float(packet.time),
                comment=_comment(packet),
                dport=None if udp is None else int(udp.dport),
                udp_payload=None if udp is None else _udp_payload(udp),
            )
