"""The PHY as an emulator stage: a failed CRC drops the datagram, with its cause as the note.

    from netsem.phy import phy_stage
    link = Link(parse_netem("delay 10ms"), seed=1, stages=[phy_stage("mimo 2x2 snr 6dB", seed=1)])

or, once `netsem.phy` is imported (or through the `netsem.stages` entry point),
`--stage "phy snr=6dB mimo=2x2 channel=rayleigh ldpc=1/2 mod=qpsk detector=lmmse"`.

`process(datagram, time)` handles one datagram; `process_batch(datagrams, times)` handles many
at once (one encoder and one decoder call per code shape) with identical outcomes for the same
seed: the i-th datagram's draws come from its own generator (see netsem.phy.digital).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import numpy as np

from emulator.stages import StageOutcome
from netsem.phy.digital import DigitalPhy, PhyResult
from netsem.phy.spec import PhySpec, PhySpecError, parse_phy_spec, stage_options_to_spec
from packetizers.wire import importance_of


class PhyStage:
    """Digital PHY per datagram. `stats` counts datagrams, drops, channel uses and bit errors."""

    name = "phy"

    def __init__(self, spec: PhySpec | str, rng: np.random.Generator | int) -> None:
        self.spec = parse_phy_spec(spec) if isinstance(spec, str) else spec
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.phy = DigitalPhy(self.spec, self.rng)
        self.stats: Counter[str] = Counter()
        self.last_results: list[PhyResult] = []

    def _outcome(self, result: PhyResult) -> StageOutcome:
        s = self.stats
        s["datagrams"] += 1
        s["channel_uses"] += result.channel_uses
        s["codewords"] += result.codewords
        s["codewords_failed"] += result.codewords_failed
        s["raw_bit_errors"] += result.raw_bit_errors
        s["coded_bits"] += result.coded_bits
        if result.payload is None:
            s["crc_failed"] += 1
        else:
            s["delivered"] += 1
            s["undetected_errors"] += result.undetected
        return StageOutcome(result.payload, result.cause)

    def process(self, datagram: bytes, time: float) -> StageOutcome:
        return self.process_batch([datagram], [time])[0]

    def process_batch(self, datagrams: Sequence[bytes], times: Sequence[float]) -> list[StageOutcome]:
        if not datagrams:
            return []
        results = self.phy.run(list(datagrams))
        self.last_results = results
        return [self._outcome(r) for r in results]


class ImportancePhyStage:
    """Message-wise unequal error protection at the PHY (seed 001 §II-D): a datagram whose
    header names importance >= 1 goes through `important` (e.g. LDPC 1/2), every other one
    through `default` (e.g. LDPC 2/3). Each class has its own PhyStage and generator, so the
    outcome for a given sequence of datagrams is fixed by the seed. `stats` adds both up;
    `by_class[c]` keeps each class's own counts (channel uses per class, for equal-use checks)."""

    name = "phy"

    def __init__(self, default: PhyStage, important: PhyStage) -> None:
        self.by_class = {0: default, 1: important}

    @property
    def stats(self) -> Counter[str]:
        return self.by_class[0].stats + self.by_class[1].stats

    def process(self, datagram: bytes, time: float) -> StageOutcome:
        return self.by_class[min(importance_of(datagram), 1)].process(datagram, time)

    def process_batch(self, datagrams: Sequence[bytes], times: Sequence[float]) -> list[StageOutcome]:
        return [self.process(d, t) for d, t in zip(datagrams, times)]


def importance_phy_stage(default: str, important: str, seed: int) -> ImportancePhyStage:
    """Two PHY specs (netsem.phy.spec), the second for important datagrams; PhySpecError (one line)."""
    rngs = np.random.default_rng(seed).spawn(2)
    return ImportancePhyStage(PhyStage(parse_phy_spec(default), rngs[0]), PhyStage(parse_phy_spec(important), rngs[1]))


def phy_stage(spec: str, seed: int) -> PhyStage:
    """Build the stage from a spec string (see netsem.phy.spec); raises PhySpecError (one line)."""
    parsed = parse_phy_spec(spec)
    return PhyStage(parsed, np.random.default_rng(seed))


def stage_factory(options: dict[str, str], rng: random.Random) -> PhyStage:
    """`register_stage` / entry-point factory: `--stage "phy snr=6dB mimo=2x2 ..."`."""
    spec = parse_phy_spec(stage_options_to_spec(options))
    return PhyStage(spec, np.random.default_rng(rng.getrandbits(64)))


__all__ = ["ImportancePhyStage", "PhySpecError", "PhyStage", "importance_of", "importance_phy_stage", "phy_stage",
           "stage_factory"]
