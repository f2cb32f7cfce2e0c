"""The plug-in stage interface: how another package adds an impairment to a `Link`.

A stage sees each datagram as it leaves netem's queue (after delay, reorder and rate, i.e.
when it is "on the wire") and either passes it on, possibly changed, or drops it with a
reason. The PHY stage (`netsem/phy`) is one: it turns SNR and channel into a CRC failure.
The emulator never imports such packages; they register a factory by name:

    from emulator.stages import register_stage
    register_stage("phy", lambda options, rng: PhyStage(**options, rng=rng))

and users then name it (`netsem emulate --stage "phy snr=3"`) or pass instances to `Link`.
Packages can also register without being imported, through the entry-point group
`netsem.emulator.stages` (name = "module:factory").
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Callable, Protocol, runtime_checkable

ENTRY_POINT_GROUP = "netsem.emulator.stages"


@dataclass(frozen=True, slots=True)
class StageOutcome:
    """A stage's verdict: `datagram` None means dropped; `note` goes into the fate record."""

    datagram: bytes | None
    note: str = ""


@runtime_checkable
class Stage(Protocol):
    """A per-datagram impairment applied at departure, in the order the stages are given.

    `name` labels the stage in counters ("dropped: NAME: note"). `process` must take every
    random decision from a generator the stage owns (seeded by its factory), so runs repeat.
    `time` is the datagram's scheduled departure on the emulator's clock.
    """

    name: str

    def process(self, datagram: bytes, time: float) -> StageOutcome: ...


StageFactory = Callable[[dict[str, str], random.Random], Stage]

_REGISTRY: dict[str, StageFactory] = {}


def register_stage(name: str, factory: StageFactory) -> None:
    """Make a stage available by name. `factory(options, rng)` builds one instance."""
    _REGISTRY[name] = factory


def available_stages() -> list[str]:
    """Registered names plus those advertised through entry points."""
    names = set(_REGISTRY) | {point.name for point in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names)


def create_stage(name: str, options: dict[str, str], rng: random.Random) -> Stage:
    """Build a registered stage; raises LookupError naming the stage if nobody provides it."""
    factory = _REGISTRY.get(name)
    if factory is None:
        for point in entry_points(group=ENTRY_POINT_GROUP, name=name):
            factory = point.load()
            break
    if factory is None:
        known = ", ".join(available_stages()) or "none registered"
        raise LookupError(f"unknown stage {_shown(name)} (available: {known})")
    return factory(options, rng)


def parse_stage_option(text: str) -> tuple[str, dict[str, str]]:
    """Split `"NAME key=value ..."` (the CLI's `--stage`) into a name and options.

    Values stay strings: each stage parses its own and raises a ValueError naming the bad one.
    A key given twice is an error rather than the last one silently winning.
    """
    words = text.split()
    if not words:
        raise ValueError("empty --stage")
    options = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ValueError(f"stage option {_shown(word)} is not key=value")
        if key in options:
            raise ValueError(f"stage option {_shown(key)} given twice")
        options[key] = value
    return words[0], options


def _shown(word: str) -> str:
    """`word` quoted for a one-line message, cut short if long."""
    return repr(word) if len(word) <= 40 else f"{word[:40]!r}... ({len(word)} characters)"
