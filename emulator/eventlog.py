"""A replayable event log: every fate decision as one JSON line, and a link that replays it.

`netsem emulate --event-log FILE` writes (JSON Lines, UTF-8):

- a header object first: `{"netsem_event_log": 1, "seed": S, "links": [{"name", "netem",
  "draw_streams", "stages", "loss_model"}, ...], "rules": [RULE, ...], "reverse": BOOL}`;
- then one object per packet copy and moment, in the order the links decided them, with
  `link` (its name: "forward", "reverse", "rule N/forward", ...), `event` ("in" at arrival,
  "out" at departure), `t` (integer ns on the emulator's clock), `packet` (arrival index on
  its link), `copy` (0, or 1 for netem's duplicate) and
  - "in": `len`, `send` (netem's time_to_send), and when they happened: `cause` (dropped
    here: a loss cause or "queue full"), `cancelled_duplicate`, `duplicated`, `corrupted` with
    `bit` (payload bit) or `header_bit`, `reordered`; `draws` gives each random stream's
    position after the decision, in the order of its link's `draw_streams` in the header, e.g.
    `[1234, 17]` with `["loss", "delay"]`: the loss stream had given 1234 values (one per
    `getrandbits(32)`), the delay stream 17;
  - "out": `seq` (its place among the link's departures), `send`, `arrived`, and `cause` with
    `notes` when it was discarded at departure (a stage, a corrupted header).

`ReplayLink` plays one link's records back: the i-th datagram to arrive takes the fate of
packet i (lost, queue full, corrupted at the same bit, duplicated, reordered, held for the
same time, discarded at departure), whatever the timing now; departures keep the logged
order. So `netsem emulate --replay FILE` repeats a run exactly, queue drops included, and an
offline replay with the same arrivals writes the same log again. Stages are not run again
(their drops are replayed; a stage that changes the bytes it passes is not). Datagrams beyond
the log pass unimpaired and are counted (`beyond_log`).

`diff_event_logs` (and `tools/emulator_log_diff.py`) compares two logs decision by decision.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from emulator.fate import ARRIVAL, DEPARTURE, QUEUE_FULL, Fate, LinkCounters
from emulator.grammar import NetemSpec

FORMAT = "netsem_event_log"
VERSION = 1
_FLUSH_LINES = 8192
# The decisions that must agree for two runs to have done the same thing (times excluded).
DECISION_FIELDS = ("len", "cause", "cancelled_duplicate", "duplicated", "corrupted", "bit", "header_bit",
                   "reordered", "seq", "notes", "draws")


class EventLogError(ValueError):
    """A file that is not an event log this version reads; the message says where."""


def event_line(link_json: str, fate: Fate) -> str:
    """One JSON line for a fate record; `link_json` is the link's name already JSON-encoded."""
    if fate.direction == ARRIVAL:
        line = (f'{{"link":{link_json},"event":"in","t":{fate.time_ns},"packet":{fate.packet},"copy":{fate.copy},'
                f'"len":{len(fate.datagram)}')
        if fate.send_ns is not None:
            line += f',"send":{fate.send_ns}'
        if fate.cause is not None:
            line += f',"cause":{json.dumps(fate.cause)}'
        if fate.cancelled_duplicate is not None:
            line += f',"cancelled_duplicate":{json.dumps(fate.cancelled_duplicate)}'
        if fate.duplicated:
            line += ',"duplicated":true'
        if fate.corrupted:
            line += f',"corrupted":true,"bit":{fate.bit},"header_bit":{fate.header_bit}'
        if fate.reordered:
            line += ',"reordered":true'
        if fate.draws:
            line += ',"draws":[' + ",".join(map(str, fate.draws)) + "]"
        return line + "}\n"
    line = (f'{{"link":{link_json},"event":"out","t":{fate.time_ns},"packet":{fate.packet},"copy":{fate.copy},'
            f'"seq":{fate.sequence},"send":{fate.send_ns},"arrived":{fate.arrived_ns}')
    if fate.reordered:
        line += ',"reordered":true'
    if fate.cause is not None:
        line += f',"cause":{json.dumps(fate.cause)},"notes":{json.dumps(list(fate.departure_notes))}'
    return line + "}\n"


class EventLogWriter:
    """Writes the header, then fate records of named links, buffered. Use as a context manager."""

    def __init__(self, path: str | Path, header: dict) -> None:
        self.path = Path(path)
        self._file: TextIO = open(self.path, "w", encoding="utf-8")
        self._buffer: list[str] = [json.dumps({FORMAT: VERSION, **header}, sort_keys=True) + "\n"]
        self._size = 0
        self._names: dict[str, str] = {}

    def write(self, link: str, fates: Iterable[Fate]) -> None:
        name = self._names.get(link)
        if name is None:
            name = self._names[link] = json.dumps(link)
        lines = [event_line(name, fate) for fate in fates]
        self._buffer += lines
        self._size += len(lines)
        if self._size >= _FLUSH_LINES:
            self.flush()

    def flush(self) -> None:
        self._file.write("".join(self._buffer))
        self._buffer.clear()
        self._size = 0
        self._file.flush()

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self.flush()
        finally:
            self._file.close()

    def __enter__(self) -> EventLogWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


