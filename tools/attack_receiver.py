"""A mixed attack on a running `netsem recv`: every known hostile datagram, in a flood.

    python tools/attack_receiver.py                      # 1 000 000 flood datagrams
    python tools/attack_receiver.py --flood 200000 --json

Starts `netsem recv`, warms it up, then for the length of a flood of `--flood` datagrams
(tools/flood.py: garbage, absurd shapes, frames that never complete) interleaves the attacks
that once killed, bloated or stalled it (each builder below), and every 0.5 s sends a valid
frame from a fresh socket. Printed: peak RSS above the warm baseline, how long each valid
frame took from its last datagram to its report (median, max, how many never came), and
the receiver's counters (rejects by reason, kernel drops). Exit status 1 when recv died.

The builders are also what tests/hardening/test_hardening_attacks.py sends.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from flood import flood_pool  # noqa: E402
from processes import Program, RssSampler, free_port, send_all  # noqa: E402

from netsem.codecs.registry import codec_id_of, get_codec  # noqa: E402
from netsem.pipeline.frames import outgoing_frame  # noqa: E402
from packetizers.frames import LatentFrame  # noqa: E402
from packetizers.packetizer import Packetizer  # noqa: E402
from packetizers.wire import Layout, PartitionKind, rewrite_header  # noqa: E402

RNG = np.random.default_rng(13)


def raw_frame(frame_id: int, size=(24, 32)) -> list[bytes]:
    """A valid, quickly decoded frame (raw pixels of a random image)."""
    codec = get_codec("raw")
    image = RNG.integers(0, 256, size=(*size, 3), dtype=np.uint8)
    return Packetizer(PartitionKind.CHANNEL).packetize(outgoing_frame(codec, image, mtu=1200), frame_id)


def swin_frame_without_token_grid(frame_id: int) -> list[bytes]:
    """A CRC-valid swin frame (codec id 9, layout nd, channel partition) whose token grid is 0x0:
    its decode once raised TypeError and ended recv."""
    codec = get_codec("swin")
    encoded = codec.to_frame(RNG.integers(0, 256, size=(32, 32, 3), dtype=np.uint8))
    frame = LatentFrame(encoded.latent, Layout.ND, encoded.bit_width, encoded.signed, encoded.scale,
                        codec_id=codec_id_of(codec), image_size=(32, 32), token_grid=(0, 0))
    return Packetizer(PartitionKind.CHANNEL).packetize(frame, frame_id)


def huge_image_claims(frame_id: int) -> list[bytes]:
    """A 79-byte-class header claiming 4096 x 4368 pixels (once 9 GB of decoding), and one
    datagram of a 4000 x 4000 cnn-sem frame (under the pixel budget, far too little of it)."""
    huge = rewrite_header(raw_frame(frame_id)[0], image_height=4368, image_width=4096)
    big = LatentFrame(np.zeros((60, 250, 250), np.int8), Layout.CHW, 6, True, 1 / 31, codec_id=3,
                      image_size=(4000, 4000))
    return [huge, Packetizer(PartitionKind.CHANNEL).packetize(big, frame_id + 1)[0]]


def jpeg_frame_with_lying_sof(frame_id: int) -> list[bytes]:
    """A 64x64 jpeg frame whose stream's own SOF says 65500 x 2700 (once a 2.6 GB decode)."""
    jpeg = get_codec("jpeg")
    stream = outgoing_frame(jpeg, RNG.integers(0, 256, size=(64, 64, 3), dtype=np.uint8), mtu=1200)
    header = bytearray(stream.segments[0])
    sof = header.index(b"\xff\xc0")
    header[sof + 5 : sof + 9] = (2700).to_bytes(2, "big") + (65500).to_bytes(2, "big")
    frame = dataclasses.replace(stream, segments=(bytes(header), *stream.segments[1:]))
    return Packetizer(PartitionKind.SEGMENT).packetize(frame, frame_id)


