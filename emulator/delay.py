"""netem's `tabledist`: a delay in nanoseconds from latency, jitter and a distribution table.

Kept in integer nanoseconds with the kernel's arithmetic (uniform `rnd mod 2 sigma`, table
lookup `rnd mod N`, rounding half away from zero of `(sigma mod 8192) * t / 8192`), so the
delay distribution, including its quirks (negative delays are possible and not clamped;
the correlation barely acts because only low-order bits are used), is netem's.
"""

from __future__ import annotations

import random

from emulator.correlation import NetemCorrelatedUniform
from emulator.distributions import DIST_SCALE

INT_MAX = 2**31 - 1
LONG_AGO_NS = -(2**62)  # before any clock reading: the first slot is open at once


def tabledist(mu: int, sigma: int, rnd: int, table: tuple[int, ...] | None) -> int:
    """One delay in ns for the uniform u32 `rnd` (sigma > 0)."""
    if table is None:
        return (rnd % (2 * sigma)) + mu - sigma
    t = table[rnd % len(table)]
    x = (sigma % DIST_SCALE) * t
    x += DIST_SCALE // 2 if x >= 0 else -(DIST_SCALE // 2)
    return int(x / DIST_SCALE) + (sigma // DIST_SCALE) * t + mu  # C division truncates toward zero


class DelaySampler:
    """Delays for one link direction: `delay TIME [JITTER [CORRELATION]] [distribution NAME]`."""

    def __init__(
        self,
        latency_ns: int,
        jitter_ns: int,
        correlation: float,
        table: tuple[int, ...] | None,
        rng: random.Random,
    ) -> None:
        self.latency_ns = latency_ns
        self.jitter_ns = min(abs(jitter_ns), INT_MAX)  # the kernel caps jitter at INT_MAX ns
        self._table = table
        self._source = NetemCorrelatedUniform(correlation, rng)

    def sample_ns(self) -> int:
        """The next delay; exactly the latency (and no draw) when there is no jitter."""
        if self.jitter_ns == 0:
            return self.latency_ns
        return tabledist(self.latency_ns, self.jitter_ns, self._source.next_u32(), self._table)


class SlotClock:
    """netem's `slot`: departures are allowed only from `next_open` on, for a budget of packets/bytes.

    A new slot opens `MIN + U (MAX - MIN) / 2^32` after `now`, or `tabledist(DELAY, JITTER)`
    from the slot table (no correlation). Budgets of 0 mean unlimited (INT_MAX).
    """

    def __init__(
        self,
        min_delay_ns: int,
        max_delay_ns: int,
        table: tuple[int, ...] | None,
        dist_delay_ns: int,
        dist_jitter_ns: int,
        max_packets: int,
        max_bytes: int,
        rng: random.Random,
    ) -> None:
        self._min = min_delay_ns
        self._max = max_delay_ns
        self._table = table
        self._dist_delay = dist_delay_ns
        self._dist_jitter = min(abs(dist_jitter_ns), INT_MAX)
        self._max_packets = max_packets or INT_MAX
        self._max_bytes = max_bytes or INT_MAX
        self._rng = rng
        self.next_open = LONG_AGO_NS  # the first slot is open at once, as after `tc qdisc add`
        self.packets_left = self._max_packets
        self.bytes_left = self._max_bytes

    def open_next(self, now: int) -> None:
        """Draw the next slot from `now` (ns) and refill the budgets (`get_slot_next`)."""
        if self._dist_jitter:
            delay_ns = tabledist(self._dist_delay, self._dist_jitter, self._rng.getrandbits(32), self._table)
        else:
            delay_ns = self._min + ((self._rng.getrandbits(32) * (self._max - self._min)) >> 32)
        self.next_open = now + delay_ns
        self.packets_left = self._max_packets
        self.bytes_left = self._max_bytes

    def spend(self, length: int, now: int) -> None:
        """Account one released packet; a spent budget opens the next slot."""
        self.packets_left -= 1
        self.bytes_left -= length
        if self.packets_left <= 0 or self.bytes_left <= 0:
            self.open_next(now)
