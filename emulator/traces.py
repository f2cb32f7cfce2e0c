"""Recorded network behaviour replayed by a `Link`: Mahimahi link traces and packet traces.

**Link trace** (`link-trace FILE`, Mahimahi's format, as its `mm-link` reads it): one line per
delivery opportunity, the integer milliseconds since the start at which it occurs
(non-decreasing; several lines with the same number are several opportunities in that
millisecond). Each opportunity carries `bytes` bytes (default 1500, one MTU-sized packet);
as in Mahimahi's `LinkQueue`, bytes are packed: an opportunity serves several small packets
or part of a large one, and an opportunity that finds the queue empty is wasted. The trace
lasts until its last timestamp and then repeats (`once`: it does not; after its end nothing
leaves and arrivals are dropped, "link trace ended"). Its average rate is
lines x bytes / last timestamp. `stretch F` multiplies every time by F (F = 2 halves the rate).
Bytes are counted as for `rate`: the UDP payload plus the Ethernet/IP/UDP headers.

**Packet trace** (`packet-trace FILE`, netsem's format): what happened to each packet of a
recorded transfer. Text, `#` starts a comment, one packet per line in sending order, in one
of two forms (one form per file):

    DELAY_MS | lost                 one column: the i-th packet through the link takes line i
    SEND_MS DELAY_MS | lost         two columns: a packet sent at t (since the link's first
                                    packet) takes the last line whose SEND_MS - first SEND_MS <= t

DELAY_MS is the one-way delay in milliseconds (a decimal number >= 0), `lost` a packet that
never arrived. The trace repeats (one column: after its last line; two columns: after
last - first SEND_MS plus the mean spacing, so a regularly spaced trace loops seamlessly);
`once` stops it: packets past its end are lost ("packet trace ended"). `stretch F` scales
the SEND_MS column. `netsem trace from-pcap` writes both kinds from a capture.

Both replays are deterministic: no random draw is involved.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MTU_BYTES = 1500  # what one Mahimahi delivery opportunity carries here (Mahimahi's own TUN counts 1504)
MAX_TRACE_LINES = 50_000_000  # a bound on what a trace file may make us hold
CAUSE_LINK_TRACE_ENDED = "link trace ended"
CAUSE_PACKET_TRACE_LOST = "packet trace: lost"
CAUSE_PACKET_TRACE_ENDED = "packet trace ended"
LOST_WORD = "lost"


class TraceError(ValueError):
    """A trace file that cannot be replayed; the message names the file and the line."""


@dataclass(frozen=True)
class LinkTrace:
    """A parsed Mahimahi trace and how to replay it."""

    path: str
    opportunities_ms: tuple[int, ...] = field(repr=False)
    loop: bool = True
    stretch: float = 1.0
    bytes_per_opportunity: int = MTU_BYTES

    @property
    def period_ms(self) -> int:
        return self.opportunities_ms[-1]

    @property
    def average_bytes_per_s(self) -> float:
        """The rate the trace delivers when the queue never runs dry."""
        return len(self.opportunities_ms) * self.bytes_per_opportunity / (self.period_ms * self.stretch / 1e3)


@dataclass(frozen=True)
class PacketTrace:
    """A parsed packet trace: per line, lost or a delay; with send times in the two-column form."""

    path: str
    delays_ns: tuple[int | None, ...] = field(repr=False)  # None: lost
    send_ns: tuple[int, ...] | None = field(default=None, repr=False)  # from the first line, or None
    loop: bool = True
    stretch: float = 1.0

    @property
    def period_ns(self) -> int | None:
        """How long one pass of a two-column trace lasts (before `stretch`); None for one column."""
        if self.send_ns is None:
            return None
        span = self.send_ns[-1]
        spacing = span / (len(self.send_ns) - 1) if len(self.send_ns) > 1 else 1e6
        return max(1, round(span + spacing))


def _lines(path: str) -> Iterable[tuple[int, list[str]]]:
    try:
        text = Path(path).read_text()
    except UnicodeDecodeError:
        raise TraceError(f"trace {path!r} is not text") from None
    except (OSError, ValueError) as error:  # ValueError: a name no file can have (NUL byte)
        raise TraceError(f"cannot read trace {path!r}: {getattr(error, 'strerror', None) or error}") from None
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if words:
            yield number, words


def read_link_trace(path: str, *, loop: bool = True, stretch: float = 1.0,
                    bytes_per_opportunity: int = MTU_BYTES) -> LinkTrace:
    """Read a Mahimahi trace, with Mahimahi's checks (non-decreasing, lasting more than 0 ms)."""
    times: list[int] = []
    for number, words in _lines(path):
        if len(words) != 1 or not words[0].isascii() or not words[0].isdigit():
            raise TraceError(f"{path}:{number}: a Mahimahi trace line is one integer (milliseconds), not {' '.join(words)!r}")
        value = int(words[0])
        if times and value < times[-1]:
            raise TraceError(f"{path}:{number}: timestamps must not decrease ({value} after {times[-1]})")
        times.append(value)
        if len(times) > MAX_TRACE_LINES:
            raise TraceError(f"{path}: more than {MAX_TRACE_LINES} lines")
    if not times:
        raise TraceError(f"{path}: no delivery opportunities")
    if times[-1] == 0:
        raise TraceError(f"{path}: the trace must last a nonzero amount of time (its last timestamp is 0)")
    return LinkTrace(path, tuple(times), loop, stretch, bytes_per_opportunity)


