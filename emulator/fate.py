"""What the emulator did to each packet: fate records and counters.

A `Link` appends one `Fate` when a packet copy arrives (its enqueue decisions) and one when
it leaves or is discarded at departure. A record holds the decisions as fields (the loss
cause, the flipped bit, the scheduled time, ...), so the event log and its replay read them
exactly; `notes` and `comment` turn them into the phrases of pcapng comments only when asked
(the fast path of an event log never builds strings it does not write). Counters are kept
separately so a link that records no fates (the fast path) still reports what happened.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

ARRIVAL: Literal["in"] = "in"
DEPARTURE: Literal["out"] = "out"

QUEUE_FULL = "queue full"


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~2 us here, once per packet and event
class Fate:
    """One packet copy at one moment on the emulator's clock (integer nanoseconds).

    `packet` is the arrival index of the datagram on its link (0, 1, ...); `copy` is 0 for
    the datagram itself and 1 for netem's duplicate. `datagram` is the payload as it arrived
    ("in") or as it left ("out", after corruption).

    Arrival ("in"): `cause` is why it was dropped on the spot (a loss cause or "queue full"),
    `cancelled_duplicate` the loss cause that took the extra copy instead, `duplicated` that a
    copy was made (it has its own record; with "queue full" it was dropped too), `corrupted`
    with `bit` (the payload bit flipped) or `header_bit` (a bit of the Ethernet/IP/UDP headers
    hit in a frame corruption mode), `reordered` (sent ahead of the queue) and `send_ns`
    (netem's time_to_send).

    Departure ("out"): `cause` is the counter of why it was discarded instead of sent ("stage
    NAME", a corrupted header), `arrived_ns` and `send_ns` when it arrived and was scheduled,
    `sequence` its place among the link's departures, `departure_notes` what the stages said
    (ending with "dropped: ..." when it was discarded).

    `draws`, when the link counts them, is the position of each random stream after the
    decision: the values each has given so far, in the order of the link's `draw_names`.
    """

    time_ns: int
    packet: int
    copy: int
    direction: Literal["in", "out"]
    datagram: bytes
    tag: object = None  # what the driver submitted with the datagram (the proxy: its client)
    cause: str | None = None
    cancelled_duplicate: str | None = None
    duplicated: bool = False
    corrupted: bool = False
    bit: int = -1
    header_bit: int = -1
    reordered: bool = False
    send_ns: int | None = None
    arrived_ns: int | None = None
    sequence: int = -1
    departure_notes: tuple[str, ...] = ()
    draws: tuple[int, ...] | None = None

    @property
    def time(self) -> float:
        """The record's time in seconds on the emulator's clock."""
        return self.time_ns / 1e9

    @property
    def dropped(self) -> bool:
        return self.cause is not None

    @property
    def notes(self) -> tuple[str, ...]:
        """Human phrases such as "dropped: gemodel bad state", "corrupted bit 517", "delayed 23.4 ms"."""
        return _arrival_notes(self) if self.direction == ARRIVAL else _departure_notes(self)

    @property
    def comment(self) -> str:
        """The pcapng comment: the notes joined, or what happened when nothing special did."""
        notes = self.notes
        if notes:
            return "; ".join(notes)
        return "queued" if self.direction == ARRIVAL else "sent"


def _corruption_note(fate: Fate) -> str:
    if fate.header_bit >= 0:
        return f"corrupted header bit {fate.header_bit}"
    if fate.bit >= 0:
        return f"corrupted bit {fate.bit}"
    return "corrupt: empty datagram, nothing flipped"


def _arrival_notes(fate: Fate) -> tuple[str, ...]:
    if fate.cause is not None and fate.cause != QUEUE_FULL:
        return (f"dropped: {fate.cause}",)
    notes = []
    if fate.cancelled_duplicate is not None:
        notes.append(f"duplicate cancelled by {fate.cancelled_duplicate}")
    if fate.corrupted:
        notes.append(_corruption_note(fate))
    if fate.cause == QUEUE_FULL:
        notes.append(QUEUE_FULL)
        return tuple(notes)
    if fate.copy == 1:
        notes.append("duplicate")
    if fate.duplicated:
        notes.append("duplicated")
    if fate.reordered:
        notes.append("reordered: sent ahead of the queue")
    elif fate.send_ns is not None and fate.send_ns > fate.time_ns:
        notes.append(f"delay {(fate.send_ns - fate.time_ns) / 1e6:.1f} ms")
    return tuple(notes)


def _departure_notes(fate: Fate) -> tuple[str, ...]:
    if fate.cause is not None:
        return fate.departure_notes
    notes = []
    if fate.send_ns is not None and fate.arrived_ns is not None and fate.send_ns > fate.arrived_ns:
        notes.append(f"delayed {(fate.send_ns - fate.arrived_ns) / 1e6:.1f} ms")
    if fate.reordered:
        notes.append("reordered")
    if fate.copy:
        notes.append("duplicate")
    notes.extend(fate.departure_notes)
    return tuple(notes)


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
