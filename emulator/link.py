"""The sans-I/O link: netem's enqueue/dequeue on an explicit clock.

`Link` holds no sockets and reads no clock: drivers call `submit(datagram, now)` for each
arrival, `due(now)` to collect what may leave, and sleep until `next_deadline()`. The trio
proxy and the offline driver both use it unchanged, so the same seed gives the same fates.

The order of decisions for one arriving datagram is netem's `netem_enqueue` (NETEM.md §1):
duplicate -> loss (a loss cancels the extra copy) -> the copy is cloned, uncorrupted ->
corrupt (one random bit) -> limit (a full queue drops the arrival and its copy) -> the copy
re-enters the same enqueue (its own loss, corrupt, limit, reorder and delay decisions) ->
reorder (a candidate may go to the head of the queue at once) -> delay/jitter -> rate ->
the time-ordered queue (tfifo). `due` serves reordered packets first, then the tfifo in
`time_to_send` order, gated by `slot` if configured; plug-in stages then see each departing
datagram. Times are float seconds; netem's delay arithmetic stays in integer nanoseconds.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Sequence

from emulator.correlation import component_rng, make_event
from emulator.delay import DelaySampler, SlotClock
from emulator.fate import ARRIVAL, DEPARTURE, Fate, LinkCounters
from emulator.grammar import NetemSpec
from emulator.loss import LossModel, make_loss_model
from emulator.stages import Stage

# Bytes the kernel would count besides the UDP payload on an Ethernet egress (qdisc_pkt_len):
# Ethernet header 14 + IPv4 20 + UDP 8. `rate` and `slot bytes` use payload + this.
ETHERNET_IPV4_UDP_HEADER_BYTES = 42

# A queued packet: (time_to_send, arrival order, datagram, packet, copy, arrival time, reordered, tag)
_Entry = tuple[float, int, bytes, int, int, float, bool, object]


class Link:
    """One direction of an emulated path, configured by a parsed netem spec.

    `seed` seeds every random decision (each component has its own generator, derived from
    seed, `stream` and the component name; use different streams for the two directions).
    `stages` are plug-in stages applied at departure; `loss_model`, if given, decides losses
    in place of the spec's `loss` clause. With `record_fates`, `take_fates()`
    returns what happened to each packet copy; counters are always kept.
    """

    def __init__(
        self,
        spec: NetemSpec,
        *,
        seed: int,
        stream: str = "forward",
        stages: Sequence[Stage] = (),
        loss_model: LossModel | None = None,
        header_bytes: int = ETHERNET_IPV4_UDP_HEADER_BYTES,
        record_fates: bool = False,
    ) -> None:
        def rng(component: str):
            return component_rng(seed, stream, component)

        self.spec = spec
        self.seed = seed
        self.counters = LinkCounters()
        self.record_fates = record_fates
        self._fates: list[Fate | None] = []
        self._header_bytes = header_bytes
        self._limit = spec.limit
        self._stages = list(stages)

        dup, corrupt, reorder = spec.duplicate, spec.corrupt, spec.reorder
        self._duplicate = (
            make_event(dup.probability, dup.correlation, dup.correct, rng("duplicate"))
            if dup is not None and dup.probability > 0 else None
        )
        self._loss = loss_model
        if loss_model is None and spec.loss is not None:
            self._loss = make_loss_model(spec.loss, rng("loss"))
        self._corrupt = (
            make_event(corrupt.probability, corrupt.correlation, corrupt.correct, rng("corrupt"))
            if corrupt is not None and corrupt.probability > 0 else None
        )
        self._corrupt_position = rng("corrupt-position")
        self._reorder = (
            make_event(reorder.probability, reorder.correlation, reorder.correct, rng("reorder"))
            if reorder is not None and spec.gap else None
        )
        self._gap = spec.gap
        self._reorder_counter = 0
        self._delay = DelaySampler(
            spec.latency_ns, spec.jitter_ns, spec.delay_correlation, spec.distribution_table, rng("delay")
        )
        self._rate = spec.rate if spec.rate is not None and spec.rate.bytes_per_s > 0 else None
        slot = spec.slot
        self._slot = (
            SlotClock(
                slot.min_delay_ns, slot.max_delay_ns, slot.distribution_table, slot.dist_delay_ns,
                slot.dist_jitter_ns, slot.max_packets, slot.max_bytes, rng("slot"),
            )
            if slot is not None and (slot.min_delay_ns or slot.max_delay_ns or slot.dist_jitter_ns) else None
        )

        self._next_packet = 0
        self._order = itertools.count()
        self._immediate: deque[_Entry] = deque()  # sent at once by reorder; newest at the head
        self._tail: deque[_Entry] = deque()  # tfifo's linear tail: non-decreasing times
        self._tree: list[_Entry] = []  # tfifo's out-of-order part, a heap on (time, order)
        self._tfifo_last: float | None = None  # the largest time_to_send in the tfifo

    # -- the sans-I/O interface ---------------------------------------------------------

    def submit(self, datagram: bytes, now: float, tag: object = None) -> None:
        """A datagram arrives at time `now` (seconds on the driver's clock). `tag` travels
        with it and its duplicate (a proxy's note of which client it came from)."""
        packet = self._next_packet
        self._next_packet += 1
        self.counters.received += 1
        self._enqueue(datagram, now, packet, 0, tag)

    def due(self, now: float) -> list[bytes]:
        """Everything allowed to leave by `now`, in departure order."""
        return [datagram for datagram, _ in self.due_tagged(now)]

    def due_tagged(self, now: float) -> list[tuple[bytes, object]]:
        """`due`, each datagram with the tag it was submitted with."""
        out: list[tuple[bytes, object]] = []
        while self._immediate:
            self._depart(self._immediate.popleft(), now, out)
        slot = self._slot
        tree, tail = self._tree, self._tail
        while tree or tail:
            from_tree = bool(tree) and (not tail or tree[0][0] < tail[0][0])  # netem_peek: the tail wins ties
            entry = tree[0] if from_tree else tail[0]
            time_to_send = entry[0]
            if slot is not None:
                if slot.next_open < time_to_send:
                    slot.open_next(now)  # the head is due after the slot opened: the slot is wasted
                if time_to_send > now or slot.next_open > now:
                    break
            elif time_to_send > now:
                break
            if from_tree:
                heapq.heappop(tree)
            else:
                tail.popleft()
            if not tree and not tail:
                self._tfifo_last = None
            if slot is not None:
                slot.spend(len(entry[2]) + self._header_bytes, now)
            self._depart(entry, now, out)
        return out

    def next_deadline(self) -> float | None:
        """When `due` should next be called; None when nothing is held. May lie in the past."""
        deadline = None
        if self._immediate:
            deadline = self._immediate[-1][5]
        entry = self._peek()
        if entry is not None:
            time_to_send = entry[0]
            if self._slot is not None:
                time_to_send = max(time_to_send, self._slot.next_open)
            deadline = time_to_send if deadline is None else min(deadline, time_to_send)
        return deadline

    def take_fates(self) -> list[Fate]:
        """The fate records since the last call (empty unless `record_fates`)."""
        fates = self._fates
        self._fates = []
        return fates  # type: ignore[return-value]  # placeholders are filled before returning

    @property
    def stages(self) -> tuple[Stage, ...]:
        return tuple(self._stages)

    @property
    def queued(self) -> int:
        """Packets held now; this is what `limit` bounds."""
        return len(self._immediate) + len(self._tail) + len(self._tree)

    # -- netem_enqueue ------------------------------------------------------------------

    def _enqueue(self, datagram: bytes, now: float, packet: int, copy: int, tag: object) -> None:
        notes: list[str] | None = [] if self.record_fates else None
        fate_index = len(self._fates)
        if notes is not None:
            self._fates.append(None)  # filled below, so the copy's record comes after this one
        arrived = datagram

        count = 1
        if copy == 0 and self._duplicate is not None and self._duplicate.occurs():
            count = 2
        if self._loss is not None:
            cause = self._loss.lost()
            if cause is not None:
                count -= 1
                if count == 0:
                    self.counters.dropped[cause] += 1
                    if notes is not None:
                        notes.append(f"dropped: {cause}")
                        self._fates[fate_index] = Fate(now, packet, copy, ARRIVAL, arrived, tuple(notes), tag)
                    return
                if notes is not None:
                    notes.append(f"duplicate cancelled by {cause}")
        clone = datagram if count > 1 else None
        if self._corrupt is not None and self._corrupt.occurs():
            datagram, bit = self._flip_bit(datagram)
            self.counters.corrupted += 1
            if notes is not None:
                notes.append(f"corrupted bit {bit}" if bit >= 0 else "corrupt: empty datagram, nothing flipped")
        if len(self._immediate) + len(self._tail) + len(self._tree) >= self._limit:  # sch->q.qlen
            self.counters.queue_dropped += count
            if notes is not None:
                notes.append("queue full")
                self._fates[fate_index] = Fate(now, packet, copy, ARRIVAL, arrived, tuple(notes), tag)
            return
        if copy == 1 and notes is not None:
            notes.append("duplicate")
        if clone is not None:
            self.counters.duplicated += 1
            if notes is not None:
                notes.append("duplicated")
            self._enqueue(clone, now, packet, 1, tag)

        if self._reorder is not None and self._reorder_counter >= self._gap - 1 and self._reorder.occurs():
            self._reorder_counter = 0
            self.counters.reordered += 1
            self._immediate.appendleft((now, next(self._order), datagram, packet, copy, now, True, tag))
            if notes is not None:
                notes.append("reordered: sent ahead of the queue")
        else:
            time_to_send = self._schedule(len(datagram), now)
            self._reorder_counter += 1
            self._tfifo_insert((time_to_send, next(self._order), datagram, packet, copy, now, False, tag))
            if time_to_send > now:
                self.counters.delayed += 1
                if notes is not None:
                    notes.append(f"delay {(time_to_send - now) * 1e3:.1f} ms")
        if notes is not None:
            self._fates[fate_index] = Fate(now, packet, copy, ARRIVAL, arrived, tuple(notes), tag)

    def _schedule(self, length: int, now: float) -> float:
        """time_to_send: now + tabledist delay, and with `rate` behind the last queued packet."""
        delay = self._delay.sample_ns() * 1e-9
        if self._rate is None:
            return now + delay  # may lie in the past (negative delays are not clamped)
        reference = now
        last = self._tfifo_last
        if self._immediate:
            tail_time = self._immediate[-1][0]
            last = tail_time if last is None else max(last, tail_time)
        if last is not None:
            delay = max(0.0, delay - (last - now))
            reference = last
        return reference + delay + self._transmission_time(length)

    def _transmission_time(self, payload_length: int) -> float:
        """netem's packet_time_ns: (length + overhead), rounded up to cells, over the rate."""
        rate = self._rate
        length = max(0, payload_length + self._header_bytes + rate.packet_overhead)
        if rate.cell_size:
            cells = -(-length // rate.cell_size)
            length = cells * (rate.cell_size + rate.cell_overhead)
        return (length * 1_000_000_000 // rate.bytes_per_s) * 1e-9

    def _flip_bit(self, datagram: bytes) -> tuple[bytes, int]:
        """Flip one uniformly chosen payload bit (bit k is byte k // 8, bit k % 8 from the LSB)."""
        if not datagram:
            return datagram, -1
        bit = self._corrupt_position.randrange(len(datagram) * 8)
        changed = bytearray(datagram)
        changed[bit >> 3] ^= 1 << (bit & 7)
        return bytes(changed), bit

    # -- tfifo ----------------------------------------------------------------------------

    def _tfifo_insert(self, entry: _Entry) -> None:
        if not self._tail or entry[0] >= self._tail[-1][0]:
            self._tail.append(entry)
        else:
            heapq.heappush(self._tree, entry)
        if self._tfifo_last is None or entry[0] > self._tfifo_last:
            self._tfifo_last = entry[0]

    def _peek(self) -> _Entry | None:
        """The earlier of the tree's first and the tail's head (the tail wins ties), like netem_peek."""
        if self._tree:
            if not self._tail or self._tree[0][0] < self._tail[0][0]:
                return self._tree[0]
        return self._tail[0] if self._tail else None

    # -- departure ------------------------------------------------------------------------

    def _depart(self, entry: _Entry, now: float, out: list[tuple[bytes, object]]) -> None:
        time_to_send, _, datagram, packet, copy, arrival, reordered, tag = entry
        notes: list[str] | None = [] if self.record_fates else None
        for stage in self._stages:
            outcome = stage.process(datagram, time_to_send)
            if outcome.datagram is None:
                self.counters.dropped[f"stage {stage.name}"] += 1
                if notes is not None:
                    notes.append(f"dropped: {stage.name}: {outcome.note}" if outcome.note else f"dropped: {stage.name}")
                    self._fates.append(Fate(now, packet, copy, DEPARTURE, datagram, tuple(notes), tag))
                return
            if notes is not None and outcome.note:
                notes.append(f"{stage.name}: {outcome.note}")
            datagram = outcome.datagram
        out.append((datagram, tag))
        self.counters.sent += 1
        if notes is not None:
            if copy:
                notes.insert(0, "duplicate")
            if reordered:
                notes.insert(0, "reordered")
            if time_to_send > arrival:
                notes.insert(0, f"delayed {(time_to_send - arrival) * 1e3:.1f} ms")
            self._fates.append(Fate(now, packet, copy, DEPARTURE, datagram, tuple(notes), tag))