@dataclass
class EventLog:
    header: dict
    records: list[dict]

    def of_link(self, name: str) -> list[dict]:
        return [record for record in self.records if record["link"] == name]

    def link_names(self) -> list[str]:
        return [link["name"] for link in self.header.get("links", [])]


def read_event_log(path: str | Path) -> EventLog:
    """The header and every record; EventLogError naming the line when the file is not a log."""
    lines = _objects(path)
    try:
        header = next(lines)
    except StopIteration:
        raise EventLogError(f"{path}: empty, not an event log") from None
    if header.get(FORMAT) != VERSION:
        raise EventLogError(f"{path}:1: not a netsem event log (version {VERSION})")
    return EventLog(header, list(lines))


def _objects(path: str | Path) -> Iterator[dict]:
    """Each line's JSON object; EventLogError naming the line otherwise."""
    try:
        handle = open(path, encoding="utf-8")
    except OSError as error:
        raise EventLogError(f"cannot read {path}: {error.strerror or error}") from None
    with handle:
        for number, line in enumerate(handle, 1):
            try:
                record = json.loads(line)
            except ValueError:
                raise EventLogError(f"{path}:{number}: not JSON") from None
            if not isinstance(record, dict):
                raise EventLogError(f"{path}:{number}: not a JSON object")
            yield record


