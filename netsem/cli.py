"""The `netsem` command.

Subcommands live in their own modules and are imported only when invoked, so that
`netsem emulate` (no torch) starts fast and `--help` never loads a neural codec.
"""

from __future__ import annotations

import importlib
import sys

import click

from netsem import __version__

# name -> "module:attribute" of a click.Command; imported on first use.
SUBCOMMANDS: dict[str, str] = {
    "emulate": "emulator.cli:emulate",
    "send": "netsem.pipeline.cli:send",
    "models": "netsem.codecs.cli:models",
    "train": "netsem.codecs.cli:train",
    "evaluate": "netsem.codecs.cli:evaluate",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="netsem")
def cli() -> None:
    """Send images through learned codecs over real UDP, impaired like `tc netem`."""


def main() -> None:
    try:
        cli.main(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
