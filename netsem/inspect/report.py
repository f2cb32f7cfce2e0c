"""A capture -> per-datagram rows, per-frame loss summaries and counts of what was skipped.

A datagram counts as received when its CRC is good and its pcapng comment is not a drop
("dropped: ...", "queue full": the emulator's arrival record of a packet it then
discarded). An emulator capture holds each datagram twice (arrival and departure); with
`dst_port` only the datagrams sent to that port (the receiver's) count as received.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from netsem.inspect.capture import CapturedPacket, read_packets
from netsem.inspect.datagram import Datagram, Rejected, parse_datagram
from netsem.inspect.summary import FrameLosses, format_ranges, ranges_of

DROP_COMMENTS = ("dropped", "queue full")


def is_drop(comment: str) -> bool:
    return any(part.strip().startswith(DROP_COMMENTS) for part in comment.split(";"))


@dataclass
class Inspection:
    packets: int = 0
    datagrams: list[dict] = field(default_factory=list)
    malformed: list[dict] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # reason -> packets (not netsem, malformed)
    frames: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "packets": self.packets,
            "netsem_datagrams": len(self.datagrams),
            "skipped": dict(sorted(self.skipped.items())),
            "datagrams": self.datagrams,
            "malformed": self.malformed,
            "frames": self.frames,
        }


def units_text(datagram: Datagram) -> str:
    header = datagram.header
    if header.sub_count > 1 and len(datagram.unit_ids) == 1:
        return f"{datagram.unit_ids[0]} slice {header.sub_index + 1}/{header.sub_count}"
    return format_ranges(ranges_of(datagram.unit_ids))


def inspect_packets(packets, dst_port: int | None = None) -> Inspection:
    """Account for every packet; never raises on packet contents."""
    inspection = Inspection()
    frames: dict[tuple[int, int], FrameLosses] = {}
    first_time = None
    for packet in packets:
        inspection.packets += 1
        first_time = packet.time if first_time is None else first_time
        if packet.udp_payload is None:
            inspection.skipped["not_udp"] += 1
            continue
        parsed = parse_datagram(packet.udp_payload)
        if isinstance(parsed, Rejected):
            inspection.skipped[parsed.reason.value] += 1
            if parsed.malformed:
                inspection.malformed.append(_malformed_row(packet, parsed))
            continue
        header = parsed.header
        delivered = parsed.crc_good and not is_drop(packet.comment) and dst_port in (None, packet.dport)
        inspection.datagrams.append(_datagram_row(packet, parsed, packet.time - first_time, delivered))
        if not parsed.crc_good:
            continue  # a corrupted header says nothing reliable about its frame
        key = (header.stream_id, header.frame_id)
        if key not in frames:
            frames[key] = FrameLosses(header)
        frames[key].add(header, parsed.unit_ids, delivered, parsed.unit_spans)
    inspection.frames = [frames[key].summary() for key in sorted(frames)]
    return inspection


def inspect_capture(path: str | Path, dst_port: int | None = None) -> Inspection:
    return inspect_packets(read_packets(path), dst_port)


def _datagram_row(packet: CapturedPacket, datagram: Datagram, time: float, delivered: bool) -> dict:
    header = datagram.header
    return {
        "packet": packet.number,
        "time": round(time, 6),
        "stream": header.stream_id,
        "frame": header.frame_id,
        "datagram": f"{header.datagram_index}/{header.datagram_count}",
        "units": units_text(datagram),
        "size": datagram.size,
        "payload": header.payload_len,
        "crc": "good" if datagram.crc_good else "bad",
        "received": delivered,
        "comment": packet.comment,
    }


def _malformed_row(packet: CapturedPacket, rejected: Rejected) -> dict:
    return {"packet": packet.number, "reason": rejected.reason.value, "detail": rejected.detail,
            "comment": packet.comment}
