"""The sans-I/O link: netem's enqueue/dequeue on an explicit clock, in integer nanoseconds.

`Link` holds no sockets and reads no clock: drivers call `submit(datagram, now)` for each
arrival, `due(now)` to collect what may leave, and sleep until `next_deadline()`. The trio
proxy and the offline driver both use it unchanged, so the same seed gives the same fates.

Every time inside is an integer number of nanoseconds, as in the kernel: a queue-full test
and a departure falling on the same instant are decided exactly, never by float rounding.
`submit_ns`, `due_ns`, `due_tagged_ns` and `next_deadline_ns` take and give nanoseconds;
`submit`, `due`, `due_tagged` and `next_deadline` are the same in float seconds (converted
once at the boundary with `round(seconds * 1e9)`, exact for any clock below ~100 days).

The order of decisions for one arriving datagram is netem's `netem_enqueue` (NETEM.md §1):
duplicate -> loss (a loss cancels the extra copy) -> the copy is cloned, uncorrupted ->
corrupt (one random bit) -> limit (a full queue drops the arrival and its copy) -> the copy
re-enters the same enqueue (its own loss, corrupt, limit, reorder and delay decisions) ->
reorder (a candidate may go to the head of the queue at once) -> delay/jitter -> rate (or a
link trace) -> the time-ordered queue (tfifo). `due` serves reordered packets first, then
the tfifo in `time_to_send` order, gated by `slot` if configured; plug-in stages then see
each departing datagram.
"""

from __future__ import annotations

import heapq
import itertools
import operator
import random
import socket
from collections import deque
from collections.abc import Sequence

from emulator.correlation import CountingRandom, component_rng, make_event, u32_below
from emulator.delay import DelaySampler, SlotClock
from emulator.fate import ARRIVAL, DEPARTURE, QUEUE_FULL, Fate, LinkCounters
from emulator.grammar import NetemSpec
from emulator.loss import LossModel, make_loss_model
from emulator.stages import Stage
from emulator.traces import CAUSE_LINK_TRACE_ENDED, LinkTraceServer, PacketTraceCursor

# Bytes the kernel would count besides the UDP payload on an Ethernet egress (qdisc_pkt_len):
# Ethernet header 14 + IPv4 20 + UDP 8, or 14 + IPv6 40 + UDP 8. `rate`, `slot bytes`, link
# traces and frame corruption use payload + this.
ETHERNET_IPV4_UDP_HEADER_BYTES = 42
ETHERNET_IPV6_UDP_HEADER_BYTES = 62

CAUSE_CORRUPT_HEADER = "corrupted header"
CAUSE_CORRUPT_CHECKSUM = "corrupted payload (UDP checksum)"
_DISCARD_NOTES = {
    CAUSE_CORRUPT_HEADER: "dropped: corrupted header, the receiver's stack discards it",
    CAUSE_CORRUPT_CHECKSUM: "dropped: corrupted payload, the receiver's UDP checksum fails",
}


def header_bytes_for(family: int) -> int:
    """Ethernet + IP + UDP header bytes for an address family (AF_INET6: 62, otherwise 42)."""
    return ETHERNET_IPV6_UDP_HEADER_BYTES if family == socket.AF_INET6 else ETHERNET_IPV4_UDP_HEADER_BYTES


_DRAWS = operator.attrgetter("draws")


# A queued packet: (time_to_send, arrival order, datagram, packet, copy, arrival time, reordered,
# tag, bytes on the wire, cause of a discard at departure or None)
_Entry = tuple[int, int, bytes, int, int, int, bool, object, int, "str | None"]


