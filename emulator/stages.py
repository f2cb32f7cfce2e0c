"""The plug-in stage interface: how another package adds an impairment to a `Link`.

A stage sees each datagram as it leaves netem's queue (after delay, reorder and rate, i.e.
when it is "on the wire") and either passes it on, possibly changed, or drops it with a
reason. The PHY stage (`netsem/phy`) is one: it turns SNR and channel into a CRC failure.
The emulator never imports such packages; they register a factory by name:

    from emulator.stages import register_stage
    register_stage("phy", lambda options, rng: PhyStage(**options, rng=rng))

and users then name it (`netsem emulate --stage "phy snr=3"`) or pass instances to `Link`.
Packages can also register without being imported, through the entry-point group
`netsem.stages` (name = "module:factory").
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

from emulator.plugins import PluginRegistry

ENTRY_POINT_GROUP = "netsem.stages"


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

STAGES = PluginRegistry("stage", ENTRY_POINT_GROUP)


def register_stage(name: str, factory: StageFactory) -> None:
    """Make a stage available by name. `factory(options, rng)` builds one instance."""
    STAGES.register(name, factory)


def available_stages() -> list[str]:
    return STAGES.available()


def create_stage(name: str, options: dict[str, str], rng: random.Random) -> Stage:
    """Build a registered stage; raises LookupError naming the stage if nobody provides it."""
    return STAGES.create(name, options, rng)  # type: ignore[return-value]


def parse_stage_option(text: str) -> tuple[str, dict[str, str]]:
    """Split `"NAME key=value ..."` (the CLI's `--stage`) into a name and options."""
    return STAGES.parse_option(text)
