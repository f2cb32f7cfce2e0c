"""Per-frame loss accounting: which datagrams and which units a receiver got.

A frame's geometry comes from the headers of its datagrams; what is missing is computed
from the ids that arrived (as ranges), never by enumerating `unit_count` ids, because a
header from a capture may claim billions of units.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from packetizers.partition import PartitionError, unit_count_for, unit_sizes_of
from packetizers.wire import Header, Layout, PartitionKind

# What a unit is called, by (layout, partition kind); see packetizers/partition.py.
UNIT_NAMES = {
    (Layout.CHW, PartitionKind.CHANNEL): "channels",
    (Layout.CHW, PartitionKind.TOKEN): "positions",
    (Layout.CHW, PartitionKind.SPATIAL): "blocks",
    (Layout.ND, PartitionKind.CHANNEL): "token dims",
    (Layout.ND, PartitionKind.TOKEN): "tokens",
    (Layout.ND, PartitionKind.SPATIAL): "token blocks",
    (Layout.BYTES, PartitionKind.SEGMENT): "segments",
}
MAX_COUNTED_UNITS = 1 << 20  # lost elements are summed only up to this many lost units


def enum_name(kind: type[enum.IntEnum], value: int) -> str:
    """'chw' for Layout 0; the number itself for a value the enum lacks."""
    return kind(value).name.lower() if value in kind._value2member_map_ else str(value)


def missing_ranges(present: Iterable[int], total: int) -> list[tuple[int, int]]:
    """Inclusive (first, last) ranges of [0, total) not in `present`."""
    ranges, expected = [], 0
    for value in sorted(set(present)):
        if value >= total:
            break
        if value > expected:
            ranges.append((expected, value - 1))
        expected = value + 1
    if expected < total:
        ranges.append((expected, total - 1))
    return ranges


def format_ranges(ranges: Iterable[tuple[int, int]], limit: int | None = None) -> str:
    """'3, 17, 40-45' from [(3, 3), (17, 17), (40, 45)]; past `limit` ranges, how many more."""
    ranges = list(ranges)
    shown = ranges if limit is None else ranges[:limit]
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in shown)
    return text + (f", ... ({len(ranges) - len(shown)} more)" if len(shown) < len(ranges) else "")


def false_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) ranges of the False entries of a bool vector, found vectorised."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], ~mask.astype(bool), [False])).astype(np.int8)))
    return list(zip(edges[::2].tolist(), (edges[1::2] - 1).tolist()))


def ranges_of(values: Iterable[int]) -> list[tuple[int, int]]:
    """Collapse integers into inclusive ranges."""
    ranges: list[tuple[int, int]] = []
    for value in sorted(set(values)):
        if ranges and value == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], value)
        else:
            ranges.append((value, value))
    return ranges


def range_count(ranges: Iterable[tuple[int, int]]) -> int:
    return sum(b - a + 1 for a, b in ranges)


@dataclass
class FrameLosses:
    """Accumulates one frame's delivered datagrams."""

    header: Header  # the first datagram seen: frame-wide fields
    datagrams_seen: set[int] = field(default_factory=set)  # captured at all, intact or not
    datagrams_delivered: set[int] = field(default_factory=set)
    whole_units: set[int] = field(default_factory=set)
    slices: dict[int, set[int]] = field(default_factory=dict)  # unit -> delivered sub indices
    sub_counts: dict[int, int] = field(default_factory=dict)
    unit_lengths: dict[int, int] = field(default_factory=dict)  # bytes layout: from every captured datagram

    def add(self, header: Header, unit_ids: tuple[int, ...], delivered: bool,
            unit_spans: tuple[tuple[int, int], ...] = ()) -> None:
        self.datagrams_seen.add(header.datagram_index)
        self.unit_lengths.update((unit, length) for unit, (_, length) in zip(unit_ids, unit_spans))
        if not delivered:
            return
        self.datagrams_delivered.add(header.datagram_index)
        if header.sub_count > 1 and len(unit_ids) == 1:
            self.slices.setdefault(unit_ids[0], set()).add(header.sub_index)
            self.sub_counts[unit_ids[0]] = header.sub_count
        else:
            self.whole_units.update(unit_ids)

    def summary(self) -> dict:
        """Counts and compact lists of what was lost, JSON-ready."""
        header = self.header
        complete = {unit for unit, subs in self.slices.items() if len(subs) >= self.sub_counts[unit]}
        partial = {unit: len(subs) for unit, subs in self.slices.items() if unit not in complete}
        received = self.whole_units | complete
        lost = missing_ranges(received, header.unit_count)
        lost_datagrams = missing_ranges(self.datagrams_delivered, header.datagram_count)
        kind = (header.layout, header.partition)
        return {
            "stream_id": header.stream_id,
            "frame_id": header.frame_id,
            "layout": enum_name(Layout, header.layout),
            "partition": enum_name(PartitionKind, header.partition),
            "shape": list(header.shape),
            "datagrams_expected": header.datagram_count,
            "datagrams_captured": len(self.datagrams_seen),
            "datagrams_received": len(self.datagrams_delivered),
            "datagrams_lost": range_count(lost_datagrams),
            "datagrams_lost_list": format_ranges(lost_datagrams),
            "units_expected": header.unit_count,
            "units_received": len(received),
            "units_lost": range_count(lost),
            "units_lost_list": format_ranges(lost),
            "units_partial": {str(u): f"{n}/{self.sub_counts[u]} slices" for u, n in sorted(partial.items())},
            "unit_name": UNIT_NAMES.get(kind, "units"),
            "elements_lost": self._elements_lost(lost),
        }

    def _elements_lost(self, lost: list[tuple[int, int]]) -> int | None:
        """Elements of the lost units (partial units count whole), or None for a geometry that
        does not validate or too many lost units to sum."""
        header = self.header
        if header.layout == Layout.BYTES:  # lengths travel with the units; unknown if never captured
            if range_count(lost) > MAX_COUNTED_UNITS:
                return None
            lengths = [self.unit_lengths.get(unit) for a, b in lost for unit in range(a, b + 1)]
            return None if None in lengths else sum(lengths)
        try:
            layout, kind = Layout(header.layout), PartitionKind(header.partition)
            geometry = (layout, header.shape, kind, (header.block_h, header.block_w), (header.grid_h, header.grid_w))
            if unit_count_for(*geometry) != header.unit_count or range_count(lost) > MAX_COUNTED_UNITS:
                return None
        except (ValueError, PartitionError):
            return None
        if not lost:
            return 0
        ids = np.concatenate([np.arange(a, b + 1, dtype=np.int64) for a, b in lost])
        return int(unit_sizes_of(*geometry, ids).sum())
