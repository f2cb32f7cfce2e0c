"""`netsem send` and `netsem simulate`: click front-ends over the pipeline sessions."""

from __future__ import annotations

import functools
import json

import click

from netsem.pipeline.report import Report
from netsem.pipeline import DEFAULT_CODEC
from packetizers.wire import DEFAULT_MTU, DEFAULT_PORT, MAX_DATAGRAM


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


def session_options(command):
    """The options `send` and `simulate` share, so both take exactly the same words."""

    @click.argument("image", required=False)
    @click.option("--codec", default=DEFAULT_CODEC, show_default=True, help="Registered codec name (see `netsem models`).")
    @click.option("--partition", type=click.Choice(["channel", "token", "spatial", "segment"]), default=None,
                  help="What one transmission unit is: a feature channel, a token/position, or a block of positions "
                       "(latent codecs; default channel); jpeg is cut into segments at its restart markers, one "
                       "per MCU row (default segment).")
    @click.option("--jpeg-quality", type=click.IntRange(1, 95), default=75, show_default=True,
                  help="Quality of the jpeg codec (ignored by the others).")
    @click.option("--interleave", type=click.Choice(["on", "off"]), default="on", show_default=True,
                  help="Seeded random permutation of units before grouping them into datagrams.")
    @click.option("--netem", default="", metavar="'WORDS'",
                  help="Impairments in `tc netem` syntax, e.g. 'loss random 20%' or 'loss gemodel 1% 10% 70% 0.1%'.")
    @click.option("--phy", default="", metavar="'SPEC'",
                  help="Physical layer per datagram, e.g. 'mimo 2x2 rayleigh snr 6dB ldpc 1/2 qpsk precoder svd "
                       "detector lmmse csi-error 0.1' (grammar: netsem/phy/README.md). A failed CRC drops the datagram.")
    @click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
                  help="Seed of every random decision (interleaving, loss, noise).")
    @click.option("--mtu", type=click.IntRange(100, MAX_DATAGRAM), default=DEFAULT_MTU, show_default=True,
                  help="UDP payload budget per datagram, bytes.")
    @click.option("--frame-timeout", type=click.FloatRange(0.01, 60), default=0.25, show_default=True,
                  help="Seconds of silence after which the receiver decodes a frame with what arrived.")
    @click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Write the reconstruction (PNG).")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
    @functools.wraps(command)
    def wrapper(image, codec, partition, jpeg_quality, interleave, netem, phy, seed, mtu, frame_timeout, out, as_json,
                **extra):
        from emulator.grammar import NetemSpecError, parse_netem
        from netsem.codecs.base import CodecError
        from netsem.pipeline.images import ImageError
        from netsem.phy import PhySpecError, parse_phy_spec
        from netsem.pipeline.frames import default_partition
        from netsem.pipeline.session import SessionOptions
        from netsem.pipeline.simulate import NothingDelivered
        from netsem.pipeline.send import ReceiverUnreachable
        from netsem.pipeline.udp import NothingArrived

        try:
            parse_netem(netem)  # fail on bad words before any work
            if phy:
                parse_phy_spec(phy)
            options = SessionOptions(image=image, codec=codec, partition=partition or default_partition(codec),
                                     interleave=interleave == "on", netem=netem, phy=phy, seed=seed, mtu=mtu,
                                     frame_timeout=frame_timeout, out=out, jpeg_quality=jpeg_quality)
            report = command(options, **extra)
        except (ImageError, CodecError, NetemSpecError, PhySpecError, NothingArrived, NothingDelivered,
                ReceiverUnreachable, ValueError, OSError) as error:
            raise click.ClickException(str(error)) from None
        if isinstance(report, Report):
            print_report(report, as_json)
        else:
            click.echo(json.dumps(report) if as_json else "\n".join(f"{k:>14}  {v}" for k, v in report.items()))

    return wrapper


@click.command()
@session_options
@click.option("--to", "destination", metavar="HOST:PORT",
              help="Send to a separately started `netsem emulate` or `netsem recv` instead of running the chain here.")
@click.option("--pcap", type=click.Path(dir_okay=False, writable=True),
              help="Write what the in-process emulator saw and did to a pcapng file (Wireshark, `netsem inspect`).")
