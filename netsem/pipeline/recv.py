"""`netsem recv`: a long-running receiver that decodes every frame that arrives.

Three parts, so that no peer can stall or kill it:

- the receive loop drains the socket into the sans-I/O `Reassembler` (frames keyed by the
  sender's address), in bounded batches so that signals and deadlines are served even
  under a flood, and hands every delivered frame to the `DecodeQueue`;
- the `DecodeQueue` holds delivered frames, bounded per sender and in bytes, and serves
  senders round-robin (each sender's frames in order of arrival), so one peer's frames
  cannot keep another's waiting behind them;
- one decode worker (a thread, abandoned on Ctrl-C so stopping never waits for a decode)
  decodes a frame at a time and writes it through a `FrameStore`, which never overwrites
  a file. Whatever a frame's decode raises is that frame's error, reported, never the
  receiver's end.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trio

from emulator.sockets import kernel_drops
from netsem.codecs.base import CodecError
from netsem.codecs.registry import codec_name_of_id
from netsem.inspect.summary import false_runs, format_ranges
from netsem.pipeline.frames import codec_for_frame, decode_received
from netsem.pipeline.udp import drain, udp_socket
from packetizers import engine
from packetizers.reassembler import Frame, Reassembler, ReassemblerLimits

RECEIVE_BATCH = 512  # datagrams drained per wake-up before other tasks (signals, deadlines) get a turn


@dataclass(frozen=True)
class ReceiverOptions:
    frame_timeout: float = 0.5  # seconds of silence before a partial frame is decoded
    frame_deadline: float | None = None  # seconds after a frame's first datagram (real-time video)
    max_pixels: int = 4096 * 4096  # largest image a frame may claim: decode cost grows with it
    min_share: float = 0.05  # frames with less of their data received are counted, not decoded
    new_frames_per_second: float = 1000.0  # per sender: beyond it, datagrams of new frames are rejected
    max_frames: int | None = None  # stop after this many frames were handled
    pending_per_sender: int = 4  # delivered frames waiting for the decoder, per sender
    pending_bytes: int = 256 * 2**20  # all waiting frames together
    weights: tuple[tuple[str, str], ...] = ()  # (codec name, weight file): decode that codec with these
    # the codecs whose frames are decoded (empty: every codec known here): a frame names its codec, and
    # loading a learned one costs a peer nothing and this process torch and the weights (~200 MB)
    accept: tuple[str, ...] = ()

    def limits(self) -> ReassemblerLimits:
        return ReassemblerLimits(frame_timeout=self.frame_timeout, frame_deadline=self.frame_deadline,
                                 max_image_pixels=self.max_pixels, min_share=self.min_share,
                                 new_frames_per_second=self.new_frames_per_second)


@dataclass
class ReceiverSummary:
    frames_decoded: int = 0
    frames_undecodable: int = 0  # decoded with an error (reported per frame)
    frames_not_decoded: int = 0  # pushed out of a full decode queue (reported per frame)
    receiver: dict = field(default_factory=dict)  # reassembler counters
    kernel_dropped: int | None = None  # datagrams the kernel dropped on a full socket buffer (Linux)

    def as_dict(self) -> dict:
        return {"frames_decoded": self.frames_decoded, "frames_undecodable": self.frames_undecodable,
                "frames_not_decoded": self.frames_not_decoded, **self.receiver,
                "kernel_dropped": self.kernel_dropped}


# ------------------------------------------------------------------------------ queue
class DecodeQueue:
    """Delivered frames waiting for the decoder: per sender in order of arrival, senders
    served round-robin. A sender with more than `per_sender` frames waiting, or a queue over
    `max_bytes`, loses its oldest waiting frame (returned by `put` so it can be reported)."""

    def __init__(self, per_sender: int, max_bytes: int) -> None:
        self.per_sender = per_sender
        self.max_bytes = max_bytes
        self._waiting: OrderedDict[Hashable, deque[Frame]] = OrderedDict()  # round-robin order of senders
        self._bytes = 0

    def put(self, frame: Frame) -> list[Frame]:
        self._waiting.setdefault(frame.source, deque()).append(frame)
        self._bytes += frame.nbytes
        pushed_out = []
        if len(self._waiting[frame.source]) > self.per_sender:
            pushed_out.append(self._pop_oldest(frame.source))
        while self._bytes > self.max_bytes:
            busiest = max(self._waiting, key=lambda sender: len(self._waiting[sender]))
            pushed_out.append(self._pop_oldest(busiest))
        return pushed_out

    def take(self) -> Frame | None:
        """The next frame to decode: the oldest of the sender whose turn it is."""
        if not self._waiting:
            return None
        sender, frames = next(iter(self._waiting.items()))
        frame = frames.popleft()
        self._bytes -= frame.nbytes
        del self._waiting[sender]
        if frames:
            self._waiting[sender] = frames  # back of the line
        return frame

    def _pop_oldest(self, sender: Hashable) -> Frame:
        frames = self._waiting[sender]
        frame = frames.popleft()
        self._bytes -= frame.nbytes
        if not frames:
            del self._waiting[sender]
        return frame

    def __len__(self) -> int:
        return sum(map(len, self._waiting.values()))


# ------------------------------------------------------------------------------ files
class OutputError(Exception):
    """The output folder cannot be written (one-line message)."""


class FrameStore:
    """Writes each decoded frame's image and report under a name no other frame has.

    Names are `frame-SEQ-SENDER-sSTREAM-fFRAME`: SEQ counts on from the highest already in
    the folder, so a restarted receiver or a peer that reuses a frame id never replaces an
    earlier file. Each file is written to a temporary name and linked into place, which
    fails rather than overwrite.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".netsem-recv-probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise OutputError(f"cannot write to {folder}: {error.strerror or error}") from None
        taken = [int(m.group(1)) for p in folder.iterdir() if (m := re.match(r"frame-(\d+)-", p.name))]
        self._sequence = itertools.count(max(taken, default=0) + 1)

    def save(self, frame: Frame, image: np.ndarray | None, report: dict) -> None:
        """Write the image (if any) and the report; fills in their names or the write error."""
        from PIL import Image

        header = frame.header
        while True:
            base = f"frame-{next(self._sequence):06d}-{sender_tag(frame.source)}-s{header.stream_id}-f{header.frame_id}"
            try:
                if image is not None:
                    self._write_new(f"{base}.png", lambda path: Image.fromarray(image).save(path, format="PNG"))
                    report["image"] = str(self.folder / f"{base}.png")
                report["report"] = str(self.folder / f"{base}.json")
                text = json.dumps(report, indent=1)
                self._write_new(f"{base}.json", lambda path: Path(path).write_text(text))
                return
            except FileExistsError:
                continue  # another process took that number: take the next
            except OSError as error:
                report.pop("image", None)
                report.pop("report", None)
                report["error"] = f"cannot write {self.folder / base}.*: {error.strerror or error}"
                return

    def _write_new(self, name: str, write: Callable[[str], None]) -> None:
        temporary = self.folder / f".{name}.{os.getpid()}.tmp"
        try:
            write(str(temporary))
            os.link(temporary, self.folder / name)  # FileExistsError instead of replacing
        finally:
            temporary.unlink(missing_ok=True)


