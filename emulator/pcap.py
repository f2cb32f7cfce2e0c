"""pcapng capture of what the emulator saw and did, one Ethernet/IP/UDP frame per fate record.

Arrivals are written as client -> emulator packets and departures as emulator -> target
packets, each with a per-packet comment of its fate ("dropped: gemodel bad state",
"corrupted bit 517", "delayed 23.4 ms", "reordered", "duplicate", "queue full"); Wireshark
shows it as `frame.comment`. Timestamps are the emulator's clock plus `clock_offset` (the
proxy sets it so captures carry wall-clock dates; offline runs keep virtual time).
scapy is imported only here, and only when a capture is opened.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from emulator.fate import ARRIVAL, Fate

Endpoint = tuple[str, int]
_MAC = "02:00:00:00:00:01"  # locally administered


class CaptureWriter:
    """Writes fate records (or raw datagrams) to a pcapng file; use as a context manager."""

    def __init__(self, path: str | Path, *, clock_offset: float = 0.0) -> None:
        from scapy.utils import PcapNgWriter

        self.path = Path(path)
        self.clock_offset = clock_offset
        self._writer = PcapNgWriter(str(self.path))

    def write(self, datagram: bytes, time: float, src: Endpoint, dst: Endpoint, comment: str) -> None:
        """One UDP datagram from `src` to `dst` at `time` (emulator clock) with a comment."""
        from scapy.layers.inet import IP, UDP
        from scapy.layers.inet6 import IPv6
        from scapy.layers.l2 import Ether
        from scapy.packet import Raw

        # Ethernet framing keeps one link type for IPv4 and IPv6 alike (the MACs are placeholders).
        network = IPv6 if ":" in src[0] else IP
        frame = Ether(src=_MAC, dst=_MAC) / network(src=src[0], dst=dst[0]) / UDP(sport=src[1], dport=dst[1])
        packet = Ether(bytes(frame / Raw(datagram)))  # lengths and checksums fixed, as if sniffed
        packet.time = self.clock_offset + time
        packet.comment = comment.encode()
        self._writer.write(packet)

    def write_fates(self, fates: Iterable[Fate], *, arrival: tuple[Endpoint, Endpoint],
                    departure: tuple[Endpoint, Endpoint]) -> None:
        """Fate records of one link: arrivals as `arrival` (src, dst), departures as `departure`."""
        for fate in fates:
            src, dst = arrival if fate.direction == ARRIVAL else departure
            self.write(fate.datagram, fate.time, src, dst, fate.comment)

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