class Link:
    """One direction of an emulated path, configured by a parsed netem spec.

    `seed` seeds every random decision (each component has its own generator, derived from
    seed, `stream` and the component name; use different streams for the two directions).
    `stages` are plug-in stages applied at departure; `loss_model`, if given, decides losses
    in place of the spec's `loss` clause. `header_bytes` is what each datagram carries on the
    wire besides its payload (42 for UDP over IPv4 on Ethernet, 62 over IPv6); `submit` may
    give it per datagram. With `record_fates`, `take_fates()` returns what happened to each
    packet copy; with `draw_positions` each record also says where every random stream stood
    (for an event log). Counters are always kept.
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
        draw_positions: bool = False,
    ) -> None:
        self._generators: dict[str, random.Random] = {}

        def rng(component: str) -> random.Random:
            generator = component_rng(seed, stream, component, counting=draw_positions)
            self._generators[component] = generator
            return generator

        self.spec = spec
        self.seed = seed
        self.stream = stream
        self.counters = LinkCounters()
        self._fates: list[Fate | None] = []
        self._header_bytes = header_bytes
        self._limit = spec.limit
        self._stages = list(stages)

        dup, corrupt, reorder = spec.duplicate, spec.corrupt, spec.reorder
        self._duplicate = (
            make_event(dup.probability, dup.correlation, dup.correct, rng("duplicate"))
            if dup is not None and dup.probability > 0 else None
        )
        self._packet_trace = PacketTraceCursor(spec.packet_trace) if spec.packet_trace is not None else None
        if self._packet_trace is not None and loss_model is not None:
            raise ValueError("a packet trace decides the losses: it does not combine with a loss model")
        self._loss = loss_model or self._packet_trace
        if self._loss is None and spec.loss is not None:
            self._loss = make_loss_model(spec.loss, rng("loss"))
        self._corrupt = (
            make_event(corrupt.probability, corrupt.correlation, corrupt.correct, rng("corrupt"))
            if corrupt is not None and corrupt.probability > 0 else None
        )
        self._corrupt_mode = spec.corrupt_mode
        self._corrupt_position = rng("corrupt-position") if self._corrupt is not None else None
        self._reorder = (
            make_event(reorder.probability, reorder.correlation, reorder.correct, rng("reorder"))
            if reorder is not None and spec.gap else None
        )
        self._gap = spec.gap
        self._reorder_counter = 0
        self._delay = self._packet_trace or DelaySampler(
            spec.latency_ns, spec.jitter_ns, spec.delay_correlation, spec.distribution_table, rng("delay")
        )
        self._constant_delay = self._packet_trace is None and spec.jitter_ns == 0
        self._in_order = spec.in_order
        self._rate = spec.rate if spec.rate is not None and spec.rate.bytes_per_s > 0 else None
        self._link_trace = LinkTraceServer(spec.link_trace) if spec.link_trace is not None else None
        self._origin: int | None = None  # the first arrival: time zero of the traces
        slot = spec.slot
        self._slot = (
            SlotClock(
                slot.min_delay_ns, slot.max_delay_ns, slot.distribution_table, slot.dist_delay_ns,
                slot.dist_jitter_ns, slot.max_packets, slot.max_bytes, rng("slot"),
            )
            if slot is not None and (slot.min_delay_ns or slot.max_delay_ns or slot.dist_jitter_ns) else None
        )

        self._order = itertools.count()
        self._departures = 0  # sequence numbers of the recorded departures
        self._immediate: deque[_Entry] = deque()  # sent at once by reorder; newest at the head
        self._tail: deque[_Entry] = deque()  # tfifo's linear tail: non-decreasing times
        self._tree: list[_Entry] = []  # tfifo's out-of-order part, a heap on (time, order)
        self._tfifo_last: int | None = None  # the largest time_to_send in the tfifo
        self._counted = [rng for rng in self._generators.values() if isinstance(rng, CountingRandom)]
        # Nothing to decide, delay or gate: each datagram leaves as it arrives (the proxy's fast path).
        self._impaired = any((
            self._duplicate, self._loss, self._corrupt, self._reorder, self._rate, self._link_trace, self._slot,
            self._stages, spec.latency_ns, spec.jitter_ns, self._limit == 0,
        ))
        self.record_fates = record_fates

    # -- the sans-I/O interface ---------------------------------------------------------

    @property
    def record_fates(self) -> bool:
        return self._record

    @record_fates.setter
    def record_fates(self, value: bool) -> None:
        self._record = value
        self._transparent = not self._impaired and not value

    def submit(self, datagram: bytes, now: float, tag: object = None, *, header_bytes: int | None = None) -> None:
        """A datagram arrives at time `now` (seconds on the driver's clock). `tag` travels
        with it and its duplicate (a proxy's note of which client it came from);
        `header_bytes` overrides the link's for this datagram (an IPv6 peer: 62)."""
        self.submit_ns(datagram, round(now * 1e9), tag, header_bytes=header_bytes)

    def submit_ns(self, datagram: bytes, now: int, tag: object = None, *, header_bytes: int | None = None) -> None:
        """`submit` with `now` in integer nanoseconds."""
        packet = self.counters.received  # the arrival index
        self.counters.received += 1
        if self._origin is None:
            self._origin = now
        self._enqueue(datagram, now, packet, 0, tag, self._header_bytes if header_bytes is None else header_bytes, None)

    def pass_ns(self, datagram: bytes, now: int, tag: object, out: list, header_bytes: int | None = None) -> bool:
        """`submit_ns` then `due_tagged_ns(now)` appended to `out`, in one call: what a driver does
        for each arrival. Returns whether the link still holds packets (its deadline matters).
        A link with nothing to do passes the datagram straight through."""
        counters = self.counters
        if self._transparent:
            counters.received += 1
            counters.sent += 1
            out.append((datagram, tag))
            return False
        packet = counters.received
        counters.received += 1
        if self._origin is None:
            self._origin = now
        self._enqueue(datagram, now, packet, 0, tag, self._header_bytes if header_bytes is None else header_bytes, out)
        if self._immediate or self._tree or self._tail:
            out += self.due_tagged_ns(now)
            return bool(self._immediate or self._tree or self._tail)
        return False

    def due(self, now: float) -> list[bytes]:
        """Everything allowed to leave by `now`, in departure order."""
        return [datagram for datagram, _ in self.due_tagged_ns(round(now * 1e9))]

    def due_ns(self, now: int) -> list[bytes]:
        return [datagram for datagram, _ in self.due_tagged_ns(now)]

    def due_tagged(self, now: float) -> list[tuple[bytes, object]]:
        """`due`, each datagram with the tag it was submitted with."""
        return self.due_tagged_ns(round(now * 1e9))

    def due_tagged_ns(self, now: int) -> list[tuple[bytes, object]]:
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
                slot.spend(entry[8], now)
            self._depart(entry, now, out)
        return out

    def next_deadline(self) -> float | None:
        """When `due` should next be called (seconds); None when nothing is held. May lie in the past."""
        deadline = self.next_deadline_ns()
        return None if deadline is None else deadline / 1e9

    def next_deadline_ns(self) -> int | None:
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

    @property
    def draw_names(self) -> tuple[str, ...]:
        """The link's counted random streams, in the order of `Fate.draws` (empty unless `draw_positions`)."""
        return tuple(name for name, rng in self._generators.items() if isinstance(rng, CountingRandom))

    @property
    def stream_positions(self) -> tuple[int, ...]:
        """How many values each counted random stream has given, in the order of `draw_names`."""
        return tuple(map(_DRAWS, self._counted))

    def _draws(self) -> tuple[int, ...] | None:
        return tuple(map(_DRAWS, self._counted)) if self._counted else None

    # -- netem_enqueue ------------------------------------------------------------------

    def _enqueue(self, datagram: bytes, now: int, packet: int, copy: int, tag: object, header: int,
                 out: list | None) -> None:
        """netem_enqueue for one packet copy. With `out` (the driver collects departures at `now`),
        a packet due at once on an empty, ungated queue leaves straight into it: what `due(now)`
        would do next, without the queue's bookkeeping."""
        record = self._record
        fate_index = len(self._fates)
        if record:
            self._fates.append(None)  # filled below, so the copy's record comes after this one
        arrived = datagram
        if self._packet_trace is not None:
            self._packet_trace.advance(now - self._origin)

        count = 1
        cancelled = None
        if copy == 0 and self._duplicate is not None and self._duplicate.occurs():
            count = 2
        if self._loss is not None:
            cause = self._loss.lost()
            if cause is not None:
                count -= 1
                if count == 0:
                    self.counters.dropped[cause] += 1
                    if record:
                        self._fates[fate_index] = Fate(now, packet, copy, ARRIVAL, arrived, tag, cause, None, False,
                                                       False, -1, -1, False, None, None, -1, (), self._draws())
                    return
                cancelled = cause
        clone = datagram if count > 1 else None
        corrupted, bit, header_bit, discard = False, -1, -1, None
        if self._corrupt is not None and self._corrupt.occurs():
            corrupted = True
            datagram, bit, header_bit, discard = self._corrupt_datagram(datagram, header)
            self.counters.corrupted += 1
        if len(self._immediate) + len(self._tail) + len(self._tree) >= self._limit:  # sch->q.qlen
            self.counters.queue_dropped += count
            if record:
                self._fates[fate_index] = Fate(now, packet, copy, ARRIVAL, arrived, tag, QUEUE_FULL, cancelled,
                                               clone is not None, corrupted, bit, header_bit, False, None, None, -1, (),
                                               self._draws())
            return
        if clone is not None:
            self.counters.duplicated += 1
            self._enqueue(clone, now, packet, 1, tag, header, out)

        wire = len(datagram) + header
        reordered = False
        if self._reorder is not None and self._reorder_counter >= self._gap - 1 and self._reorder.occurs():
            self._reorder_counter = 0
            self.counters.reordered += 1
            reordered = True
            time_to_send = now
            self._immediate.appendleft((now, next(self._order), datagram, packet, copy, now, True, tag, wire, discard))
        else:
            time_to_send = self._schedule(wire, now)
            if time_to_send is None:  # a `once` link trace has ended: nothing leaves any more
                self.counters.dropped[CAUSE_LINK_TRACE_ENDED] += 1
                if record:
                    self._fates[fate_index] = Fate(now, packet, copy, ARRIVAL, arrived, tag, CAUSE_LINK_TRACE_ENDED,
                                                   None, False, False, -1, -1, False, None, None, -1, (),
                                                   self._draws())
                return
            self._reorder_counter += 1
            entry = (time_to_send, next(self._order), datagram, packet, copy, now, False, tag, wire, discard)
            if time_to_send > now:
                self.counters.delayed += 1
                self._tfifo_insert(entry)
            elif out is not None and self._slot is None and not (self._tail or self._tree or self._immediate):
                self._depart(entry, now, out)  # its arrival record, in its reserved place, stays first
            else:
                self._tfifo_insert(entry)
        if record:  # positional: a dataclass call with keywords costs three times as much
            self._fates[fate_index] = Fate(now, packet, copy, ARRIVAL, arrived, tag, None, cancelled, clone is not None,
                                           corrupted, bit, header_bit, reordered, time_to_send, None, -1, (),
                                           self._draws())

    def _schedule(self, wire: int, now: int) -> int | None:
        """time_to_send: now + tabledist delay, and with `rate` behind the last queued packet."""
        delay = self._delay.latency_ns if self._constant_delay else self._delay.sample_ns()
        if self._link_trace is not None:
            finish = self._link_trace.serve(now + delay - self._origin, wire)
            return None if finish is None else self._origin + finish
        if self._rate is None:
            time_to_send = now + delay  # may lie in the past (negative delays are not clamped)
            if self._in_order and self._tfifo_last is not None and time_to_send < self._tfifo_last:
                time_to_send = self._tfifo_last  # netsem's `in-order`: wait behind the packet before
            return time_to_send
        reference = now
        last = self._tfifo_last
        if self._immediate:
            tail_time = self._immediate[-1][0]
            last = tail_time if last is None else max(last, tail_time)
        if last is not None:
            delay = max(0, delay - (last - now))
            reference = last
        return reference + delay + self._transmission_ns(wire)

    def _transmission_ns(self, wire: int) -> int:
        """netem's packet_time_ns: (length + overhead), rounded up to cells, over the rate."""
        rate = self._rate
        length = max(0, wire + rate.packet_overhead)
        if rate.cell_size:
            cells = -(-length // rate.cell_size)
            length = cells * (rate.cell_size + rate.cell_overhead)
        return length * 1_000_000_000 // rate.bytes_per_s

    def _corrupt_datagram(self, datagram: bytes, header: int) -> tuple[bytes, int, int, str | None]:
        """Flip one bit: (datagram, payload bit, header bit, cause of a discard at the receiver).

        Bit k is byte k // 8, bit k % 8 from the LSB. `payload` picks among the payload's bits;
        `frame` and `frame-checksum` among the whole frame's, as netem picks among the skb's
        bytes from the Ethernet header on: a header bit makes the receiver discard the frame.
        """
        payload_bits = len(datagram) * 8
        if self._corrupt_mode == "payload":
            if not payload_bits:
                return datagram, -1, -1, None
            bit = u32_below(self._corrupt_position, payload_bits)
        else:
            bit = u32_below(self._corrupt_position, payload_bits + header * 8) - header * 8
            if bit < 0:
                return datagram, -1, bit + header * 8, CAUSE_CORRUPT_HEADER
        changed = bytearray(datagram)
        changed[bit >> 3] ^= 1 << (bit & 7)
        discard = CAUSE_CORRUPT_CHECKSUM if self._corrupt_mode == "frame-checksum" else None
        return bytes(changed), bit, -1, discard

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

    def _depart(self, entry: _Entry, now: int, out: list[tuple[bytes, object]]) -> None:
        time_to_send, _, datagram, packet, copy, arrival, reordered, tag, _, discard = entry
        notes: tuple[str, ...] = ()
        cause = discard
        if discard is not None:
            notes = (_DISCARD_NOTES[discard],)
        elif self._stages:
            datagram, cause, notes = self._run_stages(datagram, time_to_send)
        if cause is not None:
            self.counters.dropped[cause] += 1
        else:
            out.append((datagram, tag))
            self.counters.sent += 1
        if self._record:
            self._fates.append(Fate(now, packet, copy, DEPARTURE, datagram, tag, cause, None, False, False, -1, -1,
                                    reordered, time_to_send, arrival, self._departures, notes))
            self._departures += 1

    def _run_stages(self, datagram: bytes, time_to_send: int) -> tuple[bytes, str | None, tuple[str, ...]]:
        """The plug-in stages in order: (datagram, drop cause or None, their notes)."""
        notes = []
        for stage in self._stages:
            outcome = stage.process(datagram, time_to_send / 1e9)
            if outcome.datagram is None:
                notes.append(f"dropped: {stage.name}: {outcome.note}" if outcome.note else f"dropped: {stage.name}")
                return datagram, f"stage {stage.name}", tuple(notes)
            if outcome.note:
                notes.append(f"{stage.name}: {outcome.note}")
            datagram = outcome.datagram
        return datagram, None, tuple(notes)
