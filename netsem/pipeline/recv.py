"""`netsem recv`: a long-running receiver that decodes every frame that arrives.

Frames are decoded when complete or at their deadline, by the codec the header names, in a
worker thread so the socket keeps being drained meanwhile. Each frame leaves an image and a
JSON report in the output folder; Ctrl-C prints the counters and exits 130.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from collections.abc import Callable
from pathlib import Path

import trio

from netsem.codecs.base import CodecError
from netsem.pipeline.frames import codec_for_frame, decode_received
from netsem.pipeline.images import save_image
from netsem.pipeline.udp import drain, udp_socket
from packetizers.reassembler import Frame, Reassembler, ReassemblerLimits


@dataclass
class ReceiverSummary:
    frames_decoded: int = 0
    frames_undecodable: int = 0
    receiver: dict = field(default_factory=dict)  # reassembler counters at the end


def compact_ranges(indices: list[int]) -> str:
    """'0-3, 7, 9-10' for [0, 1, 2, 3, 7, 9, 10]."""
    parts, start = [], None
    for position, value in enumerate(indices):
        if start is None:
            start = value
        if position + 1 == len(indices) or indices[position + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}-{value}")
            start = None
    return ", ".join(parts)


def frame_report(frame: Frame) -> dict:
    header = frame.header
    lost = [int(i) for i in (~frame.unit_received).nonzero()[0]]
    return {
        "stream_id": header.stream_id, "frame_id": header.frame_id, "codec_id": header.codec_id,
        "image_size": [header.image_height, header.image_width], "complete": frame.complete,
        "datagrams_received": frame.datagrams_received, "datagrams_expected": header.datagram_count,
        "units_total": header.unit_count, "units_received": header.unit_count - len(lost),
        "units_lost": compact_ranges(lost), "elements_received": float(frame.received.mean()),
        "wait_s": frame.last_arrival - frame.first_arrival,
    }


def decode_frame(frame: Frame, out_dir: Path) -> dict:
    report = frame_report(frame)
    name = f"frame-{frame.header.stream_id}-{frame.header.frame_id}"
    try:
        codec = codec_for_frame(frame)
        started = time.perf_counter()
        image = decode_received(codec, frame)
        report.update(codec=codec.name, decode_s=time.perf_counter() - started, image=f"{name}.png")
        save_image(image, str(out_dir / f"{name}.png"))
    except (CodecError, ValueError) as error:  # a peer can name a codec or geometry we lack
        report.update(error=str(error))
    (out_dir / f"{name}.json").write_text(json.dumps(report, indent=1))
    return report


async def serve_receiver(
    listen: tuple[str, int],
    out_dir: Path,
    *,
    limits: ReassemblerLimits = ReassemblerLimits(),
    max_frames: int | None = None,
    on_report: Callable[[dict], None] | None = None,
    summary: ReceiverSummary | None = None,
    task_status=trio.TASK_STATUS_IGNORED,
) -> ReceiverSummary:
    """Receive and decode until cancelled or `max_frames` frames were handled.

    `summary` is filled in as frames arrive, so a caller that cancels this task (Ctrl-C)
    still holds the counters; pass one in to keep it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summary if summary is not None else ReceiverSummary()
    reassembler = Reassembler(limits)
    with udp_socket(listen) as sock:
        task_status.started(sock.getsockname())
        while max_frames is None or summary.frames_decoded + summary.frames_undecodable < max_frames:
            deadline = reassembler.next_deadline()
            with trio.move_on_at(float("inf") if deadline is None else deadline):
                await trio.lowlevel.wait_readable(sock)
            now = trio.current_time()
            drain(sock, reassembler, now)
            for frame in reassembler.poll(now):
                report = await trio.to_thread.run_sync(decode_frame, frame, out_dir)
                if "error" in report:
                    summary.frames_undecodable += 1
                else:
                    summary.frames_decoded += 1
                if on_report is not None:
                    on_report(report)
            summary.receiver = reassembler.stats()
    return summary
