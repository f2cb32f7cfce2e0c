"""`netsem simulate`: the objects of `netsem send` on a virtual clock, no sockets.

The sender offers every datagram at its paced time (all at t = 0 without pacing), the
emulator `Link` runs through the offline driver, and the reassembler sees each delivery at
its virtual time. For the same seed and options the received masks and metrics equal those
of `netsem send`.
"""

from __future__ import annotations

import time

from emulator.offline import run_offline
from netsem.pipeline.images import LoadedImage
from netsem.pipeline.session import (
    Outgoing,
    SessionOptions,
    SessionResult,
    Transmission,
    build_link,
    match_frames,
    run_session,
    send_schedule,
    stage_seconds,
)
from packetizers.reassembler import Reassembler


def transmit_virtual(outgoing: list[Outgoing]) -> Transmission:
    """The frames as the receiver gets them, with receiver and link counters."""
    options = outgoing[0].options
    link = build_link(options)
    started = time.perf_counter()
    result = run_offline(link, send_schedule(outgoing))
    reassembler = Reassembler(options.reassembler_limits(outgoing))
    frames = []
    for when, datagram in result.deliveries:
        frames += reassembler.poll(when)
        reassembler.receive(datagram, when)
    frames += reassembler.poll(float("inf"))
    if not frames:
        sent = sum(len(item.datagrams) for item in outgoing)
        raise NothingDelivered(f"the link delivered none of the {sent} datagrams")
    virtual_s = max(frame.last_arrival + options.frame_timeout * (not frame.complete) for frame in frames)
    return Transmission(match_frames(outgoing, frames), reassembler.stats(), result.counters.as_dict(),
                        network_s=time.perf_counter() - started, phy_s=stage_seconds(link),
                        network_virtual_s=virtual_s)


class NothingDelivered(Exception):
    """Every datagram was lost: there is no frame to decode."""


def run_simulate(options: SessionOptions, images: list[LoadedImage] | None = None) -> SessionResult:
    """`netsem simulate`: the same session on the virtual clock."""
    return run_session(options, images, transmit_virtual, "virtual")
