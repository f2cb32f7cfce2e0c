"""Interleaving turns a burst of lost datagrams into losses spread over the latent."""

import numpy as np

from packetizers.frames import LatentFrame
from packetizers.packetizer import Packetizer
from packetizers.reassembler import Reassembler
from packetizers.wire import Layout, PartitionKind

CHANNELS = 192


def lost_channels_after_burst(interleave: bool, seed: int, burst_start: int, burst: int = 5) -> np.ndarray:
    # 192 channels of 8x8 at 8 bits: 64 B each, ~17 channels per 1200-byte datagram
    latent = np.random.default_rng(seed).integers(0, 256, size=(CHANNELS, 8, 8))
    datagrams = Packetizer(PartitionKind.CHANNEL, interleave=interleave, seed=seed).packetize(
        LatentFrame(latent, Layout.CHW, 8, False), frame_id=0
    )
    reassembler = Reassembler()
    for index, datagram in enumerate(datagrams):
        if not burst_start <= index < burst_start + burst:
            reassembler.receive(datagram, 0.0)
    (frame,) = reassembler.poll(1.0)
    return np.flatnonzero(~frame.unit_received)


def adjacent_fraction(lost: np.ndarray) -> float:
    """Share of lost channels whose neighbour channel c+1 is lost too."""
    lost_set = set(lost.tolist())
    return sum((c + 1) in lost_set for c in lost_set) / len(lost_set)


def test_burst_without_interleaving_loses_one_contiguous_run_of_channels():
    lost = lost_channels_after_burst(interleave=False, seed=1, burst_start=2)
    assert len(lost) > 5 * 10
    assert np.all(np.diff(lost) == 1)  # one run of neighbouring channels


def test_burst_with_interleaving_loses_scattered_channels():
    fractions, spans = [], []
    for seed in range(20):
        lost = lost_channels_after_burst(interleave=True, seed=seed, burst_start=seed % 5)
        fractions.append(adjacent_fraction(lost))
        spans.append(lost.max() - lost.min())
    # Random placement of k lost out of 192 gives P(c+1 lost | c lost) ~ k/192 ~ 0.44 for a
    # 5-datagram burst of 11 datagrams; contiguous loss gives ~1.0.
    mean_fraction = float(np.mean(fractions))
    assert 0.30 < mean_fraction < 0.60, mean_fraction
    assert min(spans) > 0.8 * CHANNELS  # the loss touches the whole range of channels
