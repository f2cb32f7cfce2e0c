"""Fuzz the two parsers a peer controls: `Reassembler.receive` and inspect's `parse_datagram`.

Inputs are valid datagrams from the real packetizer (several geometries, sub-units
included) put through mutations: random bytes, bit flips with and without a repaired CRC,
header fields rewritten to random or extreme values (CRC repaired, so the checks after the
CRC run), truncation and extension, splices of two datagrams, and untouched replays
(duplicates, late datagrams). The reassembler is polled as time advances, so partial and
hostile frames are also delivered. Every uncaught exception is a bug; every reject must be
counted under its reason.

    python tools/fuzz_receiver.py                 # 100 000 inputs
    python tools/fuzz_receiver.py -n 1000000 --seed 3
    python tools/fuzz_receiver.py --atheris -atheris_runs=100000   # coverage-guided, if installed

Exit status 1 when an exception escaped or a reject went uncounted.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import traceback
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from netsem.inspect.datagram import Rejected, parse_datagram
from packetizers.frames import LatentFrame, StreamFrame
from packetizers.packetizer import Packetizer
from packetizers.reassembler import Reassembler
from packetizers.wire import FIELD_NAMES, FIXED_HEADER_STRUCT, HEADER_SIZE, Layout, PartitionKind, with_crc

POLL_EVERY = 64  # inputs between reassembler polls
TICK = 0.01  # seconds of receiver clock per input
_FIELD_CODES = FIXED_HEADER_STRUCT.format[1:].replace("4s", "s")  # one code per field
_FRAME_ID_OFFSET = struct.calcsize(">" + _FIELD_CODES[: FIELD_NAMES.index("frame_id")].replace("s", "4s"))


@dataclass
class FuzzResult:
    inputs: int = 0
    accepted: int = 0
    rejects: Counter = field(default_factory=Counter)  # receiver reason -> count
    inspect_outcomes: Counter = field(default_factory=Counter)  # parse_datagram reason (or "decoded")
    frames_delivered: int = 0
    exceptions: Counter = field(default_factory=Counter)  # "where: Type: message" -> count
    uncounted: int = 0  # rejects the reassembler returned but did not count (must stay 0)

    @property
    def ok(self) -> bool:
        return not self.exceptions and not self.uncounted


def seed_frames() -> list[list[bytes]]:
    """Valid frames of several geometries: every partition kind, all three layouts, sub-units."""
    rng = np.random.default_rng(1)
    frames = [
        (LatentFrame(rng.integers(0, 64, (16, 8, 8)), Layout.CHW, 6, False), PartitionKind.CHANNEL, 300),
        (LatentFrame(rng.integers(0, 64, (16, 8, 8)), Layout.CHW, 6, False), PartitionKind.TOKEN, 300),
        (LatentFrame(rng.integers(0, 32, (8, 10, 10)), Layout.CHW, 5, False), PartitionKind.SPATIAL, 400),
        (LatentFrame(rng.integers(-8, 8, (36, 12)), Layout.ND, 4, True, token_grid=(6, 6)), PartitionKind.SPATIAL, 200),
        (LatentFrame(rng.integers(-8, 8, (36, 12)), Layout.ND, 4, True, token_grid=(6, 6)), PartitionKind.TOKEN, 200),
        (LatentFrame(rng.integers(0, 4096, (2, 32, 32)), Layout.CHW, 12, False), PartitionKind.CHANNEL, 500),
        (StreamFrame.cut(rng.integers(0, 256, 2500, dtype=np.uint8).tobytes(), (0, 30, 800, 805, 1700), codec_params=(75, 32)),
         PartitionKind.SEGMENT, 400),
    ]
    return [Packetizer(kind, seed=i, mtu=mtu).packetize(frame, i) for i, (frame, kind, mtu) in enumerate(frames)]


def with_frame_id(datagram: bytes, frame_id: int) -> bytes:
    """The datagram moved to another frame (CRC repaired): a fresh frame the receiver opens."""
    return with_crc(datagram[:_FRAME_ID_OFFSET] + frame_id.to_bytes(4, "big") + datagram[_FRAME_ID_OFFSET + 4 : -4])


def _extreme(code: str, rnd: random.Random) -> int | float | bytes:
    if code == "s":
        return rnd.choice([b"NSEM", b"NSEX", bytes(rnd.getrandbits(8) for _ in range(4))])
    if code == "f":
        return rnd.choice([0.0, -1.0, float("inf"), float("nan"), 1e38, rnd.uniform(-10, 10)])
    bits = {"B": 8, "H": 16, "L": 32, "I": 32}[code]
    return rnd.choice([0, 1, 2, (1 << bits) - 1, 1 << (bits - 1), rnd.getrandbits(bits), rnd.randrange(0, 70)])


def mutate(frames: list[list[bytes]], rnd: random.Random) -> list[bytes]:
    """Hostile inputs derived from the valid frames: one datagram, or a whole frame replayed."""
    frame = rnd.choice(frames)
    original = with_frame_id(rnd.choice(frame), rnd.getrandbits(32)) if rnd.random() < 0.5 else rnd.choice(frame)
    choice = rnd.randrange(9)
    if choice == 7:  # a whole frame under a fresh id, shuffled, some datagrams lost or repeated
        frame_id = rnd.getrandbits(32)
        replay = [with_frame_id(d, frame_id) for d in frame if rnd.random() < 0.9]
        replay += rnd.sample(replay, k=min(len(replay), rnd.randrange(3)))
        rnd.shuffle(replay)
        return replay
    return [_mutate_one(original, frame, rnd, choice)]


def _mutate_one(original: bytes, frame: list[bytes], rnd: random.Random, choice: int) -> bytes:
    if choice == 0:
        return bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 1500)))
    if choice == 1:  # bit flips, CRC left as is
        data = bytearray(original)
        for _ in range(rnd.randint(1, 8)):
            data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
        return bytes(data)
    if choice == 2:  # bit flips, CRC repaired
        data = bytearray(original[:-4])
        for _ in range(rnd.randint(1, 4)):
            data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
        return with_crc(bytes(data))
    if choice in (3, 4):  # header fields rewritten, CRC repaired
        values = list(FIXED_HEADER_STRUCT.unpack_from(original))
        for _ in range(rnd.randint(1, 3)):
            index = rnd.randrange(1, len(FIELD_NAMES))  # keep the magic most of the time
            values[index] = _extreme(_FIELD_CODES[index], rnd)
        try:
            header = FIXED_HEADER_STRUCT.pack(*values)
        except (struct.error, OverflowError):
            return original
        return with_crc(header + original[HEADER_SIZE:-4])
    if choice == 5:  # truncated or extended, CRC repaired or not
        cut = rnd.randrange(0, len(original) + 16)
        body = (original[:-4] + bytes(16))[:cut]
        return with_crc(body) if rnd.random() < 0.5 else body
    if choice == 6:  # splice: one datagram's header, another's body
        other = rnd.choice(frame)
        return with_crc(original[:HEADER_SIZE] + other[HEADER_SIZE:-4])
    return original  # replay: duplicates, late datagrams, datagrams of frames in flight


def feed(data: bytes, reassembler: Reassembler, now: float, result: FuzzResult) -> None:
    """One input to both parsers, recording outcomes and escaped exceptions."""
    result.inputs += 1
    before = sum(reassembler.rejected.values())
    try:
        reason = reassembler.receive(data, now)
    except Exception as error:  # noqa: BLE001  (the point is to catch anything)
        _record(result, "receive", error)
    else:
        if reason is None:
            result.accepted += 1
        else:
            result.rejects[reason.value] += 1
            if sum(reassembler.rejected.values()) != before + 1:
                result.uncounted += 1
    try:
        outcome = parse_datagram(data)
        result.inspect_outcomes[outcome.reason.value if isinstance(outcome, Rejected) else "decoded"] += 1
    except Exception as error:  # noqa: BLE001
        _record(result, "parse_datagram", error)


def poll(reassembler: Reassembler, now: float, result: FuzzResult) -> None:
    try:
        result.frames_delivered += len(reassembler.poll(now))
    except Exception as error:  # noqa: BLE001
        _record(result, "poll", error)


def _record(result: FuzzResult, where: str, error: Exception) -> None:
    key = f"{where}: {type(error).__name__}: {error}"
    if key not in result.exceptions:
        traceback.print_exception(error, file=sys.stderr)
    result.exceptions[key] += 1


def fuzz(count: int, seed: int = 0) -> FuzzResult:
    """Feed at least `count` mutated datagrams to a long-lived reassembler and to inspect's parser."""
    rnd = random.Random(seed)
    frames = seed_frames()
    reassembler = Reassembler()
    result = FuzzResult()
    now, next_poll = 0.0, POLL_EVERY
    while result.inputs < count:
        for data in mutate(frames, rnd):
            now += TICK
            feed(data, reassembler, now, result)
        if result.inputs >= next_poll:
            poll(reassembler, now, result)
            next_poll += POLL_EVERY
    try:
        result.frames_delivered += len(reassembler.flush())
    except Exception as error:  # noqa: BLE001
        _record(result, "flush", error)
    if result.accepted != reassembler.datagrams_accepted or sum(result.rejects.values()) != sum(reassembler.rejected.values()):
        result.uncounted += 1
    return result


