"""netsem's physical layer: a digital per-datagram chain (emulator stage) and an analog,
differentiable one (torch), sharing one spec grammar (`netsem.phy.spec`).

Importing this package registers the emulator stage "phy". Sionna and torch are imported only
when a chain is built, so the import itself is cheap.
"""

from __future__ import annotations

from emulator.stages import register_stage
from netsem.phy.spec import PhySpec, PhySpecError, parse_phy_spec


def phy_stage(spec: str, seed: int):
    """The digital PHY as an emulator `Stage` (see `netsem.phy.stage.PhyStage`)."""
    from netsem.phy.stage import phy_stage as build

    return build(spec, seed)


def _factory(options, rng):
    from netsem.phy.stage import stage_factory

    return stage_factory(options, rng)


register_stage("phy", _factory)

__all__ = ["PhySpec", "PhySpecError", "parse_phy_spec", "phy_stage"]
