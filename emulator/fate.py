"""What the emulator did to each packet: fate records and counters.

A `Link` appends one `Fate` when a packet copy arrives (its enqueue decisions) and one when
it leaves (how long it was held, whether it jumped the queue). The proxy turns them into
pcapng comments; the offline driver returns them. Counters are kept separately so a link
that records no fates (the fast path) still reports what happened.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

ARRIVAL: Literal["in"] = "in"
DEPARTURE: Literal["out"] = "out"


@dataclass(frozen=True, slots=True)
class Fate:
    """One packet copy at one moment on the emulator's clock.

    `packet` is the arrival index of the datagram on its link (0, 1, ...); `copy` is 0 for
    the datagram itself and 1 for netem's duplicate. `datagram` is the payload as it arrived
    ("in") or as it left ("out", after corruption). `notes` are human phrases such as
    "dropped: gemodel bad state", "corrupted bit 517", "delayed 23.4 ms", "reordered",
    "duplicate", "queue full".
    """

    time: float
    packet: int
    copy: int
    direction: Literal["in", "out"]
    datagram: bytes
    notes: tuple[str, ...]
    tag: object = None  # what the driver submitted with the datagram (the proxy: its client)

    @property
    def comment(self) -> str:
        """The pcapng comment: the notes joined, or what happened when nothing special did."""
        if self.notes:
            return "; ".join(self.notes)
        return "queued" if self.direction == ARRIVAL else "sent"


@dataclass
class LinkCounters:
    """Per-link totals, as printed on exit and written to the stats JSON."""

    received: int = 0
    sent: int = 0
    dropped: Counter = field(default_factory=Counter)  # cause -> packets
    corrupted: int = 0
    duplicated: int = 0
    reordered: int = 0
    delayed: int = 0
    queue_dropped: int = 0

    def as_dict(self) -> dict:
        return {
            "received": self.received,
            "sent": self.sent,
            "dropped": sum(self.dropped.values()),
            "dropped_by_cause": dict(sorted(self.dropped.items())),
            "corrupted": self.corrupted,
            "duplicated": self.duplicated,
            "reordered": self.reordered,
            "delayed": self.delayed,
            "queue_dropped": self.queue_dropped,
        }
