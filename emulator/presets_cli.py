"""`netsem presets`: the named impairments `netsem emulate --preset` knows, with their sources."""

from __future__ import annotations

import json

import click

from emulator.grammar import parse_netem
from emulator.presets import MISSING, PRESETS, describe, netem_equivalent


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per preset (JSON Lines).")
def presets(names: tuple[str, ...], as_json: bool) -> None:
    """List the presets (or those NAMED): netem words, netem's own words, published figures, source."""
    unknown = [name for name in names if name not in PRESETS]
    if unknown:
        raise click.UsageError(f"unknown preset {', '.join(unknown)} (known: {', '.join(PRESETS)})")
    chosen = [PRESETS[name] for name in names] if names else list(PRESETS.values())
    for preset in chosen:
        if as_json:
            click.echo(json.dumps({"name": preset.name, "words": preset.words, "summary": preset.summary,
                                   "netem_equivalent": netem_equivalent(parse_netem(preset.words)),
                                   "figures": preset.figures, "source": preset.source, "verified": preset.verified}))
        else:
            click.echo("\n".join(describe(preset)))
    if not names and not as_json:
        click.echo("not included (issue 21 asked for them):")
        for line in MISSING:
            click.echo(f"    {line}")