def sender_tag(source: Hashable) -> str:
    """A file-name-safe rendering of a sender address ('127.0.0.1_50123')."""
    if isinstance(source, tuple) and len(source) >= 2:
        return f"{str(source[0]).replace(':', '.')}_{source[1]}"
    return "local"


# ------------------------------------------------------------------------------ decode
def frame_report(frame: Frame) -> dict:
    header = frame.header
    complete_units = int(frame.unit_received.sum())
    return {
        "sender": f"{frame.source[0]}:{frame.source[1]}" if isinstance(frame.source, tuple) else None,
        "stream_id": header.stream_id, "frame_id": header.frame_id, "codec_id": header.codec_id,
        "image_size": [header.image_height, header.image_width], "delivery": frame.delivery.value,
        "complete": frame.complete, "datagrams_received": frame.datagrams_received,
        "datagrams_expected": header.datagram_count, "units_total": header.unit_count,
        "units_received": complete_units, "units_partial": frame.units_partial,
        "units_lost": format_ranges(false_runs(frame.unit_received), limit=40),
        "share_received": round(frame.share, 6),
        "wait_s": frame.last_arrival - frame.first_arrival,
    }


def decode_frame(frame: Frame, weights: dict[str, str] | None = None,
                 accept: tuple[str, ...] = ()) -> tuple[np.ndarray | None, dict]:
    """The decoded image (None on failure) and the frame's report; never raises on a frame:
    its header is a peer's, so whatever its decode raises is this frame's error. A frame of a
    codec not in `accept` (when given) is that error, its codec never loaded."""
    report = frame_report(frame)
    if accept and (name := codec_name_of_id(frame.header.codec_id)) not in accept:
        report["error"] = (f"codec {name or f'id {frame.header.codec_id}'} is not accepted here "
                           f"(--accept {','.join(accept)})")
        return None, report
    try:
        codec = codec_for_frame(frame, weights)
        report["codec"] = codec.name
        started = time.perf_counter()
        image = decode_received(codec, frame)
        report["decode_s"] = time.perf_counter() - started
        return image, report
    except Exception as error:  # noqa: BLE001 — see the docstring
        report["error"] = str(error) if isinstance(error, CodecError) else f"{type(error).__name__}: {error}"
        return None, report


