"""A capture -> per-datagram rows, per-frame loss summaries and counts of what was skipped.

A datagram counts as received when its CRC is good, its pcapng comment is not a drop
("dropped: ...", "queue full", "dropped: phy: ..."), and it was on its way to the receiver.
An emulator capture (`netsem emulate --pcap`, `netsem send --pcap`) holds each datagram
twice, on two interfaces: "ingress" (what reached the emulator: what was sent) and "egress"
(what the emulator passed on: what the receiver got). In such a capture only egress
packets count as received, ingress ones as sent; `Inspection.counted` says which rule
applied. In other captures every packet counts, or with `dst_port` only those sent to that
port (the receiver's).
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


INGRESS, EGRESS = "ingress", "egress"  # the emulator capture's interfaces (emulator/pcap.py)


@dataclass
class Inspection:
    counted: str = "every packet"  # which packets count as received (see the module docstring)
    packets: int = 0
    datagrams: list[dict] = field(default_factory=list)
    malformed: list[dict] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # reason -> packets (not netsem, malformed)
    frames: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "counted": self.counted,
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
    if dst_port is not None:
        inspection.counted = f"packets to UDP port {dst_port}"
    frames: dict[tuple[int, int], FrameLosses] = {}
    first_time = None
    for packet in packets:
        if packet.interface in (INGRESS, EGRESS) and dst_port is None:
            inspection.counted = "egress: what the emulator passed on to the receiver"
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
        towards_receiver = packet.interface != INGRESS if dst_port is None else packet.dport == dst_port
        delivered = parsed.crc_good and not is_drop(packet.comment) and towards_receiver
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
        "type": _message_type(header.msg_type),
        "kb": header.kb_version,
        "imp": header.importance,
        "datagram": f"{header.datagram_index}/{header.datagram_count}",
        "units": units_text(datagram),
        "size": datagram.size,
        "payload": header.payload_len,
        "crc": "good" if datagram.crc_good else "bad",
        "side": packet.interface or "",
        "received": delivered,
        "comment": packet.comment,
    }


def _message_type(value: int) -> str:
    from packetizers.kinds import MessageType

    try:
        return MessageType(value).name.lower()
    except ValueError:
        return str(value)


def _malformed_row(packet: CapturedPacket, rejected: Rejected) -> dict:
    return {"packet": packet.number, "reason": rejected.reason.value, "detail": rejected.detail,
            "comment": packet.comment}