def send(options, destination, pcap) -> Report | dict:
    """Send IMAGE (a file, or skimage:NAME; default skimage:astronaut) through a codec over real UDP.

    The image is encoded, its latent partitioned into units and packed into binary datagrams,
    sent from one UDP socket through an in-process netem emulator (--netem) to another socket,
    reassembled (missing units masked) and decoded. The report gives PSNR/SSIM against the
    original and against the same codec with nothing lost.

    With --to, the datagrams go to HOST:PORT instead and the report is the sender's half.
    """
    from netsem.pipeline.send import run_send, send_to

    if destination is not None:
        if options.netem or pcap:
            raise click.UsageError("--netem and --pcap apply to the in-process chain; with --to, impair and capture "
                                   "with `netsem emulate` on the path")
        return send_to(options, endpoint(destination))
    return run_send(options, pcap=pcap)


@click.command()
@session_options
def simulate(options) -> Report:
    """Like `netsem send`, on a virtual clock without sockets: same objects, same seed, same result."""
    from netsem.pipeline.simulate import run_simulate

    return run_simulate(options)




def endpoint(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


@click.command()
@click.option("--listen", default=f"127.0.0.1:{DEFAULT_PORT}", show_default=True, metavar="HOST:PORT",
              help="Address to receive netsem datagrams on (the default port is the Wireshark dissector's).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for frame-STREAM-ID.png and .json per frame.")
@click.option("--frames", type=click.IntRange(1), help="Stop after this many frames (default: run until Ctrl-C).")
@click.option("--frame-timeout", type=click.FloatRange(0.01, 60), default=0.5, show_default=True,
              help="Seconds of silence after which a frame is decoded with what arrived.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per frame on stdout.")
def recv(listen, out_dir, frames, frame_timeout, as_json) -> None:
    """Receive netsem frames on HOST:PORT and decode each one, complete or at its deadline."""
    import os
    import signal
    import sys
    from pathlib import Path

    import trio

    from netsem.pipeline.recv import ReceiverSummary, serve_receiver
    from netsem.pipeline.udp import run_trio
    from packetizers.reassembler import ReassemblerLimits

    address = endpoint(listen)
    summary = ReceiverSummary()

    def show(report: dict) -> None:
        if as_json:
            click.echo(json.dumps(report))
        else:
            state = "complete" if report["complete"] else "partial"
            lost = f", units lost: {report['units_lost']}" if report["units_lost"] else ""
            click.echo(f"frame {report['frame_id']} ({state}): {report['datagrams_received']}/"
                       f"{report['datagrams_expected']} datagrams, {report['units_received']}/"
                       f"{report['units_total']} units{lost} -> {report.get('image', report.get('error'))}")

    async def main() -> bool:
        """Serve until done or SIGINT/SIGTERM; True when a signal stopped it."""
        interrupted = False
        async with trio.open_nursery() as nursery:

            async def serve(task_status=trio.TASK_STATUS_IGNORED) -> None:
                await serve_receiver(address, Path(out_dir), limits=ReassemblerLimits(frame_timeout=frame_timeout),
                                     max_frames=frames, on_report=show, summary=summary, task_status=task_status)
                nursery.cancel_scope.cancel()

            async def watch_signals() -> None:
                nonlocal interrupted
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        interrupted = True
                        nursery.cancel_scope.cancel()

            nursery.start_soon(watch_signals)
            bound = await nursery.start(serve)
            click.echo(f"netsem recv: listening on {bound[0]}:{bound[1]}, writing to {out_dir}", err=True)
        return interrupted

    def print_summary() -> None:
        click.echo(json.dumps({"frames_decoded": summary.frames_decoded,
                               "frames_undecodable": summary.frames_undecodable, **summary.receiver}),
                   err=True)

    try:
        interrupted = run_trio(main)
    except OSError as error:
        raise click.ClickException(f"cannot listen on {listen}: {error.strerror}") from None
    print_summary()
    if interrupted:
        # Everything is written; skip the interpreter's teardown (torch's alone takes ~0.7 s)
        # so Ctrl-C returns to the shell at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)


def _split(values: tuple[str, ...]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


@click.command()
@click.argument("images", nargs=-1)
@click.option("--codec", "codecs", multiple=True, default=(DEFAULT_CODEC,), show_default=True,
              help="Codec(s); repeat or comma-separate.")
@click.option("--partition", "partitions", multiple=True, default=("channel",), show_default=True,
              help="Partition(s) of the latent codecs: channel, token, spatial (jpeg always runs cut at its "
                   "restart markers).")
@click.option("--jpeg-quality", default="75", show_default=True, metavar="Q|match:CODEC",
              help="Quality of the jpeg codec (1-95), or match:CODEC for, per image, the highest quality "
                   "whose datagrams take no more bytes on the wire than CODEC's.")
@click.option("--interleave", "interleave", multiple=True, default=("on",), show_default=True, help="on, off or both.")
@click.option("--loss", "losses", multiple=True,
              help="Bernoulli loss percentages, e.g. 0,10,20,30,40 (each becomes 'loss random P%').")
@click.option("--netem", "netem", multiple=True, help="Full netem specs, one per option (adds to --loss).")
@click.option("--seeds", default="0", show_default=True, help="Seeds: '0-4' or '1,5,9'.")
@click.option("--mtu", type=click.IntRange(100, MAX_DATAGRAM), default=DEFAULT_MTU, show_default=True)
@click.option("--transport", type=click.Choice(["virtual", "udp"]), default="virtual", show_default=True,
              help="virtual: the emulator on a virtual clock (fast, identical results); udp: real sockets.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="Results file: .csv or .json.")
def sweep(images, codecs, partitions, jpeg_quality, interleave, losses, netem, seeds, mtu, transport, out) -> None:
    """Run every combination of IMAGES x codecs x partitions x interleaving x impairments x seeds
    and write one row per run with its configuration and versions.

    IMAGES are files or scikit-image photographs named skimage:NAME (default: skimage:astronaut).
    """
    from pathlib import Path

    from rich.progress import Progress

    from emulator.grammar import NetemSpecError, parse_netem
    from netsem.codecs.base import CodecError
    from netsem.pipeline.images import ImageError
    from netsem.pipeline.sweep import SweepGrid, run_sweep, write_results

    try:
        if "-" in seeds:
            low, high = (int(part) for part in seeds.split("-"))
            seed_list = tuple(range(low, high + 1))
        else:
            seed_list = tuple(int(seed) for seed in _split((seeds,)))
    except ValueError:
        raise click.BadParameter(f"seeds must look like '0-4' or '1,5,9', got {seeds!r}") from None
    specs = tuple(f"loss random {float(p):g}%" if float(p) else "" for p in _split(losses)) + tuple(netem)
    for choice in _split(interleave):
        if choice not in ("on", "off"):
            raise click.BadParameter(f"--interleave takes on/off, got {choice!r}")
    jpeg_match = None
    if jpeg_quality.startswith("match:"):
        jpeg_match, jpeg_quality = jpeg_quality.removeprefix("match:"), "75"
    if not jpeg_quality.isdigit() or not 1 <= int(jpeg_quality) <= 95:
        raise click.BadParameter(f"expected a quality 1-95 or match:CODEC, got {jpeg_quality!r}",
                                 param_hint="--jpeg-quality")
    grid = SweepGrid(
        images=tuple(images) or (None,), codecs=tuple(_split(codecs)), partitions=tuple(_split(partitions)),
        interleave=tuple(choice == "on" for choice in _split(interleave)), netem=specs or ("",),
        seeds=seed_list, mtu=mtu, transport=transport, jpeg_quality=int(jpeg_quality), jpeg_match=jpeg_match,
    )
    if not len(grid):
        raise click.UsageError("nothing to run: jpeg takes only the segment partition, the latent codecs "
                               "channel, token or spatial")
    try:
        for spec in grid.netem:
            parse_netem(spec)
        with Progress(transient=True) as progress:
            task = progress.add_task(f"{len(grid)} runs", total=len(grid))
            rows = run_sweep(grid, on_row=lambda row: progress.advance(task))
    except (ImageError, CodecError, NetemSpecError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    write_results(rows, Path(out), grid)
    click.echo(f"{len(rows)} runs -> {out}")


@click.command()
@click.argument("results", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="PNG of PSNR and SSIM against loss.")
@click.option("--per-image", "per_image", type=click.Path(dir_okay=False, writable=True),
              help="Also write a per-image ΔPSNR bar chart (PNG) at --at percent loss.")
@click.option("--at", "at_loss", type=float, default=10.0, show_default=True,
              help="Loss percentage of the per-image chart.")
def plot(results, out, per_image, at_loss) -> None:
    """Plot a sweep's RESULTS (.csv or .json): quality against loss, and per-image ΔPSNR."""
    from pathlib import Path

    from netsem.pipeline.plot import plot_delta_per_image, plot_quality_vs_loss
    from netsem.pipeline.sweep import read_results

    rows = read_results(Path(results))
    if not rows:
        raise click.ClickException(f"{results} holds no results")
    plot_quality_vs_loss(rows, Path(out))
    click.echo(f"wrote {out}")
    if per_image:
        try:
            plot_delta_per_image(rows, Path(per_image), at_loss)
        except ValueError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"wrote {per_image}")
