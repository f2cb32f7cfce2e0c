"""`Reassembler.receive_many` is `receive` datagram by datagram: on bursts of whole frames (the
run path) and on bursts laced with every kind of bad datagram, the answers, counters and
delivered frames are the same — with either engine checking the runs (numpy, or the compiled
`kernels.check_run`)."""

from __future__ import annotations

import numpy as np
import pytest

from packetizers.frames import LatentFrame, StreamFrame
from packetizers.packetizer import Packetizer
from packetizers.reassembler import Reassembler, ReassemblerLimits
from packetizers.wire import FRAME_WIDE_SIZE, HEADER_SIZE, Layout, PartitionKind, rewrite_header, with_crc

pytestmark = pytest.mark.usefixtures("each_engine")


def frames_datagrams(rng: np.random.Generator) -> list[bytes]:
    """Datagrams of several frames: channels cut in slices, whole channels, tokens, spatial
    blocks with edge blocks, signed and unsigned, and a byte stream."""
    out = []
    for frame_id, (partition, shape, bits, mtu) in enumerate([
        (PartitionKind.CHANNEL, (12, 16, 24), 6, 300),  # 384 elements per channel: sliced at this MTU
        (PartitionKind.CHANNEL, (12, 8, 8), 6, 1200),  # several whole channels per datagram
        (PartitionKind.TOKEN, (10, 6, 9), 5, 200),
        (PartitionKind.SPATIAL, (6, 10, 13), 4, 250),  # blocks at the edges are smaller
        (PartitionKind.CHANNEL, (8, 4, 4), 11, 200),
    ]):
        signed = frame_id % 2 == 1
        low, high = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
        latent = rng.integers(low, high, shape).astype(np.int16 if bits > 8 else (np.int8 if signed else np.uint8))
        frame = LatentFrame(latent, Layout.CHW, bits, signed)
        out += Packetizer(partition, mtu=mtu, seed=frame_id).packetize(frame, frame_id)
    stream = StreamFrame.cut(bytes(rng.integers(0, 256, 900, dtype=np.uint8)), (0, 300, 600))
    out += Packetizer(mtu=200).packetize(stream, 99)
    return out


