"""Seed 004's trio edge: a user sends its datagrams, the base station listens on UDP.

The base station's loop waits for its socket or for the core's next deadline (a partial
frame's timeout), drains what is queued into `BaseStation.receive`, and hands each decoded
frame on; it ends after `frames` frames, or when nothing arrived for `idle` seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import trio
import trio.lowlevel

from netsem.pipeline.send import send_connected
from netsem.pipeline.udp import drain, udp_socket
from netsem.semnoma.network import BaseStation, Delivered


def send_user(datagrams: list[bytes], destination: tuple[str, int]) -> None:
    """Back to back to `destination` (raises ReceiverUnreachable when nothing listens there)."""
    trio.run(send_connected, [(0.0, d) for d in datagrams], destination)


async def serve_base_station(station: BaseStation, listen: tuple[str, int], frames: int, idle: float,
                             on_frame: Callable[[Delivered], None], *, task_status=trio.TASK_STATUS_IGNORED) -> int:
    """Decode until `frames` frames were handed on or `idle` seconds passed without a datagram;
    returns how many were."""
    done = 0
    with udp_socket(listen) as sock:
        task_status.started(sock.getsockname())
        last_arrival = trio.current_time()
        while done < frames:
            now = trio.current_time()
            deadline = station.next_deadline()
            wake = min(deadline if deadline is not None else math.inf, last_arrival + idle)
            with trio.move_on_at(wake):
                await trio.lowlevel.wait_readable(sock)
            now = trio.current_time()
            if drain(sock, station, now):
                last_arrival = now
            for frame in station.poll(now):
                on_frame(frame)
                done += 1
            if now >= last_arrival + idle and station.next_deadline() is None:
                break
        for frame in station.flush() if done < frames else []:
            on_frame(frame)
            done += 1
    return done
