"""netem's loss models, each a small object with its own seeded generator.

`lost()` returns None when the packet survives, or the cause (a short phrase used in
counters and pcapng comments) when the model drops it. The algorithms are the kernel's
`loss_event`, `loss_4state` and `loss_gilb_ell` on u32 probabilities (NETEM.md §2).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Protocol

from emulator.correlation import make_event
from emulator.grammar import FourStateLoss, GilbertElliottLoss, LossSpec, RandomLoss
from emulator.plugins import PluginRegistry
from emulator.units import U32_MAX, probability_to_u32

CAUSE_RANDOM = "random loss"
CAUSE_RANDOM_CORRECT = "correlated loss (correct model)"
CAUSE_STATE_BURST = "4-state burst loss (state 3)"
CAUSE_STATE_ISOLATED = "4-state isolated loss (state 4)"
CAUSE_GE_GOOD = "gemodel good state"
CAUSE_GE_BAD = "gemodel bad state"


class LossModel(Protocol):
    """Asked once per arriving packet, in order; every random draw from its own generator."""

    def lost(self) -> str | None:
        """The drop cause for this packet (a short phrase for counters and comments), or None."""


class RandomLossModel:
    """`loss random P [C]`: Bernoulli, netem's smoothed correlation, or the exact Markov chain."""

    def __init__(self, spec: RandomLoss, rng: random.Random) -> None:
        self._event = make_event(spec.probability, spec.correlation, spec.correct, rng)
        self._cause = CAUSE_RANDOM_CORRECT if spec.correct else CAUSE_RANDOM

    def lost(self) -> str | None:
        return self._cause if self._event.occurs() else None


class FourStateLossModel:
    """`loss state`: the GI model. A packet is lost iff the state it moves into is 3 or 4.

    States: 1 good (gap), 2 good within a burst, 3 burst loss, 4 isolated loss. Sums of
    probabilities are u32 additions that wrap, as in the kernel (tc does not validate them).
    """

    def __init__(self, spec: FourStateLoss, rng: random.Random) -> None:
        self._rng = rng
        self._p13 = probability_to_u32(spec.p13)
        self._p31 = probability_to_u32(spec.p31)
        self._p32 = probability_to_u32(spec.p32)
        self._p23 = probability_to_u32(spec.p23)
        self._p14 = probability_to_u32(spec.p14)
        self.state = 1

    def lost(self) -> str | None:
        u = self._rng.getrandbits(32)
        state = self.state
        if state == 1:
            if u < self._p14:
                self.state = 4
                return CAUSE_STATE_ISOLATED
            if u < (self._p13 + self._p14) & U32_MAX:
                self.state = 3
                return CAUSE_STATE_BURST
        elif state == 2:
            if u < self._p23:
                self.state = 3
                return CAUSE_STATE_BURST
        elif state == 3:
            if u < self._p32:
                self.state = 2
            elif u < (self._p31 + self._p32) & U32_MAX:
                self.state = 1
            else:
                return CAUSE_STATE_BURST
        else:  # state 4 always returns to 1, delivering this packet
            self.state = 1
        return None


class GilbertElliottLossModel:
    """`loss gemodel p [r [1-h [1-k]]]`.

    Per packet: first the transition (Good->Bad if U < p, Bad->Good if U < r), then the loss
    draw using the state the packet was in *before* the transition: lost if U < 1-k in
    Good, U > h in Bad with h = 0xFFFFFFFF - P32(1-h) (what tc sends to the kernel).
    """

    def __init__(self, spec: GilbertElliottLoss, rng: random.Random) -> None:
        self._rng = rng
        self._p = probability_to_u32(spec.p)
        self._r = probability_to_u32(spec.r)
        self._h = U32_MAX - probability_to_u32(spec.one_minus_h)
        self._k1 = probability_to_u32(spec.one_minus_k)
        self.bad = False

    def lost(self) -> str | None:
        draw = self._rng.getrandbits
        if not self.bad:
            if draw(32) < self._p:
                self.bad = True
            return CAUSE_GE_GOOD if draw(32) < self._k1 else None
        if draw(32) < self._r:
            self.bad = False
        return CAUSE_GE_BAD if draw(32) > self._h else None


def make_loss_model(spec: LossSpec, rng: random.Random) -> LossModel:
    """The model object for a parsed `loss ...` clause."""
    if isinstance(spec, RandomLoss):
        return RandomLossModel(spec, rng)
    if isinstance(spec, FourStateLoss):
        return FourStateLossModel(spec, rng)
    return GilbertElliottLossModel(spec, rng)


# Loss models from other packages: `--loss-model "NAME key=value ..."` replaces netem's own
# `loss` clause. A factory gets the options (strings) and a seeded generator.
LOSS_MODELS = PluginRegistry("loss model", "netsem.loss_models")


def register_loss_model(name: str, factory: Callable[[dict[str, str], random.Random], LossModel]) -> None:
    """Make a loss model available by name; `factory(options, rng)` builds one."""
    LOSS_MODELS.register(name, factory)


def create_loss_model(name: str, options: dict[str, str], rng: random.Random) -> LossModel:
    """Build a registered loss model; LookupError naming it if nobody provides it."""
    return LOSS_MODELS.create(name, options, rng)  # type: ignore[return-value]


def parse_loss_model_option(text: str) -> tuple[str, dict[str, str]]:
    return LOSS_MODELS.parse_option(text)
