"""Run a sequence through the seb cores: on a virtual clock, or over real UDP sockets on loopback.

    result = run_sequence(images, options, transport="offline" | "udp")

Both hand the receiver the same datagrams in the same order (the sender's, message after
message), so for impairments that do not depend on time (netem loss / corrupt / duplicate,
the PHY stage) the two give identical images and counters (`tests/seb/test_network.py`).
Over sockets the sender waits until the receiver has read a message's datagrams before it
sends the next (an event, not a pause), so a burst never overruns the socket buffer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from netsem.metrics import psnr_db, ssim
from netsem.seb.codec import SebCodec
from netsem.seb.session import SebReceiver, SebSender, SentMessage, SequenceOptions

INTERVAL = 0.05  # virtual seconds between messages
SETTLE = 5.0  # virtual seconds after the last message before the receiver flushes


@dataclass
class MessageRow:
    index: int
    name: str
    frame_id: int
    kb_version: int
    psnr: float | None
    ssim: float | None
    data_bytes: int
    update_bytes: int
    protection_bytes: int
    distortion: float | None
    update: str  # "" or "v2: +40 -3 (1234 B)"
    error: str | None


@dataclass
class SequenceResult:
    rows: list[MessageRow]
    counts: dict[str, int]
    rejected: dict[str, int]
    applied: list[int]
    sent_datagrams: list[list[bytes]] = field(default_factory=list)
    phy_stats: dict[str, int] = field(default_factory=dict)
    receiver_kb: object = None  # the KB the receiver holds at the end

    @property
    def mean_psnr(self) -> float:
        values = [r.psnr for r in self.rows if r.psnr is not None]
        return float(np.mean(values)) if values else math.nan


def _row(sent: SentMessage, name: str, image: np.ndarray, receiver: SebReceiver) -> MessageRow:
    got = receiver.results.get(sent.frame_id)
    decoded = got.image if got is not None else None
    update = ""
    if sent.update is not None:
        u = sent.update
        update = f"v{u.new_version}: +{len(u.added)} -{len(u.removed)} Sebs ({len(u.to_bytes())} B)"
    return MessageRow(sent.index, name, sent.frame_id, sent.kb_version,
                      None if decoded is None else psnr_db(image, decoded),
                      None if decoded is None else ssim(image, decoded),
                      sent.data_bytes, sent.update_bytes, sent.protection_bytes, sent.distortion, update,
                      "frame never arrived" if got is None else got.error)


def _result(sender: SebSender, receiver: SebReceiver, named: list[tuple[str, np.ndarray]], sent: list[list[bytes]]) -> SequenceResult:
    rows = [_row(s, name, image, receiver) for s, (name, image) in zip(sender.sent, named)]
    stats = {}
    for stage in receiver.link.stages:
        stats.update({k: int(v) for k, v in getattr(stage, "stats", {}).items()})
        for klass, inner in getattr(stage, "by_class", {}).items():
            stats[f"channel_uses_class{klass}"] = int(inner.stats["channel_uses"])
    return SequenceResult(rows, dict(receiver.counts), dict(receiver.rejected), list(receiver.applied), sent, stats,
                          receiver.codec.kb)


def make_pair(options: SequenceOptions, codec: SebCodec | None = None) -> tuple[SebSender, SebReceiver]:
    """A sender and a receiver, each with its own copy of the shipped KB (or `codec`'s)."""
    from netsem.codecs.registry import get_codec

    base = codec or get_codec("seb")
    return SebSender(base.using(base.kb.copy()), options), SebReceiver(base.using(base.kb.copy()), options)


def run_offline(named: list[tuple[str, np.ndarray]], options: SequenceOptions, *, codec: SebCodec | None = None,
                extra: dict[int, list[bytes]] | None = None, progress=None) -> SequenceResult:
    """`extra[k]`: datagrams (e.g. hostile ones) handed to the receiver right after message k's."""
    sender, receiver = make_pair(options, codec)
    sent = []
    now = 0.0
    for k, (_, image) in enumerate(named):
        now = k * INTERVAL
        datagrams = sender.message(image)
        sent.append(datagrams)
        for datagram in datagrams + (extra or {}).get(k, []):
            receiver.arrive(datagram, now)
        receiver.poll(now)
        if progress:
            progress()
    end = now + SETTLE
    while (deadline := receiver.next_deadline()) is not None and deadline <= end:
        receiver.poll(deadline)
    receiver.flush(end)
    return _result(sender, receiver, named, sent)


def run_udp(named: list[tuple[str, np.ndarray]], options: SequenceOptions, *, codec: SebCodec | None = None,
            extra: dict[int, list[bytes]] | None = None, progress=None) -> SequenceResult:
    """The same, over a real UDP socket pair on 127.0.0.1 (trio)."""
    import trio

    from netsem.pipeline.udp import udp_socket

    sender, receiver = make_pair(options, codec)
    sent: list[list[bytes]] = []
    last = [0.0]

    async def main() -> None:
        rx = udp_socket(("127.0.0.1", 0))
        tx = udp_socket(("127.0.0.1", 0))
        target = rx.getsockname()
        expected = 0
        arrived = trio.Condition()
        start = trio.current_time()
        done = trio.Event()

        async def receive() -> None:
            while True:
                try:
                    datagram = rx.recv(65536)
                except BlockingIOError:
                    if done.is_set() and receiver.counts["arrived"] >= expected:
                        return
                    with trio.move_on_after(0.05):
                        await trio.lowlevel.wait_readable(rx)
                    continue
                now = last[0] = trio.current_time() - start
                receiver.arrive(datagram, now)
                receiver.poll(now)
                async with arrived:
                    arrived.notify_all()

        async def send() -> None:
            nonlocal expected
            for k, (_, image) in enumerate(named):
                datagrams = sender.message(image) + (extra or {}).get(k, [])
                sent.append(datagrams[:len(datagrams) - len((extra or {}).get(k, []))])
                for datagram in datagrams:
                    tx.sendto(datagram, target)
                expected += len(datagrams)
                with trio.move_on_after(5.0):  # a datagram the kernel dropped must not hang the run
                    async with arrived:
                        while receiver.counts["arrived"] < expected:
                            await arrived.wait()
                if progress:
                    progress()
            done.set()

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive)
                nursery.start_soon(send)
        finally:
            rx.close()
            tx.close()

    trio.run(main)
    end = max(last[0], len(named) * INTERVAL) + SETTLE
    while (deadline := receiver.next_deadline()) is not None and deadline <= end:
        receiver.poll(deadline)
    receiver.flush(end)
    return _result(sender, receiver, named, sent)


def run_sequence(named, options: SequenceOptions, transport: str = "offline", **kw) -> SequenceResult:
    if transport not in ("offline", "udp"):
        raise ValueError(f"transport {transport!r}: offline or udp")
    return (run_offline if transport == "offline" else run_udp)(named, options, **kw)