def decode_and_store(frame: Frame, store: FrameStore, weights: dict[str, str] | None = None,
                     accept: tuple[str, ...] = ()) -> dict:
    image, report = decode_frame(frame, weights, accept)
    store.save(frame, image, report)
    return report


# ------------------------------------------------------------------------------ service
async def serve_receiver(
    listen: tuple[str, int],
    out_dir: Path,
    options: ReceiverOptions = ReceiverOptions(),
    *,
    on_report: Callable[[dict], None] | None = None,
    summary: ReceiverSummary | None = None,
    task_status=trio.TASK_STATUS_IGNORED,
) -> ReceiverSummary:
    """Receive and decode until cancelled or `options.max_frames` frames were handled.

    `summary` is filled in as frames arrive, so a caller that cancels this task (Ctrl-C)
    still holds the counters; pass one in to keep it. Raises OutputError when `out_dir`
    cannot be written, OSError when `listen` cannot be bound."""
    store = FrameStore(out_dir)
    summary = summary if summary is not None else ReceiverSummary()
    reassembler = Reassembler(options.limits())
    queue = DecodeQueue(options.pending_per_sender, options.pending_bytes)
    report = on_report or (lambda _: None)
    with udp_socket(listen) as sock:
        # A receiver lives long enough to repay loading the compiled kernels (~0.3 s; ~3.5 s to
        # compile them the first time after installing): after binding, so that a bad address
        # fails at once and what arrives meanwhile waits in the socket's buffer.
        engine.use_compiled()
        frame_ready = trio.Event()

        def refresh_counters() -> None:
            summary.receiver = reassembler.stats()
            summary.kernel_dropped = kernel_drops(sock)

        async def receive_loop() -> None:
            nonlocal frame_ready
            while True:
                deadline = reassembler.next_deadline()
                with trio.move_on_at(float("inf") if deadline is None else deadline):
                    await trio.lowlevel.wait_readable(sock)
                now = trio.current_time()
                drained = drain_batch(sock, reassembler, now)
                for frame in reassembler.poll(now):
                    for pushed_out in queue.put(frame):
                        summary.frames_not_decoded += 1
                        report({**frame_report(pushed_out), "error": "not decoded: its sender's decode queue was full"})
                    frame_ready.set()
                refresh_counters()
                if drained == RECEIVE_BATCH:
                    await trio.sleep(0)  # more is queued: let the decoder and signal handlers run first

        async def decode_loop() -> None:
            nonlocal frame_ready
            while options.max_frames is None or summary.frames_decoded + summary.frames_undecodable < options.max_frames:
                frame = queue.take()
                if frame is None:
                    await frame_ready.wait()
                    frame_ready = trio.Event()
                    continue
                # abandoned on cancel: Ctrl-C returns at once, the thread's result is dropped
                result = await trio.to_thread.run_sync(decode_and_store, frame, store, dict(options.weights),
                                                       options.accept, abandon_on_cancel=True)
                if "error" in result:
                    summary.frames_undecodable += 1
                else:
                    summary.frames_decoded += 1
                refresh_counters()
                report(result)
            nursery.cancel_scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_loop)
            nursery.start_soon(decode_loop)
            task_status.started(sock.getsockname())
    return summary


def drain_batch(sock, reassembler: Reassembler, now: float) -> int:
    """Feed up to RECEIVE_BATCH queued datagrams, with their senders, to the reassembler."""
    return drain(sock, reassembler, now, RECEIVE_BATCH)
