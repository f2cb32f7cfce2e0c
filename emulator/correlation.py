"""Seeded random sources and netem's correlated event generators.

Every component of a `Link` owns one `random.Random`, seeded from the run's seed and the
component's name, so adding a stage never shifts another stage's draws and the same seed
gives the same fates offline and over sockets. netem's kernel PRNG cannot be reproduced
bit for bit anyway (its `seed` does not even cover the corruption position), so we keep its
algorithms on u32 values and use Python's Mersenne Twister for the uniform draws.
"""

from __future__ import annotations

import random

from emulator.units import probability_to_u32

_TWO_32 = 1 << 32


class CountingRandom(random.Random):
    """A `random.Random` that counts the values drawn with `getrandbits`: its stream position.

    It yields exactly the values of `random.Random` with the same seed; the count lets an
    event log say where in each stream a decision was taken (every emulator draw is one
    `getrandbits(32)`). Counting costs a Python call per draw, so links count only on request.
    """

    draws = 0

    def getrandbits(self, k: int) -> int:
        self.draws += 1
        return super().getrandbits(k)


def component_rng(seed: int, stream: str, component: str, *, counting: bool = False) -> random.Random:
    """The generator of one component (e.g. "loss") of one link direction (e.g. "forward")."""
    kind = CountingRandom if counting else random.Random
    return kind(f"netsem-emulator/{seed}/{stream}/{component}")


def u32_below(rng: random.Random, n: int) -> int:
    """A value in [0, n) from one u32 draw, as the kernel's `prandom_u32_max` (bias below n / 2^32)."""
    return (rng.getrandbits(32) * n) >> 32


class NetemCorrelatedUniform:
    """netem's `get_crandom`: X_n = floor((U (2^32 - r) + X_{n-1} r) / 2^32), r = rho32 + 1.

    This is an exponentially smoothed uniform, not a correlated Bernoulli source: its mean
    stays at 2^31 but its spread shrinks, so a test `P >= X` fires far less often than P
    when P < 50 % (NETEM.md §2). We reproduce the flaw on purpose; `MarkovEvent` is the
    correct alternative.
    """

    def __init__(self, correlation: float, rng: random.Random) -> None:
        self._rng = rng
        rho32 = probability_to_u32(correlation)
        self._r = rho32 + 1 if rho32 else 0
        self._last = rng.getrandbits(32) if rho32 else 0  # init_crandom's random X_0

    def next_u32(self) -> int:
        value = self._rng.getrandbits(32)
        if not self._r:
            return value
        answer = (value * (_TWO_32 - self._r) + self._last * self._r) >> 32
        self._last = answer
        return answer


class NetemEvent:
    """A netem event test (`P32 != 0 && P32 >= get_crandom()`), as used by loss, duplicate, corrupt."""

    def __init__(self, probability: float, correlation: float, rng: random.Random) -> None:
        self._p32 = probability_to_u32(probability)
        self._source = NetemCorrelatedUniform(correlation, rng)

    def occurs(self) -> bool:
        """True when the event happens for this packet; draws nothing when P is 0, like netem."""
        return self._p32 != 0 and self._p32 >= self._source.next_u32()


class MarkovEvent:
    """The correct correlated event: a two-state Markov chain with stationary rate P and lag-1 correlation C.

    P(event | previous event) = P + C (1 - P) and P(event | no previous event) = P (1 - C),
    so the marginal rate is exactly P and the lag-1 autocorrelation of the indicators is
    exactly C (`correct` in the grammar). The first packet is an event with probability P.
    """

    def __init__(self, probability: float, correlation: float, rng: random.Random) -> None:
        self._rng = rng
        self._after_event = probability_to_u32(probability + correlation * (1.0 - probability))
        self._after_none = probability_to_u32(probability * (1.0 - correlation))
        self._threshold = probability_to_u32(probability)
        self._any = probability > 0.0

    def occurs(self) -> bool:
        if not self._any:
            return False
        event = self._rng.getrandbits(32) < self._threshold
        self._threshold = self._after_event if event else self._after_none
        return event


def make_event(probability: float, correlation: float, correct: bool, rng: random.Random) -> NetemEvent | MarkovEvent:
    """netem's approximation by default, the exact Markov chain when `correct` was given."""
    if correct:
        return MarkovEvent(probability, correlation, rng)
    return NetemEvent(probability, correlation, rng)
