"""Run a `Link` on a virtual clock: the offline twin of the proxy (used by `netsem simulate`).

The driver makes the same calls in the same pattern as the proxy: at each arrival it first
releases everything due up to that time (calling `due` at each deadline), then `submit`s
the datagram and calls `due` at once; after the last arrival it drains the link. So for the
same seed and arrival order the fates are those the proxy produces.
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
    clock = float("-inf")

    def release_until(limit: float) -> None:
        nonlocal clock
        while True:
            deadline = link.next_deadline()
            if deadline is None or deadline > limit:
                return
            clock = max(clock, deadline)
            released = link.due(clock)
            deliveries.extend((clock, datagram) for datagram in released)
            fates.extend(link.take_fates())
            if not released and link.next_deadline() == deadline:
                raise RuntimeError(f"link made no progress at t={clock}")  # a Link invariant broke

    for time, datagram in arrivals:
        if time < clock:
            raise ValueError(f"arrival times must not decrease: {time} after {clock}")
        release_until(time)
        clock = time
        link.submit(datagram, time)
        deliveries.extend((time, d) for d in link.due(time))
        fates.extend(link.take_fates())
    release_until(float("inf") if until is None else until)
    return OfflineResult(deliveries, fates, link.counters)
