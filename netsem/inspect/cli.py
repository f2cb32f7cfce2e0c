"""`netsem inspect FILE.pcapng`: what each netsem datagram carried and what each frame lost."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import NoReturn

import click

from emulator.capture_reader import CaptureError, NotACapture
from netsem.inspect.capture import CapturedPacket, read_packets
from netsem.inspect.report import Inspection, inspect_packets
from packetizers.kinds import describe_stream

DATAGRAM_COLUMNS = ("packet", "time", "side", "stream", "frame", "type", "kb", "imp", "datagram", "units", "size",
                    "payload", "crc", "comment")
FRAME_COLUMNS = ("stream", "frame", "partition", "datagrams rx/exp", "units rx/exp", "units lost", "elements lost")


def frame_rows(inspection: Inspection) -> list[tuple[str, ...]]:
    rows = []
    for frame in inspection.frames:
        lost = f"{frame['unit_name']} lost: {frame['units_lost_list'] or 'none'}"
        if frame["units_partial"]:
            lost += " (partial: " + ", ".join(f"{u} {n}" for u, n in frame["units_partial"].items()) + ")"
        rows.append((
            describe_stream(frame["stream_id"]), str(frame["frame_id"]), f"{frame['layout']}/{frame['partition']}",
            f"{frame['datagrams_received']}/{frame['datagrams_expected']}",
            f"{frame['units_received']}/{frame['units_expected']}",
            lost, "?" if frame["elements_lost"] is None else str(frame["elements_lost"]),
        ))
    return rows


def datagram_rows(inspection: Inspection) -> list[tuple[str, ...]]:
    shown = {"time": lambda t: f"{t:.6f}", "stream": describe_stream}
    return [tuple(shown.get(c, str)(row[c]) for c in DATAGRAM_COLUMNS) for row in inspection.datagrams]


def skipped_line(inspection: Inspection) -> str:
    counts = ", ".join(f"{reason} {count}" for reason, count in sorted(inspection.skipped.items()))
    return (f"{inspection.packets} packets, {len(inspection.datagrams)} netsem datagrams; skipped: {counts or 'none'}; "
            f"counted as received: {inspection.counted}")


def print_plain(inspection: Inspection) -> None:
    sections = [
        ("datagrams", DATAGRAM_COLUMNS, datagram_rows(inspection)),
        ("frames", FRAME_COLUMNS, frame_rows(inspection)),
        ("malformed", ("packet", "reason", "detail", "comment"),
         [tuple(str(row[c]) for c in ("packet", "reason", "detail", "comment")) for row in inspection.malformed]),
    ]
    for title, columns, rows in sections:
        if not rows:
            continue
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
        click.echo(title)
        for row in (columns, *rows):
            click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        click.echo("")
    click.echo(skipped_line(inspection))


def print_rich(inspection: Inspection) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    datagrams = Table(title="datagrams")
    for column in DATAGRAM_COLUMNS:
        datagrams.add_column(column, justify="right" if column in ("packet", "time", "size", "payload") else "left")
    for row, source in zip(datagram_rows(inspection), inspection.datagrams):
        style = None if source["received"] else "red"
        datagrams.add_row(*row, style=style)
    console.print(datagrams)
    frames = Table(title="frames")
    for name in FRAME_COLUMNS:
        frames.add_column(name)
    for row in frame_rows(inspection):
        frames.add_row(*row)
    console.print(frames)
    if inspection.malformed:
        malformed = Table(title="malformed")
        for column in ("packet", "reason", "detail", "comment"):
            malformed.add_column(column)
        for row in inspection.malformed:
            malformed.add_row(*(str(row[c]) for c in ("packet", "reason", "detail", "comment")))
        console.print(malformed)
    console.print(skipped_line(inspection))


@click.command("inspect")
@click.argument("capture", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the whole inspection as JSON.")
@click.option("--dst-port", type=click.IntRange(0, 65535), default=None,
              help="Count as received only datagrams sent to this UDP port (the receiver's, in an emulator capture).")
def inspect(capture: str, as_json: bool, dst_port: int | None) -> None:
    """Per-datagram table and per-frame losses of the netsem datagrams in a pcap/pcapng capture.

    A datagram counts as received when its CRC is good and its capture comment is not a drop.
    Packets that are not netsem, and malformed datagrams, are counted with a reason.
    A damaged capture (cut short, corrupt) is reported up to the damage, then exits with status 2,
    as tshark does.
    """
    damage: list[CaptureError] = []

    def packets_before_damage() -> Iterator[CapturedPacket]:
        try:
            yield from read_packets(capture)
        except CaptureError as error:
            damage.append(error)

    try:
        inspection = inspect_packets(packets_before_damage(), dst_port)
    except OSError as error:
        _fail(capture, error.strerror or str(error), packets=None)
    if damage and isinstance(damage[0], NotACapture):
        _fail(capture, damage[0].problem, packets=None)
    if as_json:
        click.echo(json.dumps(inspection.to_dict(), indent=2))
    elif sys.stdout.isatty():
        print_rich(inspection)
    else:
        print_plain(inspection)
    if damage:
        error = damage[0]
        _fail(capture, f"{error.problem} at byte {error.offset}", packets=error.packets)


def _fail(capture: str, problem: str, packets: int | None) -> NoReturn:
    """One line on stderr and exit status 2, as tshark does with a file it cannot read (whole)."""
    read = "" if packets is None else f" (read {packets} packets)"
    click.echo(f"netsem inspect: error: {capture}: {problem}{read}", err=True)
    sys.exit(2)
