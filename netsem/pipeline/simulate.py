"""`netsem simulate`: the objects of `netsem send` on a virtual clock, no sockets.

The sender offers every datagram at t = 0 in order, the emulator `Link` runs through the
offline driver, and the reassembler sees each delivery at its virtual time. For the same
seed and options the received mask and metrics equal those of `netsem send`.
"""

from __future__ import annotations

from emulator.offline import run_offline
from netsem.pipeline.report import Report
from netsem.pipeline.session import Outgoing, SessionOptions, build_link, finish, prepare
from packetizers.reassembler import Frame, Reassembler


def transmit_virtual(outgoing: Outgoing) -> tuple[Frame, dict, dict]:
    """The frame as the receiver gets it, with receiver and link counters."""
    options = outgoing.options
    link = build_link(options)
    result = run_offline(link, ((0.0, datagram) for datagram in outgoing.datagrams))
    reassembler = Reassembler(options.reassembler_limits())
    frames = []
    for when, datagram in result.deliveries:
        frames += reassembler.poll(when)
        reassembler.receive(datagram, when)
    frames += reassembler.poll(float("inf"))
    if not frames:
        raise NothingDelivered(f"the link delivered none of the {len(outgoing.datagrams)} datagrams")
    return frames[0], reassembler.stats(), result.counters.as_dict()


def run_simulate(options: SessionOptions) -> Report:
    outgoing = prepare(options)
    frame, receiver, link = transmit_virtual(outgoing)
    network_s = frame.last_arrival + options.frame_timeout * (not frame.complete)  # virtual seconds
    return finish(outgoing, frame, network_s=network_s, transport="virtual", receiver=receiver, link=link)


class NothingDelivered(Exception):
    """Every datagram was lost: there is no frame to decode."""