def run_atheris(argv: list[str]) -> None:
    """Coverage-guided: libFuzzer mutates raw datagrams (seeded with valid ones); each input
    goes in as is and with its CRC repaired, so mutations also reach the checks after the CRC."""
    import atheris

    atheris.instrument_all()  # the parsers are imported already: instrument what is loaded

    reassembler = Reassembler()
    result = FuzzResult()
    clock = [0.0]

    def test_one_input(data: bytes) -> None:
        clock[0] += TICK
        for candidate in (data, with_crc(data[:-4]) if len(data) >= 4 else data):
            feed(candidate, reassembler, clock[0], result)
        if result.inputs % POLL_EVERY == 0:
            poll(reassembler, clock[0], result)
        if result.exceptions or result.uncounted:
            raise RuntimeError(f"fuzzing found a bug: {dict(result.exceptions)} uncounted={result.uncounted}")

    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


def report(result: FuzzResult) -> str:
    lines = [f"inputs: {result.inputs}", f"receiver accepted: {result.accepted}",
             f"receiver rejects: {sum(result.rejects.values())}"]
    lines += [f"  {reason}: {count}" for reason, count in result.rejects.most_common()]
    lines += [f"frames delivered: {result.frames_delivered}", "inspect parse_datagram:"]
    lines += [f"  {outcome}: {count}" for outcome, count in result.inspect_outcomes.most_common()]
    lines.append(f"uncounted rejects: {result.uncounted}")
    lines.append(f"exceptions: {sum(result.exceptions.values())}")
    lines += [f"  {count} x {key}" for key, count in result.exceptions.most_common()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--inputs", type=int, default=100_000, help="mutated datagrams to feed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--atheris", action="store_true", help="coverage-guided fuzzing with atheris (libFuzzer flags follow)")
    args, rest = parser.parse_known_args()
    if args.atheris:
        run_atheris([sys.argv[0], *rest])
        return 0
    result = fuzz(args.inputs, args.seed)
    print(report(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
