"""Fuzz the receiver's decode path: hostile frames through the reassembler and every codec.

`tools/fuzz_receiver.py` stops at the reassembler; this one goes on to what `netsem recv`
does with each delivered frame: find the codec its header names and decode it. Frames of
every codec (raw, the cnn and swin families, jpeg, webp, jpeg2000-tiles, the range-coded -ec) are packetized from small images, then
their frame-wide header fields are rewritten consistently across the frame (codec id,
layout, partition, image size, latent dims, token grid, bit width, signedness, scale, jpeg
quality and restart interval), bytes of a jpeg header segment are changed, and datagrams are
dropped. A decode may fail only with a CodecError (the frame's one-line error); any other
exception is an escape, printed with its traceback, and makes the exit status 1.

    python tools/fuzz_decode.py                 # 100 000 frames
    python tools/fuzz_decode.py -n 2000 --seed 4
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from netsem.codecs.base import CodecError  # noqa: E402
from netsem.codecs.registry import entries  # noqa: E402
from netsem.pipeline.frames import codec_for_frame, decode_received  # noqa: E402
from netsem.pipeline.session import SessionOptions, prepare  # noqa: E402
from netsem.pipeline.images import LoadedImage  # noqa: E402
from packetizers.kinds import LATENT_PARTITION_WORDS  # noqa: E402
from packetizers.reassembler import Reassembler, ReassemblerLimits  # noqa: E402
from packetizers.wire import HEADER_SIZE, Layout, peek_header, rewrite_header, with_crc  # noqa: E402

CODEC_IDS = sorted(entry.codec_id for entry in entries())
# decodes stay quick: a header may claim any image up to this (recv's default budget is larger)
LIMITS = ReassemblerLimits(max_image_pixels=192 * 192, frame_timeout=1.0)


@dataclass
class DecodeFuzzResult:
    frames: int = 0  # mutated frames offered
    delivered: int = 0  # reassembled and handed to a codec
    decoded: int = 0
    codec_errors: Counter = field(default_factory=Counter)  # first words of the CodecError
    escapes: Counter = field(default_factory=Counter)  # "Type: message" -> count

    @property
    def ok(self) -> bool:
        return not self.escapes


def seed_frames() -> list[list[bytes]]:
    """Valid frames of every codec and partition, from small random-textured images."""
    rng = np.random.default_rng(0)
    images = [LoadedImage(rng.integers(0, 256, size=size, dtype=np.uint8), f"{size}") for size in
              ((32, 48, 3), (40, 40, 3), (17, 33, 3))]
    frames = []
    for codec in ("raw", "cnn-sem", "cnn", "cnn-sem-impute", "cnn-sem-masked", "swin", "swin-p0", "deepjscc"):
        for partition in LATENT_PARTITION_WORDS:
            options = SessionOptions(codec=codec, partition=partition, mtu=600)
            frames += [prepare(options, loaded=image).datagrams for image in images]
    for image in images:
        for codec in ("jpeg", "webp", "jpeg2000-tiles", "cnn-sem-ec", "cnn-sem-impute-ec", "cnn-sem-impute-q6-ec"):
            frames.append(prepare(SessionOptions(codec=codec, partition="segment", mtu=400), loaded=image).datagrams)
    return frames


def _value(name: str, original: int | float, rnd: random.Random):
    if name == "codec_id":
        return rnd.choice([*CODEC_IDS, 0, 13, 65535])
    if name == "scale":
        return rnd.choice([0.0, -1.0, float("inf"), float("nan"), 1e-30, 1e30, original * 2])
    if name in ("image_height", "image_width"):
        return rnd.choice([0, 1, 2, 15, 16, 17, original * 2, original + 16, 192, 65535, rnd.randrange(300)])
    if name in ("layout", "partition"):
        return rnd.randrange(5)
    if name == "bit_width":
        return rnd.choice([1, 5, 6, 7, 8, 12, 16, 17])
    if name == "flags":
        return rnd.randrange(4)
    if name in ("grid_h", "grid_w", "block_h", "block_w"):
        return rnd.choice([0, 1, 2, 3, 4, original, original * 2, 65535])
    return rnd.choice([0, 1, original - 1, original + 1, original * 2, 2**32 - 1, rnd.randrange(1000)])


MUTABLE = ("codec_id", "layout", "partition", "image_height", "image_width", "dim0", "dim1", "dim2", "grid_h",
           "grid_w", "block_h", "block_w", "bit_width", "flags", "scale", "unit_count")


def mutate_frame(frame: list[bytes], rnd: random.Random, frame_id: int) -> list[bytes]:
    """The frame under a new id with the same frame-wide rewrite in every datagram; some lost."""
    header = peek_header(frame[0])
    fields = {"frame_id": frame_id}
    for name in rnd.sample(MUTABLE, k=rnd.choice([1, 1, 2, 3])):
        fields[name] = _value(name, getattr(header, name), rnd)
    try:
        rewrite_header(frame[0], **fields)
    except (struct.error, OverflowError):  # a value the field cannot hold: keep the others
        fields = {name: value for name, value in fields.items() if _fits(frame[0], name, value)}
    stream_edit = header.layout == Layout.BYTES and rnd.random() < 0.3
    out = []
    for datagram in frame:
        if rnd.random() < 0.15:
            continue  # lost
        changed = rewrite_header(datagram, **fields)
        if stream_edit and peek_header(changed).datagram_index == 0:  # the jpeg header travels first
            body = bytearray(changed[:-4])
            for _ in range(rnd.randint(1, 6)):
                position = rnd.randrange(HEADER_SIZE, len(body))
                body[position] = rnd.choice([0, 0xFF, rnd.randrange(256)])
            changed = with_crc(bytes(body))
        out.append(changed)
    rnd.shuffle(out)
    return out


def _fits(datagram: bytes, name: str, value) -> bool:
    try:
        rewrite_header(datagram, **{name: value})
        return True
    except (struct.error, OverflowError):
        return False


def decode_path(frame, result: DecodeFuzzResult) -> None:
    """What `recv` does with a delivered frame, without its catch-all: only CodecError may come out."""
    result.delivered += 1
    try:
        codec = codec_for_frame(frame)
        decode_received(codec, frame)
        result.decoded += 1
    except CodecError as error:
        result.codec_errors[" ".join(str(error).split()[:3])] += 1
    except Exception as error:  # noqa: BLE001 — the escapes this tool looks for
        key = f"{type(error).__name__}: {error}"
        if key not in result.escapes:
            traceback.print_exception(error, file=sys.stderr)
        result.escapes[key] += 1


def fuzz(count: int, seed: int = 0, progress: bool = False) -> DecodeFuzzResult:
    rnd = random.Random(seed)
    frames = seed_frames()
    result = DecodeFuzzResult()
    reassembler = Reassembler(LIMITS)
    started = time.monotonic()
    for number in range(count):
        result.frames += 1
        for datagram in mutate_frame(rnd.choice(frames), rnd, number):
            reassembler.receive(datagram, float(number))
        for frame in reassembler.flush():
            decode_path(frame, result)
        if progress and number % 5000 == 4999:
            rate = (number + 1) / (time.monotonic() - started)
            print(f"{number + 1} frames, {rate:.0f}/s, escapes {sum(result.escapes.values())}", file=sys.stderr)
    return result


def report(result: DecodeFuzzResult, rejected: dict | None = None) -> str:
    lines = [f"frames: {result.frames}", f"delivered to a codec: {result.delivered}", f"decoded: {result.decoded}",
             f"refused by the codec (CodecError): {sum(result.codec_errors.values())}"]
    lines += [f"  {count} x {reason}..." for reason, count in result.codec_errors.most_common(12)]
    lines.append(f"escaping exceptions: {sum(result.escapes.values())}")
    lines += [f"  {count} x {key}" for key, count in result.escapes.most_common()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--frames", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # tiny images: threads cost more than they give
    started = time.monotonic()
    result = fuzz(args.frames, args.seed, progress=True)
    print(report(result))
    print(f"{time.monotonic() - started:.0f} s")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