class ReplayLink:
    """A link that replays one link's logged fates (the interface of `Link` that drivers use).

    With `slotted` (the logged spec had `slot`), a departure keeps its logged time after the
    arrival; otherwise its scheduled time (`send`), which a socket run's wake-up latency does
    not blur.
    """

    def __init__(self, records: Iterable[dict], spec: NetemSpec, *, record_fates: bool = False) -> None:
        self.spec = spec
        self.counters = LinkCounters()
        self.record_fates = record_fates
        self.beyond_log = 0
        self._arrivals: dict[tuple[int, int], dict] = {}
        self._departures: dict[tuple[int, int], dict] = {}
        for record in records:
            arrival = record.get("event") == ARRIVAL
            needed = ("packet", "copy", "t") if arrival else ("packet", "copy", "t", "seq", "send", "arrived")
            if not all(isinstance(record.get(name), int) for name in needed):
                raise EventLogError(f"a record needs the integers {', '.join(needed)}: {record}")
            (self._arrivals if arrival else self._departures)[(record["packet"], record["copy"])] = record
        self._slotted = spec.slot is not None
        self._next_packet = 0
        self._heap: list[tuple[int, int, bytes, int, int, int, object, dict | None]] = []
        self._stuck = 0  # still queued when the logged run ended: they never leave
        self._beyond_order = 0
        self._fates: list[Fate] = []

    # the driver's interface, as Link's
    def submit(self, datagram: bytes, now: float, tag: object = None, *, header_bytes: int | None = None) -> None:
        self.submit_ns(datagram, round(now * 1e9), tag)

    def submit_ns(self, datagram: bytes, now: int, tag: object = None, *, header_bytes: int | None = None) -> None:
        packet = self._next_packet
        self._next_packet += 1
        self.counters.received += 1
        record = self._arrivals.get((packet, 0))
        if record is None:
            self.beyond_log += 1
            self._beyond_order += 1
            heapq.heappush(self._heap, (now, -1_000_000_000 + self._beyond_order, datagram, packet, 0, now, tag, None))
            return
        self._replay(datagram, now, packet, 0, tag, record)

    def pass_ns(self, datagram: bytes, now: int, tag: object, out: list, header_bytes: int | None = None) -> bool:
        self.submit_ns(datagram, now, tag)
        if self._heap:
            out += self.due_tagged_ns(now)
        return bool(self._heap)

    def due(self, now: float) -> list[bytes]:
        return [datagram for datagram, _ in self.due_tagged_ns(round(now * 1e9))]

    def due_ns(self, now: int) -> list[bytes]:
        return [datagram for datagram, _ in self.due_tagged_ns(now)]

    def due_tagged(self, now: float) -> list[tuple[bytes, object]]:
        return self.due_tagged_ns(round(now * 1e9))

    def due_tagged_ns(self, now: int) -> list[tuple[bytes, object]]:
        out: list[tuple[bytes, object]] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, sequence, datagram, packet, copy, arrived, tag, departure = heapq.heappop(heap)
            cause = departure.get("cause") if departure is not None else None
            if cause is not None:
                self.counters.dropped[cause] += 1
            else:
                self.counters.sent += 1
                out.append((datagram, tag))
            if self.record_fates:
                self._fates.append(Fate(
                    now, packet, copy, DEPARTURE, datagram, tag, cause=cause, sequence=sequence,
                    reordered=bool(departure and departure.get("reordered")),
                    send_ns=arrived if departure is None else arrived + departure["send"] - departure["arrived"],
                    arrived_ns=arrived, departure_notes=tuple(departure.get("notes", ())) if departure else (),
                ))
        return out

    def next_deadline(self) -> float | None:
        deadline = self.next_deadline_ns()
        return None if deadline is None else deadline / 1e9

    def next_deadline_ns(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def take_fates(self) -> list[Fate]:
        fates, self._fates = self._fates, []
        return fates

    @property
    def queued(self) -> int:
        return len(self._heap) + self._stuck

    @property
    def stages(self) -> tuple:
        return ()

    @property
    def draw_names(self) -> tuple:
        return ()

    # the replay
    def _replay(self, datagram: bytes, now: int, packet: int, copy: int, tag: object, record: dict) -> None:
        counters = self.counters
        arrived = datagram
        cause = record.get("cause")
        if cause is not None and cause != QUEUE_FULL:
            counters.dropped[cause] += 1
            self._arrival_fate(now, packet, copy, arrived, tag, record)
            return
        duplicated = bool(record.get("duplicated"))
        if record.get("corrupted"):
            counters.corrupted += 1
            bit = record.get("bit", -1)
            if 0 <= bit < len(datagram) * 8:
                changed = bytearray(datagram)
                changed[bit >> 3] ^= 1 << (bit & 7)
                datagram = bytes(changed)
        if cause == QUEUE_FULL:
            counters.queue_dropped += 2 if duplicated else 1
            self._arrival_fate(now, packet, copy, arrived, tag, record)
            return
        self._arrival_fate(now, packet, copy, arrived, tag, record)
        if duplicated:
            counters.duplicated += 1
            copy_record = self._arrivals.get((packet, 1))
            if copy_record is not None:
                self._replay(arrived, now, packet, 1, tag, copy_record)
        if record.get("reordered"):
            counters.reordered += 1
        send = record.get("send", record["t"])
        if send > record["t"]:
            counters.delayed += 1
        departure = self._departures.get((packet, copy))
        if departure is None:
            self._stuck += 1
            return
        held = (departure["t"] if self._slotted else departure["send"]) - record["t"]
        heapq.heappush(self._heap, (now + held, departure["seq"], datagram, packet, copy, now, tag, departure))

    def _arrival_fate(self, now: int, packet: int, copy: int, datagram: bytes, tag: object, record: dict) -> None:
        if not self.record_fates:
            return
        send = record.get("send")
        self._fates.append(Fate(
            now, packet, copy, ARRIVAL, datagram, tag, cause=record.get("cause"),
            cancelled_duplicate=record.get("cancelled_duplicate"), duplicated=bool(record.get("duplicated")),
            corrupted=bool(record.get("corrupted")), bit=record.get("bit", -1), header_bit=record.get("header_bit", -1),
            reordered=bool(record.get("reordered")), send_ns=None if send is None else now + send - record["t"],
            draws=tuple(record["draws"]) if "draws" in record else None,
        ))


@dataclass
class LogDifference:
    link: str
    packet: int
    copy: int
    event: str
    field: str
    left: object
    right: object


def diff_event_logs(left: EventLog, right: EventLog, *, times: bool = False,
                    fields: tuple[str, ...] = DECISION_FIELDS) -> list[LogDifference]:
    """Where two logs decided differently, per link, packet copy and event (in the left's order).

    Times (`t`, `send`, `arrived`) are compared only with `times`. A record present in one log
    only is a difference of field "record".
    """
    compared = fields + (("t", "send", "arrived") if times else ())

    def keyed(log: EventLog) -> dict[tuple, dict]:
        return {(r["link"], r["packet"], r["copy"], r["event"]): r for r in log.records}

    left_records, right_records = keyed(left), keyed(right)
    differences = []
    for key, record in left_records.items():
        other = right_records.get(key)
        if other is None:
            differences.append(LogDifference(*key, "record", "present", "absent"))
            continue
        for name in compared:
            if record.get(name) != other.get(name):
                differences.append(LogDifference(*key, name, record.get(name), other.get(name)))
    for key in right_records.keys() - left_records.keys():
        differences.append(LogDifference(*key, "record", "absent", "present"))
    return differences
