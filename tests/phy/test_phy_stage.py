"""The PHY as an emulator stage: drops with causes, reproducibility, batching, Link use."""

import numpy as np
import pytest

from emulator.grammar import parse_netem
from emulator.link import Link
from netsem.phy import phy_stage
from netsem.phy.stage import PhyStage


def _data(count, size=1200, seed=0):
    rng = np.random.default_rng(seed)
    return [bytes(rng.integers(0, 256, size, dtype=np.uint8)) for _ in range(count)]


def test_clean_channel_delivers_and_bad_channel_drops_with_cause():
    data = _data(6)
    good = phy_stage("mimo 2x2 rayleigh snr 30dB ldpc 1/2 qpsk", seed=1)
    assert [good.process(d, 0.0).datagram for d in data] == data
    bad = phy_stage("mimo 2x2 rayleigh snr -8dB ldpc 3/4 64qam", seed=1)
    outs = [bad.process(d, 0.0) for d in data]
    assert all(o.datagram is None for o in outs)
    assert all(o.note.startswith("crc fail (") and "raw bit errors" in o.note for o in outs)
    assert bad.stats["crc_failed"] == 6 and bad.stats["datagrams"] == 6


def test_uncoded_drops_on_any_bit_error():
    data = _data(20, 100)
    stage = phy_stage("siso awgn snr 6dB uncoded qpsk", seed=2)  # raw BER ~2.4e-3, 824 bits
    outs = stage.process_batch(data, [0.0] * 20)
    for o, d, r in zip(outs, data, stage.last_results):
        assert (o.datagram is None) == (r.raw_bit_errors > 0)
        if o.datagram is not None:
            assert o.datagram == d


@pytest.mark.parametrize("spec", ["mimo 2x2 rayleigh snr 4dB ldpc 1/2 qpsk csi-error 0.1",
                                  "mimo 2x2 rician 3 snr 8dB ldpc 2/3 16qam detector zf precoder none"])
def test_batch_equals_one_at_a_time_and_seed_repeats(spec):
    data = _data(8, 300) + _data(2, 1200, seed=1) + [b"", b"x"]
    a = phy_stage(spec, seed=5)
    b = phy_stage(spec, seed=5)
    c = phy_stage(spec, seed=6)
    one = [a.process(d, 0.0) for d in data]
    batch = b.process_batch(data, [0.0] * len(data))
    assert one == batch
    other = c.process_batch(data, [0.0] * len(data))
    assert a.stats == b.stats and a.stats != c.stats
    assert len(other) == len(data)


def test_mixed_sizes_and_channel_uses():
    stage = phy_stage("mimo 2x2 awgn snr 20dB ldpc 1/2 qpsk", seed=1)
    outs = stage.process_batch([b"a" * 10, b"b" * 1200, b"c" * 3000], [0, 0, 0])
    assert [o.datagram for o in outs] == [b"a" * 10, b"b" * 1200, b"c" * 3000]
    # 1200 bytes: 2 codewords x 9624 bits / 2 bits per symbol / 2 streams
    assert stage.last_results[1].channel_uses == 2 * 9624 // 4
    assert stage.phy.channel_uses(1200) == 2 * 9624 // 4
    assert stage.last_results[2].codewords == 3


def test_link_counts_phy_drops():
    link = Link(parse_netem("delay 1ms"), seed=1, stages=[phy_stage("siso awgn snr -5dB ldpc 1/2 qpsk", seed=1)],
                record_fates=True)
    for i, d in enumerate(_data(3, 200)):
        link.submit(d, i * 1e-3)
    out = link.due(1.0)
    assert out == [] and link.counters.dropped["stage phy"] == 3
    notes = [n for f in link.take_fates() for n in f.notes]
    assert any(n.startswith("dropped: phy: crc fail") for n in notes)


def test_stage_accepts_generator_or_seed():
    # The chain takes one key from the generator and seeds the i-th datagram's draws with
    # (key, i), so that grouping cannot change a draw: a seed and default_rng(seed) agree, and
    # the generator has advanced by exactly that one draw.
    spec = "mimo 2x2 rayleigh snr 3dB ldpc 1/2 qpsk"
    data = _data(4, 300)
    by_seed = PhyStage(spec, 3)
    by_generator = PhyStage(spec, np.random.default_rng(3))
    reference = np.random.default_rng(3)
    assert by_seed.phy.key == by_generator.phy.key == reference.integers(2**63)
    assert by_seed.rng.integers(1 << 30) == reference.integers(1 << 30)
    assert [by_seed.process(d, 0.0) for d in data] == by_generator.process_batch(data, [0.0] * 4)
