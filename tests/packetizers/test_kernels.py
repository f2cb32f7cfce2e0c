"""The compiled engine (packetizers/kernels.py) gives the numpy engine's bytes and values: bit
packing at every width, signed and unsigned, and whole frames packetized, thinned by loss and
reassembled, in every partition."""

from __future__ import annotations

import numpy as np
import pytest

from packetizers import bitpack, engine
from packetizers.frames import LatentFrame
from packetizers.packetizer import Packetizer
from packetizers.reassembler import Reassembler
from packetizers.wire import Layout, PartitionKind

kernels = pytest.importorskip("packetizers.kernels")


def random_latent(rng: np.random.Generator, shape: tuple[int, ...], bits: int, signed: bool) -> np.ndarray:
    low, high = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    return rng.integers(low, high, shape).astype(bitpack.element_dtype(bits, signed))


@pytest.mark.parametrize("bits", range(1, 17))
@pytest.mark.parametrize("signed", [False, True])
def test_pack_runs_is_numpy_packing_of_the_runs(bits, signed):
    rng = np.random.default_rng(bits)
    for count in (1, 7, 8, 9, 64, 1003):
        elements = random_latent(rng, (count + 9,), bits, signed)
        runs = int(rng.integers(1, 6))
        source = rng.integers(0, count, runs)
        length = np.minimum(rng.integers(1, count + 1, runs), elements.size - source)
        gathered = np.concatenate([elements[s : s + n] for s, n in zip(source, length)])
        assert kernels.pack_runs(elements, source, length, bits) == bitpack.pack(gathered, bits)


@pytest.mark.parametrize("bits", range(1, 17))
@pytest.mark.parametrize("signed", [False, True])
def test_unpack_runs_puts_each_run_where_it_belongs(bits, signed):
    rng = np.random.default_rng(100 + bits)
    size = 1000
    values = random_latent(rng, (size,), bits, signed)
    # runs of random lengths (on and off whole bytes), some missing, in two payloads out of order
    cuts = np.unique(np.r_[0, rng.integers(1, size, 12), size])
    runs = [(a, b - a) for a, b in zip(cuts[:-1], cuts[1:]) if rng.random() < 0.7]
    order = rng.permutation(len(runs))
    halves = np.array_split(order, 2)
    payloads = [bitpack.pack(np.concatenate([values[runs[r][0] : sum(runs[r])] for r in half]), bits)
                for half in halves if half.size]
    starts = np.array([runs[r][0] for half in halves for r in half], dtype=np.int64)
    lengths = np.array([runs[r][1] for half in halves for r in half], dtype=np.int64)
    per_payload = np.array([half.size for half in halves if half.size], dtype=np.int64)
    got, received = kernels.unpack_runs(payloads, per_payload, starts, lengths, bits, signed, size)
    expected_mask = np.zeros(size, dtype=bool)
    for start, length in runs:
        expected_mask[start : start + length] = True
    assert got.dtype == bitpack.element_dtype(bits, signed)
    np.testing.assert_array_equal(received, expected_mask)
    np.testing.assert_array_equal(got, np.where(expected_mask, values, 0))


@pytest.mark.parametrize("partition, shape, bits, mtu", [
    (PartitionKind.CHANNEL, (24, 16, 24), 6, 1200),  # channels cut in slices
    (PartitionKind.CHANNEL, (12, 8, 8), 8, 300),  # several whole channels per datagram
    (PartitionKind.CHANNEL, (6, 5, 7), 5, 120),  # units off whole bytes
    (PartitionKind.TOKEN, (48, 12, 10), 6, 600),
    (PartitionKind.SPATIAL, (16, 10, 13), 4, 400),  # smaller edge blocks
    (PartitionKind.CHANNEL, (8, 6, 6), 12, 200),  # wider than a byte
])
@pytest.mark.parametrize("signed", [False, True])
def test_both_engines_send_and_receive_the_same(partition, shape, bits, mtu, signed):
    rng = np.random.default_rng(bits + mtu)
    latent = random_latent(rng, shape, bits, signed)
    frame = LatentFrame(latent, Layout.CHW, bits, signed)
    packetizer = Packetizer(partition, mtu=mtu, seed=7)
    results = {}
    for compiled in (False, True):
        engine.use_compiled(compiled)
        datagrams = packetizer.packetize(frame, 1)
        kept = [d for d, keep in zip(datagrams, np.random.default_rng(0).random(len(datagrams)) > 0.3) if keep]
        reassembler = Reassembler()
        assert reassembler.receive_many(kept, 0.0) == [None] * len(kept)
        (delivered,) = reassembler.flush()
        results[compiled] = datagrams, delivered.latent, delivered.received
    (sent, values, mask), (sent_compiled, values_compiled, mask_compiled) = results[False], results[True]
    assert sent == sent_compiled
    assert values.dtype == values_compiled.dtype and values.shape == latent.shape
    np.testing.assert_array_equal(values_compiled, values)
    np.testing.assert_array_equal(mask_compiled, mask)
    np.testing.assert_array_equal(values[mask], latent[mask])
    assert 0 < mask.sum() < mask.size
