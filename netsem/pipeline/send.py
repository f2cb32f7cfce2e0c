"""`netsem send`: one image through codec, packetizer, real UDP on 127.0.0.1, reassembler.

Without a destination the whole chain runs here over real sockets:

    sender socket -> emulator proxy (in process, the --netem words) -> receiver socket

The proxy is the same `emulator.proxy.serve_proxy` that `netsem emulate` runs, driving the
same `Link` that `netsem simulate` drives on a virtual clock.
"""

from __future__ import annotations

import functools
import os
import socket
import time

import trio

from emulator.link import Link
from emulator.pcap import CaptureWriter
from emulator.proxy import serve_proxy
from netsem.pipeline.report import Report
from netsem.pipeline.session import Outgoing, SessionOptions, build_link, finish, prepare
from netsem.pipeline.udp import NothingArrived, receive_frames, run_trio, send_datagrams, udp_socket
from packetizers.reassembler import Frame, Reassembler


async def _transmit(outgoing: Outgoing, link: Link, capture: CaptureWriter | None) -> tuple[Frame, dict]:
    reassembler = Reassembler(outgoing.options.reassembler_limits())
    with udp_socket() as receiver, udp_socket() as sender:
        async with trio.open_nursery() as nursery:
            proxy = await nursery.start(
                functools.partial(serve_proxy, capture=capture), ("127.0.0.1", 0), receiver.getsockname(), link
            )
            nursery.start_soon(send_datagrams, sender, outgoing.datagrams, proxy)
            (frame,) = await receive_frames(receiver, reassembler)
            nursery.cancel_scope.cancel()
    return frame, reassembler.stats()


def transmit_udp(outgoing: Outgoing, pcap: str | None = None) -> tuple[Frame, dict, dict]:
    """The frame as the receiver socket gets it, with receiver and link counters."""
    options = outgoing.options
    link = build_link(options)
    try:
        if pcap is None:
            frame, receiver = run_trio(_transmit, outgoing, link, None)
        else:
            with CaptureWriter(pcap) as capture:
                frame, receiver = run_trio(_transmit, outgoing, link, capture)
    except NothingArrived:
        if link.counters.sent == 0:
            raise NothingArrived(f"the emulated link delivered none of the {len(outgoing.datagrams)} datagrams") from None
        raise
    return frame, receiver, link.counters.as_dict()


def run_send(options: SessionOptions, pcap: str | None = None) -> Report:
    outgoing = prepare(options)
    started = time.perf_counter()
    frame, receiver, link = transmit_udp(outgoing, pcap)
    return finish(outgoing, frame, network_s=time.perf_counter() - started, transport="udp",
                  receiver=receiver, link=link)


class ReceiverUnreachable(Exception):
    """The destination answered with ICMP port unreachable: nothing listens there."""


def send_to(options: SessionOptions, destination: tuple[str, int]) -> dict:
    """Send the image's datagrams to a separately started `netsem emulate` / `netsem recv`.

    There is no receiver here to measure quality, so the report is the sender's half.
    """
    outgoing = prepare(options)
    started = time.perf_counter()
    trio.run(_send_connected, outgoing.datagrams, destination)
    wire_bytes = sum(map(len, outgoing.datagrams))
    height, width = outgoing.image.shape[:2]
    return {
        "to": f"{destination[0]}:{destination[1]}", "codec": options.codec, "partition": options.partition,
        "interleave": options.interleave, "seed": options.seed, "image": outgoing.label,
        "datagrams_sent": len(outgoing.datagrams), "bytes_on_wire": wire_bytes,
        "bpp": wire_bytes * 8 / (height * width), "encode_s": outgoing.encode_s,
        "send_s": time.perf_counter() - started,
    }


async def _send_connected(datagrams: list[bytes], destination: tuple[str, int]) -> None:
    # A connected socket learns of an ICMP "port unreachable", so a missing receiver is
    # noticed at once instead of datagrams vanishing silently.
    with udp_socket() as sock:
        try:
            sock.connect(destination)
            await send_datagrams(sock, datagrams, None)
            await trio.sleep(0.02)  # time for a late ICMP error to come back
            pending = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if pending:
                raise ConnectionRefusedError(pending, os.strerror(pending))
        except ConnectionRefusedError:
            raise ReceiverUnreachable(
                f"{destination[0]}:{destination[1]} refused the datagrams (is netsem recv or emulate running there?)"
            ) from None
        except OSError as error:
            raise ReceiverUnreachable(f"cannot send to {destination[0]}:{destination[1]}: {error.strerror}") from None
