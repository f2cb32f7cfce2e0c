"""Run a `Link` on a virtual clock: the offline twin of the proxy (used by `netsem simulate`).

The driver makes the same calls in the same pattern as the proxy: at each arrival it first
releases everything due up to that time (calling `due` at each deadline), then `submit`s
the datagram and calls `due` at once; after the last arrival it drains the link. So for the
same seed and arrival order the fates are those the proxy produces. The clock is the link's
integer nanoseconds: arrival times in seconds are converted once (`round(t * 1e9)`), so a
departure due at the instant of an arrival leaves before it, exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from emulator.fate import Fate, LinkCounters
from emulator.link import Link


@dataclass
class OfflineResult:
    """What left the link and when, and what happened to every packet."""

    deliveries: list[tuple[float, bytes]]
    fates: list[Fate]
    counters: LinkCounters


def run_offline(link: Link, arrivals: Iterable[tuple[float, bytes]], *, until: float | None = None) -> OfflineResult:
    """Feed `(time, datagram)` arrivals (times non-decreasing) through `link`.

    Runs until the link is empty, or only up to `until` if given (a queue that never
    empties, e.g. a rate below the offered load, would otherwise run as long as it takes).
    """
    deliveries: list[tuple[float, bytes]] = []
    fates: list[Fate] = []
    clock: int | None = None

    def release_until(limit: int | None) -> None:
        nonlocal clock
        while True:
            deadline = link.next_deadline_ns()
            if deadline is None or (limit is not None and deadline > limit):
                return
            clock = deadline if clock is None else max(clock, deadline)
            released = link.due_ns(clock)
            deliveries.extend((clock / 1e9, datagram) for datagram in released)
            fates.extend(link.take_fates())
            if not released and link.next_deadline_ns() == deadline:
                raise RuntimeError(f"link made no progress at t={clock} ns")  # a Link invariant broke

    for time, datagram in arrivals:
        now = round(time * 1e9)
        if clock is not None and now < clock:
            raise ValueError(f"arrival times must not decrease: {time} after {clock / 1e9}")
        release_until(now)
        clock = now
        link.submit_ns(datagram, now)
        seconds = now / 1e9
        deliveries.extend((seconds, d) for d in link.due_ns(now))
        fates.extend(link.take_fates())
    release_until(None if until is None else round(until * 1e9))
    return OfflineResult(deliveries, fates, link.counters)