def spoil(datagram: bytes, how: int, rng: np.random.Generator) -> bytes:
    if how == 0:
        return datagram[: rng.integers(0, len(datagram))]  # truncated
    if how == 1:
        return datagram[:-1] + bytes([datagram[-1] ^ 1])  # bad CRC
    if how == 2:
        return rewrite_header(datagram, datagram_index=int(rng.integers(0, 70000 // 2)))
    if how == 3:
        return rewrite_header(datagram, sub_index=int(rng.integers(0, 3)), sub_count=int(rng.integers(0, 4)))
    if how == 4:
        return rewrite_header(datagram, reserved=1)
    if how == 5:  # another unit id, CRC fixed
        body = bytearray(datagram[:-4])
        body[HEADER_SIZE : HEADER_SIZE + 4] = int(rng.integers(0, 400)).to_bytes(4, "big")
        return with_crc(bytes(body))
    if how == 6:
        return rewrite_header(datagram, payload_len=int(rng.integers(0, 2000)))
    return datagram + b"x"  # longer than declared


def same(a: Reassembler, b: Reassembler) -> None:
    assert a.stats() == b.stats()
    fa, fb = a.flush(), b.flush()
    assert [f.header for f in fa] == [f.header for f in fb]
    for x, y in zip(fa, fb):
        assert (x.datagrams_received, x.share, x.delivery) == (y.datagrams_received, y.share, y.delivery)
        np.testing.assert_array_equal(x.latent, y.latent)
        np.testing.assert_array_equal(x.received, y.received)
        np.testing.assert_array_equal(x.unit_received, y.unit_received)


@pytest.mark.parametrize("seed", range(12))
def test_receive_many_answers_as_receive_one_by_one(seed):
    rng = np.random.default_rng(seed)
    datagrams = frames_datagrams(rng)
    if seed % 3:  # reordered, some lost, some repeated, some spoiled
        datagrams = [datagrams[i] for i in rng.permutation(len(datagrams)) if rng.random() > 0.1]
        datagrams += [datagrams[i] for i in rng.integers(0, len(datagrams), 10)]
        for i in rng.integers(0, len(datagrams), 15):
            datagrams[i] = spoil(datagrams[i], int(rng.integers(0, 8)), rng)
        # then sorted by frame again, mostly, so that long runs of one frame form
        datagrams.sort(key=lambda d: (d[:FRAME_WIDE_SIZE], rng.random() < 0.9))
    limits = ReassemblerLimits(max_frames_in_flight=4)  # evictions too
    one, many = Reassembler(limits), Reassembler(limits)
    want = [one.receive(d, 1.0, "peer") for d in datagrams]
    got = []
    for chunk in np.array_split(np.arange(len(datagrams)), 5):
        got += many.receive_many([datagrams[i] for i in chunk], 1.0, "peer")
    assert got == want
    assert one.poll(1.0).__len__() == many.poll(1.0).__len__()
    same(one, many)


def test_a_clean_burst_takes_the_run_path_and_completes_the_frame():
    latent = np.arange(12 * 16 * 24).reshape(12, 16, 24).astype(np.uint8) % 64
    datagrams = Packetizer(mtu=300).packetize(LatentFrame(latent, Layout.CHW, 6, False), 5)
    r = Reassembler()
    assert r.receive_many(datagrams, 0.0) == [None] * len(datagrams)
    (frame,) = r.poll(0.0)
    assert frame.complete
    np.testing.assert_array_equal(frame.latent, latent)
    assert frame.received.all()


def _units(datagram: bytes) -> list[int]:
    count = int.from_bytes(datagram[66:68], "big")  # unit_count_here
    return np.frombuffer(datagram, ">u4", count, HEADER_SIZE).tolist()


def _with_units(datagram: bytes, units: list[int]) -> bytes:
    body = bytearray(datagram[:-4])
    body[HEADER_SIZE : HEADER_SIZE + 4 * len(units)] = np.asarray(units, ">u4").tobytes()
    return with_crc(bytes(body))


def _sliced_as(datagram: bytes, sub_index: int, sub_count: int, index: int, unit_size: int = 384) -> bytes:
    """The datagram's unit re-cut: slice `sub_index` of `sub_count` (1: the whole unit), a
    valid datagram in every other respect (zero payload of the right length)."""
    start, end = unit_size * sub_index // sub_count, unit_size * (sub_index + 1) // sub_count
    length = (end - start) * 6 // 8
    head = rewrite_header(datagram, sub_index=sub_index, sub_count=sub_count, datagram_index=index,
                          payload_len=length)
    return with_crc(head[: HEADER_SIZE + 4] + bytes(length))


def _burst(sliced: bool) -> list[bytes]:
    latent = (np.arange(24 * 16 * 24).reshape(24, 16, 24) % 64).astype(np.uint8)
    # mtu 300: a 384-element channel travels as 2 slices; mtu 700: whole channels, 2 per datagram
    return Packetizer(mtu=300 if sliced else 700, seed=3).packetize(LatentFrame(latent, Layout.CHW, 6, False), 8)


def _defects(sliced: bool) -> dict[str, list[bytes]]:
    d = _burst(sliced)
    head, rest = d[:1], d[1:]
    spare = len(d) - 1  # rest[3:] left out where a defect takes this index
    index_of = lambda x: int.from_bytes(x[60:62], "big")  # noqa: E731  (datagram_index)
    defects = {
        "repeated datagram": head + rest[:4] + [rest[2]] + rest[4:],
        "reserved byte set": head + rest[:3] + [rewrite_header(rest[3], reserved=1)] + rest[4:],
        "payload length off": head + rest[:3] + [rewrite_header(rest[3], payload_len=7)] + rest[4:],
        "payload a byte short": head + rest[:3] + [with_crc(rewrite_header(rest[3], payload_len=int.from_bytes(
            rest[3][68:70], "big") - 1)[:-5])] + rest[4:],
        "index out of range": head + rest[:3] + [rewrite_header(rest[3], datagram_index=len(d))] + rest[4:],
        "same index twice": head + rest[:3] + [rewrite_header(rest[3], datagram_index=index_of(rest[1]))] + rest[4:],
        "bad crc": head + rest[:3] + [rest[3][:-1] + bytes([rest[3][-1] ^ 1])] + rest[4:],
        "truncated": head + rest[:3] + [rest[3][:-5]] + rest[4:],
        "unit out of range": head + rest[:3] + [_with_units(rest[3], [999] * len(_units(rest[3])))] + rest[4:],
    }
    if sliced:
        u = _units(rest[1])[0]
        slice_of = lambda x: int.from_bytes(x[62:64], "big")  # noqa: E731  (sub_index)
        after = rest[3:6]  # valid ones after the defect: a run goes on past it
        defects["slice twice"] = head + rest[:3] + [rewrite_header(rest[1], datagram_index=spare)] + after
        defects["unit cut two ways"] = (head + rest[:3] + [_sliced_as(rest[1], 1 - slice_of(rest[1]) and 2, 3, spare)]
                                        + after)
        defects["sliced unit sent whole"] = head + rest[:3] + [_sliced_as(rest[1], 0, 1, spare)] + after
        defects["whole unit sent in slices"] = head + [_sliced_as(rest[1], 0, 1, spare)] + rest[:3]
        taken = {_units(x)[0] for x in head + rest[:3]}
        other = next(x for x in rest[3:] if _units(x)[0] not in taken)  # a unit nothing else in the run cuts
        defects["more slices than elements"] = head + rest[:3] + [_sliced_as(other, 0, 385, spare)]
        assert u == _units(rest[1])[0]
    else:
        ids = _units(rest[3])
        taken = _units(rest[1])[0]
        defects["unit sent twice"] = head + rest[:3] + [_with_units(rest[3], sorted({taken, *ids[1:]}))] + rest[4:]
        defects["a unit of the frame's first datagram"] = (
            head + rest[:3] + [_with_units(rest[3], sorted({_units(head[0])[0], *ids[1:]}))] + rest[4:])
        defects["units not ascending"] = head + rest[:3] + [_with_units(rest[3], ids[::-1])] + rest[4:]
    return defects


@pytest.mark.parametrize("sliced", [True, False])
def test_each_defect_inside_a_run_is_answered_as_receive_answers_it(sliced):
    for name, datagrams in _defects(sliced).items():
        one = Reassembler()
        want = [one.receive(x, 0.0) for x in datagrams]
        assert any(r is not None for r in want), name  # the defect is one
        # in one call, and split where the defect meets what an earlier call delivered
        for split in (len(datagrams), want.index(next(r for r in want if r is not None))):
            many = Reassembler()
            got = many.receive_many(datagrams[:split], 0.0) + many.receive_many(datagrams[split:], 0.0)
            assert got == want, name
            same(_replay(datagrams), many)


def _replay(datagrams: list[bytes]) -> Reassembler:
    r = Reassembler()
    for x in datagrams:
        r.receive(x, 0.0)
    return r