def tiny_spatial_blocks(frame_id: int, count: int = 3) -> list[bytes]:
    """79-byte datagrams of frames with a million 1x1 spatial blocks (once 3.9 s each in the receive loop)."""
    small = LatentFrame(np.zeros((2, 4, 4), np.uint8), Layout.CHW, 1, False, codec_id=1, image_size=(64, 64))
    first = Packetizer(PartitionKind.SPATIAL, block=(1, 1), mtu=79).packetize(small, 0)[0]
    return [rewrite_header(first, dim1=1000, dim2=1000, unit_count=10**6, frame_id=frame_id + i) for i in range(count)]


def new_frame_burst(frame_id: int, count: int = 16) -> list[bytes]:
    """First datagrams of `count` new frames (once enough to evict any frame still arriving)."""
    template = raw_frame(0, size=(64, 64))[0]
    return [rewrite_header(template, frame_id=frame_id + i) for i in range(count)]


ATTACKS = (swin_frame_without_token_grid, huge_image_claims, jpeg_frame_with_lying_sof, tiny_spatial_blocks,
           new_frame_burst)


def attack(address: tuple[str, int], flood_datagrams: int) -> None:
    """The flood, with every attack above sent again after each 1000 flood datagrams (run in a
    process of its own, so the measuring side is never starved of its interpreter)."""
    pool = flood_pool()
    attacks = [datagram for index, build in enumerate(ATTACKS) for datagram in build(1000 * (index + 1))]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for index in range(flood_datagrams):
            try:
                sock.sendto(pool[index % len(pool)], address)
                if index % 1000 == 0:
                    for datagram in attacks:
                        sock.sendto(datagram, address)
            except ConnectionRefusedError:
                pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flood", type=int, default=1_000_000, help="flood datagrams")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        recv = Program("recv", "--listen", f"127.0.0.1:{port}", "--out", folder, "--json")
        address = ("127.0.0.1", port)
        send_all(raw_frame(1), address)
        recv.report_where(120, frame_id=1)
        attacker = multiprocessing.get_context("spawn").Process(target=attack, args=(address, args.flood))
        done = threading.Event()
        probes: dict[int, float] = {}  # frame id -> time its last datagram left
        latencies: list[float] = []
        errors: list[dict] = []

        def collect() -> None:
            while True:
                report = recv.next_report(5.0)
                if report is None:
                    if done.is_set():
                        return
                    continue
                frame_id = report["frame_id"]
                if frame_id in probes and "error" not in report:
                    latencies.append(time.monotonic() - probes.pop(frame_id))
                elif frame_id in probes:
                    errors.append(report)

        with RssSampler(recv.pid) as memory:
            baseline = memory.peak
            collector = threading.Thread(target=collect)
            started = time.monotonic()
            attacker.start()
            collector.start()
            probe_id = 50_000
            while attacker.is_alive():
                send_all(raw_frame(probe_id), address)
                probes[probe_id] = time.monotonic()
                probe_id += 1
                attacker.join(0.5)
            seconds = time.monotonic() - started
            done.set()
            collector.join()
        alive = recv.process.poll() is None
        code, _, stderr = recv.stop(signal.SIGINT)
        counters = json.loads(stderr.strip().splitlines()[-1]) if alive else {}
    result = {
        "flood_datagrams": args.flood, "attack_seconds": round(seconds, 1), "recv_alive": alive,
        "rss_growth_mib": round((memory.peak - baseline) / 2**20, 1), "rss_baseline_mib": round(baseline / 2**20, 1),
        "valid_frames_sent": probe_id - 50_000, "valid_frames_decoded": len(latencies),
        "valid_frames_failed": len(errors), "valid_frames_missing": len(probes),
        "latency_median_s": round(float(np.median(latencies)), 3) if latencies else None,
        "latency_max_s": round(max(latencies), 3) if latencies else None,
        "receiver": counters, "exit_status": code,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}  {value}")
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main())
