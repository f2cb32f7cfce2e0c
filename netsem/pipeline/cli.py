"""`netsem send` and friends: click front-ends over the pipeline sessions."""

from __future__ import annotations

import click

from netsem.pipeline.report import Report
from packetizers.wire import DEFAULT_MTU, MAX_DATAGRAM


def print_report(report: Report, as_json: bool) -> None:
    if as_json:
        click.echo(report.to_json())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    for key, value in report.rows():
        table.add_row(f"[bold]{key}[/bold]", value)
    Console().print(table)


@click.command()
@click.argument("image", required=False, type=click.Path(dir_okay=False))
@click.option("--codec", default="raw", show_default=True, help="Registered codec name (see `netsem models`).")
@click.option("--partition", type=click.Choice(["channel", "token", "spatial"]), default="channel",
              show_default=True, help="What one transmission unit is: a feature channel, a token/position, or a block.")
@click.option("--interleave", type=click.Choice(["on", "off"]), default="on", show_default=True,
              help="Seeded random permutation of units before grouping them into datagrams.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of every random decision (interleaving, loss, noise).")
@click.option("--mtu", type=click.IntRange(100, MAX_DATAGRAM), default=DEFAULT_MTU, show_default=True,
              help="UDP payload budget per datagram, bytes.")
@click.option("--frame-timeout", type=click.FloatRange(0.01, 60), default=0.25, show_default=True,
              help="Seconds of silence after which the receiver decodes a frame with what arrived.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Write the reconstruction (PNG).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
def send(image, codec, partition, interleave, seed, mtu, frame_timeout, out, as_json) -> None:
    """Send IMAGE (default: scikit-image's astronaut) through a codec over real UDP on 127.0.0.1.

    The image is encoded, its latent partitioned into units and packed into binary datagrams,
    sent from one UDP socket to another, reassembled (missing units masked) and decoded; the
    report gives PSNR/SSIM against the original and against the same codec with nothing lost.
    """
    from netsem.codecs.base import CodecError
    from netsem.pipeline.images import ImageError
    from netsem.pipeline.send import SendOptions, run_send
    from netsem.pipeline.udp import NothingArrived

    options = SendOptions(image=image, codec=codec, partition=partition, interleave=interleave == "on",
                          seed=seed, mtu=mtu, frame_timeout=frame_timeout, out=out)
    try:
        report = run_send(options)
    except (ImageError, CodecError, NothingArrived, ValueError) as error:
        raise click.ClickException(str(error)) from None
    print_report(report, as_json)
