"""`netsem send`: images through codec, packetizer, real UDP on 127.0.0.1, reassembler.

Without a destination the whole chain runs here over real sockets:

    sender socket -> emulator proxy (in process, the --netem words) -> receiver socket

The proxy is the same `emulator.proxy.serve_proxy` that `netsem emulate` runs, driving the
same `Link` that `netsem simulate` drives on a virtual clock. With `--to` only the sender's
half runs and the datagrams go to a separately started `netsem emulate` or `netsem recv`.
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
import time

import trio

from emulator.link import Link
from emulator.pcap import CaptureWriter
from emulator.proxy import serve_proxy
from netsem.pipeline.images import LoadedImage
from netsem.pipeline.session import (
    Outgoing,
    SessionOptions,
    Transmission,
    build_link,
    match_frames,
    run_session,
    send_schedule,
    stage_seconds,
)
from netsem.pipeline.udp import NothingArrived, collect_frames, resolve, run_trio, send_paced, udp_socket
from packetizers.reassembler import Frame, Reassembler

ALL_SENT_GRACE = 0.5  # s: after this, datagrams the proxy never read were dropped by the kernel


async def _transmit(outgoing: list[Outgoing], link: Link, capture: CaptureWriter | None) -> tuple[list[Frame], dict]:
    options = outgoing[0].options
    reassembler = Reassembler(options.reassembler_limits(outgoing))
    schedule = send_schedule(outgoing)
    sender_done_at: float | None = None

    def all_sent() -> bool:
        if sender_done_at is None or link.queued:
            return False
        return link.counters.received >= len(schedule) or trio.current_time() > sender_done_at + ALL_SENT_GRACE

    with udp_socket() as receiver, udp_socket() as sender:
        async with trio.open_nursery() as nursery:
            proxy = await nursery.start(
                functools.partial(serve_proxy, capture=capture), ("127.0.0.1", 0), receiver.getsockname(), link
            )

            async def send_all() -> None:
                nonlocal sender_done_at
                await send_paced(sender, schedule, proxy)
                sender_done_at = trio.current_time()

            nursery.start_soon(send_all)
            frames = await collect_frames(receiver, reassembler, len(outgoing), all_sent=all_sent)
            nursery.cancel_scope.cancel()
    return frames, reassembler.stats()


def transmit_udp(outgoing: list[Outgoing], pcap: str | None = None) -> Transmission:
    """The frames as the receiver socket gets them, with receiver and link counters."""
    link = build_link(outgoing[0].options)
    started = time.perf_counter()
    if pcap is None:
        frames, receiver = run_trio(_transmit, outgoing, link, None)
    else:
        with CaptureWriter(pcap) as capture:
            frames, receiver = run_trio(_transmit, outgoing, link, capture)
    if not frames:
        sent = sum(len(item.datagrams) for item in outgoing)
        raise NothingArrived(f"the emulated link delivered none of the {sent} datagrams")
    return Transmission(match_frames(outgoing, frames), receiver, link.counters.as_dict(),
                        network_s=time.perf_counter() - started, phy_s=stage_seconds(link))


class ReceiverUnreachable(Exception):
    """The destination answered with ICMP port unreachable: nothing listens there."""


def random_first_frame_id() -> int:
    """A sender talking to a long-running receiver starts its frame ids anywhere, so that
    sessions sharing a receiver (or a relay's address) do not reuse each other's ids."""
    return secrets.randbits(32)


def send_to(outgoing: list[Outgoing], destination: tuple[str, int]) -> list[dict]:
    """Send every frame's datagrams to a separately started `netsem emulate` / `netsem recv`.

    There is no receiver here to measure quality, so each report is the sender's half."""
    started = time.perf_counter()
    trio.run(send_connected, send_schedule(outgoing), destination)
    send_s = time.perf_counter() - started
    options = outgoing[0].options
    reports = []
    for item in outgoing:
        wire_bytes = sum(map(len, item.datagrams))
        height, width = item.image.shape[:2]
        reports.append({
            # the codec each frame went with: --bpp chooses one per image
            "to": f"{destination[0]}:{destination[1]}", "codec": item.codec.name,
            "skip_channels": getattr(item.codec, "skip", 0), "partition": item.options.partition,
            "interleave": options.interleave, "seed": options.seed, "image": item.label,
            "stream_id": options.stream_id, "frame_id": item.frame_id,
            "datagrams_sent": len(item.datagrams), "bytes_on_wire": wire_bytes,
            "bpp": wire_bytes * 8 / (height * width), "encode_s": item.encode_s, "send_s": send_s,
            "notes": list(item.notes),
        })
    return reports


async def send_connected(schedule: list[tuple[float, bytes]], destination: tuple[str, int]) -> None:
    # A connected socket learns of an ICMP "port unreachable", so a missing receiver is
    # noticed at once instead of datagrams vanishing silently. It is left unbound: connect
    # picks the address of the interface that reaches the destination (loopback or not).
    try:
        family, address = resolve(destination)
    except OSError as error:
        raise ReceiverUnreachable(f"cannot resolve {destination[0]}: {error.strerror or error}") from None
    with udp_socket(None, family) as sock:
        try:
            sock.connect(address)
            await send_paced(sock, schedule, None)
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


def run_send(options: SessionOptions, pcap: str | None = None, images: list[LoadedImage] | None = None):
    """`netsem send` in process: every frame through the emulator proxy over real sockets."""
    return run_session(options, images, functools.partial(transmit_udp, pcap=pcap), "udp")
