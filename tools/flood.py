"""Hostile UDP traffic for hardening tests: floods of malformed and never-completing frames.

    python tools/flood.py HOST:PORT [--count 1000000]

Three kinds, interleaved: random garbage; CRC-valid netsem headers claiming absurd shapes;
and first datagrams of valid frames that never complete (a new frame id each time). Every
datagram is built in advance from a small pool, so the sender runs at socket speed.
"""

from __future__ import annotations

import argparse
import socket
import time

import numpy as np

from packetizers.frames import LatentFrame
from packetizers.packetizer import Packetizer
from packetizers.wire import Layout, PartitionKind, rewrite_header


def flood_pool(size: int = 3000, seed: int = 0) -> list[bytes]:
    """`size` hostile datagrams: a third each of garbage, absurd shapes, and orphan frames."""
    rng = np.random.default_rng(seed)
    latent = rng.integers(0, 64, size=(48, 32, 48))
    frame = LatentFrame(latent, Layout.CHW, 6, False, codec_id=1, image_size=(512, 768))
    template = Packetizer(PartitionKind.CHANNEL, seed=seed).packetize(frame, 0)[0]
    pool = []
    for index in range(size):
        kind = index % 3
        if kind == 0:
            pool.append(rng.bytes(int(rng.integers(1, 1400))))
        elif kind == 1:
            pool.append(rewrite_header(template, frame_id=10**6 + index, dim0=2**31 - 1, dim1=2**20, dim2=2**20))
        else:
            pool.append(rewrite_header(template, frame_id=2 * 10**6 + index))  # one datagram of many: never completes
    return pool


def flood(address: tuple[str, int], count: int, pool: list[bytes] | None = None) -> float:
    """Send `count` datagrams to `address` as fast as a blocking socket allows; returns seconds."""
    pool = pool or flood_pool()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    started = time.perf_counter()
    try:
        for index in range(count):
            try:
                sock.sendto(pool[index % len(pool)], address)
            except ConnectionRefusedError:
                pass
    finally:
        sock.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="HOST:PORT")
    parser.add_argument("--count", type=int, default=1_000_000)
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    seconds = flood((host, int(port)), args.count)
    print(f"sent {args.count} datagrams in {seconds:.1f} s ({args.count / seconds:,.0f}/s)")


if __name__ == "__main__":
    main()
