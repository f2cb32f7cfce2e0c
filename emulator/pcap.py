"""pcapng capture of what the emulator saw and did, one Ethernet/IP/UDP frame per datagram.

Two interfaces: "ingress" holds what arrived at the emulator (client -> emulator), "egress"
what it sent on (emulator -> target). Each packet carries a comment of its fate ("dropped:
gemodel bad state", "corrupted bit 517", "delayed 23.4 ms", "reordered", "duplicate", "queue
full"); Wireshark shows it as `frame.comment`. `write` takes the file's integer nanoseconds
(the proxy passes wall-clock time); `write_fates` takes fate records timed on
the emulator's clock (integer nanoseconds) and adds `clock_offset` (0 by default: offline
runs keep virtual time).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from emulator.fate import ARRIVAL, Fate
from emulator.pcapng import Endpoint, PcapngWriter

INGRESS = 0  # interface index of what arrived at the emulator
EGRESS = 1  # interface index of what the emulator sent on


class CaptureWriter(PcapngWriter):
    """A pcapng file with the emulator's two interfaces; `write` one datagram or `write_fates` a batch.

    `write(datagram, time_ns, src, dst, comment, interface)` takes nanoseconds since the epoch
    and INGRESS or EGRESS. Use as a context manager, or call `close`.
    """

    def __init__(self, path: str | Path, *, clock_offset: float = 0.0) -> None:
        super().__init__(path, interfaces=("ingress", "egress"))
        self.clock_offset = clock_offset

    @property
    def clock_offset(self) -> float:
        """Seconds added to the emulator's clock to date its records; kept as `clock_offset_ns`."""
        return self.clock_offset_ns / 1e9

    @clock_offset.setter
    def clock_offset(self, seconds: float) -> None:
        self.clock_offset_ns = round(seconds * 1e9)

    def write_fates(self, fates: Iterable[Fate], *, arrival: tuple[Endpoint, Endpoint],
                    departure: tuple[Endpoint, Endpoint]) -> None:
        """Fate records of one link: arrivals as `arrival` (src, dst) on ingress, departures as `departure` on egress."""
        offset = self.clock_offset_ns
        for fate in fates:
            if fate.direction == ARRIVAL:
                self.write(fate.datagram, offset + fate.time_ns, *arrival, fate.comment, INGRESS)
            else:
                self.write(fate.datagram, offset + fate.time_ns, *departure, fate.comment, EGRESS)