def read_packet_trace(path: str, *, loop: bool = True, stretch: float = 1.0) -> PacketTrace:
    """Read a packet trace in either form; TraceError naming the line when malformed."""
    delays: list[int | None] = []
    sends: list[int] = []
    columns = None
    for number, words in _lines(path):
        if columns is None:
            columns = len(words)
            if columns not in (1, 2):
                raise TraceError(f"{path}:{number}: a packet trace line is 'DELAY_MS|lost' or 'SEND_MS DELAY_MS|lost'")
        if len(words) != columns:
            raise TraceError(f"{path}:{number}: {len(words)} columns where the trace has {columns}")
        if columns == 2:
            send = _milliseconds_ns(words[0], path, number)
            if sends and send < sends[-1]:
                raise TraceError(f"{path}:{number}: send times must not decrease")
            sends.append(send)
        word = words[-1]
        delays.append(None if word == LOST_WORD else _milliseconds_ns(word, path, number))
        if len(delays) > MAX_TRACE_LINES:
            raise TraceError(f"{path}: more than {MAX_TRACE_LINES} lines")
    if not delays:
        raise TraceError(f"{path}: no packets")
    if columns == 1 and stretch != 1.0:
        raise TraceError(f"{path}: 'stretch' needs send times (the two-column form)")
    send_ns = tuple(s - sends[0] for s in sends) if columns == 2 else None
    return PacketTrace(path, tuple(delays), send_ns, loop, stretch)


def _milliseconds_ns(word: str, path: str, number: int) -> int:
    try:
        value = float(word)
    except ValueError:
        raise TraceError(f"{path}:{number}: {word!r} is neither milliseconds nor '{LOST_WORD}'") from None
    if not math.isfinite(value) or value < 0 or value > 1e12:
        raise TraceError(f"{path}:{number}: {word!r} is not a time in milliseconds from 0 to 1e12")
    return round(value * 1e6)


class LinkTraceServer:
    """Departure times of packets sent through a link trace (sans-I/O, integer ns since the trace's start).

    The cursor is one delivery opportunity (numbered across repetitions) and the bytes it still
    has; a packet ready at `ready` uses what is left of the current opportunity if that one is
    not earlier than `ready`, otherwise the first opportunity at or after `ready`.
    """

    def __init__(self, trace: LinkTrace) -> None:
        scale = 1e6 * trace.stretch
        self._times = [round(t * scale) for t in trace.opportunities_ms]
        self._period = round(trace.period_ms * scale)
        self._count = len(self._times)
        self._loop = trace.loop
        self._size = trace.bytes_per_opportunity
        self._current = -1  # the opportunity in use
        self._left = 0  # its bytes not yet used

    def _time(self, k: int) -> int | None:
        cycle, index = divmod(k, self._count)
        if cycle and not self._loop:
            return None
        return cycle * self._period + self._times[index]

    def _first_at_or_after(self, ready: int) -> int:
        cycle = ready // self._period
        index = bisect.bisect_left(self._times, ready - cycle * self._period)
        return cycle * self._count + index

    def serve(self, ready: int, length: int) -> int | None:
        """When a `length`-byte packet ready at `ready` has gone through; None after a `once` trace's end."""
        ready = max(ready, 0)
        k = self._current
        if self._left == 0 or k < 0 or self._time(k) is None or self._time(k) < ready:
            k = max(k + 1, self._first_at_or_after(ready))
            left = self._size
        else:
            left = self._left
        remaining = length
        while remaining > left:
            remaining -= left
            k += 1
            left = self._size
        finish = self._time(k)
        if finish is None:
            return None
        self._current, self._left = k, left - remaining
        return finish


class PacketTraceCursor:
    """The packet trace's line for each packet: `advance(t)` then `lost()` (the loss-model face) and `sample_ns()`."""

    def __init__(self, trace: PacketTrace) -> None:
        self._delays = trace.delays_ns
        self._loop = trace.loop
        self._send = None
        if trace.send_ns is not None:
            self._send = [round(s * trace.stretch) for s in trace.send_ns]
            self._period = round(trace.period_ns * trace.stretch)
        self._next = 0
        self._entry: int | None = None  # the current line's delay; None when lost or ended
        self._cause: str | None = None

    def advance(self, since_start_ns: int) -> None:
        """Select the line of the packet arriving now (`since_start_ns` after the link's first)."""
        if self._send is None:
            index = self._next
            self._next += 1
            if index >= len(self._delays):
                if not self._loop:
                    self._set(None, CAUSE_PACKET_TRACE_ENDED)
                    return
                index %= len(self._delays)
        else:
            if since_start_ns >= self._period and not self._loop:
                self._set(None, CAUSE_PACKET_TRACE_ENDED)
                return
            index = bisect.bisect_right(self._send, since_start_ns % self._period) - 1
        delay = self._delays[index]
        self._set(delay, CAUSE_PACKET_TRACE_LOST if delay is None else None)

    def _set(self, delay: int | None, cause: str | None) -> None:
        self._entry, self._cause = delay, cause

    def lost(self) -> str | None:
        return self._cause

    def sample_ns(self) -> int:
        return self._entry or 0


def opportunities_from_arrivals(arrivals: Sequence[tuple[int, int]], bytes_per_opportunity: int = MTU_BYTES) -> list[int]:
    """A Mahimahi trace from a saturating transfer seen at the receiver: (time ns, bytes) per packet.

    As Mahimahi's own traces were recorded (each received MTU packet is one opportunity), every
    `bytes_per_opportunity` bytes received make one line, at the millisecond (since the first
    arrival) the byte that completed it arrived; so the trace's average rate is the transfer's.
    The last line is moved to at least 1 ms, as Mahimahi needs a trace that lasts.
    """
    if not arrivals:
        raise TraceError("no packets to make a trace from")
    start = arrivals[0][0]
    lines: list[int] = []
    carried = 0
    for time_ns, size in arrivals:
        carried += size
        while carried >= bytes_per_opportunity:
            carried -= bytes_per_opportunity
            lines.append((time_ns - start) // 1_000_000)
    if not lines:
        raise TraceError(f"fewer than {bytes_per_opportunity} bytes arrived: not one delivery opportunity")
    lines[-1] = max(lines[-1], 1)
    return lines


def format_link_trace(lines: Iterable[int]) -> str:
    return "".join(f"{t}\n" for t in lines)


def format_packet_trace(packets: Iterable[tuple[int, int | None]], *, source: str = "") -> str:
    """The two-column form: (send time ns since the first, delay ns or None when lost) per packet."""
    out = ["# netsem packet trace: SEND_MS DELAY_MS|lost per packet, in sending order\n"]
    if source:
        out.append(f"# from {source}\n")
    for send, delay in packets:
        out.append(f"{send / 1e6:.6f} {LOST_WORD if delay is None else f'{delay / 1e6:.6f}'}\n")
    return "".join(out)
