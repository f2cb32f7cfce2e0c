"""`netsem send` and `netsem simulate`: click front-ends over the pipeline sessions."""

from __future__ import annotations

import contextlib
import functools
import json
import math

import click
from click.core import ParameterSource

from netsem.codecs.registry import QUALITY_CODECS
from netsem.pipeline import DEFAULT_CODEC, DEFAULT_EXPECTED_LOSS
from netsem.pipeline.report import Report
from packetizers.kinds import PARTITION_WORDS
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


def print_frame_line(report, as_json: bool) -> None:
    """One frame of a sequence: a line, or a JSON object (JSON Lines)."""
    if as_json:
        click.echo(report.to_json() if isinstance(report, Report) else json.dumps(report))
    elif isinstance(report, Report):
        psnr = "identical" if report.psnr_db == float("inf") else f"{report.psnr_db:.2f} dB"
        click.echo(f"frame {report.frame_id} {report.image}: {psnr}, SSIM {report.ssim:.4f}, "
                   f"{report.datagrams_received}/{report.datagrams_sent} datagrams")
    elif "error" in report:
        click.echo(f"frame {report['frame_id']} {report['image']}: {report['error']}")
    else:  # the sender's half
        skipped = f", {report['skip_channels']} channels not sent" if report.get("skip_channels") else ""
        click.echo(f"frame {report['frame_id']} {report['image']}: {report['codec']}{skipped}, "
                   f"{report['datagrams_sent']} datagrams, {report['bytes_on_wire']} bytes ({report['bpp']:.3f} bpp) "
                   f"-> {report['to']}")


class Duration(click.ParamType):
    """A time span: '100ms', '50us', '0.5s' (tc's units); a bare number is seconds."""

    name = "duration"

    def convert(self, value, param, ctx) -> float:
        if isinstance(value, float):
            return value
        from emulator.units import parse_time_ns

        text = str(value).strip()
        try:
            seconds = float(text) if text.replace(".", "", 1).isdigit() else parse_time_ns(text) * 1e-9
        except ValueError as error:
            self.fail(f"{value!r} is not a duration like 100ms, 50us or 0.5s ({error})", param, ctx)
        if not 0 < seconds <= 3600:
            self.fail(f"{value!r} must lie between 0 and one hour", param, ctx)
        return seconds


class Percent(click.ParamType):
    """A share in percent, 0..100: '20%' or '20'."""

    name = "percent"

    def convert(self, value, param, ctx) -> float:
        try:
            share = float(str(value).strip().removesuffix("%"))
        except ValueError:
            self.fail(f"{value!r} is not a percentage like 20%", param, ctx)
        if not 0 <= share <= 100:
            self.fail(f"{value!r} must lie between 0 and 100 %", param, ctx)
        return share


class ExpectedLossType(click.ParamType):
    """An expected loss: one percent ('20%') or several ('10%,40%', each as likely) -> `ExpectedLoss`."""

    name = "percent[,percent...]"

    def convert(self, value, param, ctx):
        from netsem.codecs.channel_skip import expected_loss_of

        if not isinstance(value, str):
            return value
        return expected_loss_of([Percent().convert(part, param, ctx) for part in value.split(",")])


class Rate(click.ParamType):
    """A rate in tc's syntax ('20mbit', '1gbit', '500kbps' = kilobytes/s) -> bytes per second."""

    name = "rate"

    def convert(self, value, param, ctx) -> float:
        from emulator.units import parse_rate_bytes_per_s

        try:
            rate = parse_rate_bytes_per_s(str(value))
        except ValueError as error:
            self.fail(f"{value!r} is not a rate like 20mbit ({error})", param, ctx)
        if rate <= 0:
            self.fail(f"{value!r} must be positive", param, ctx)
        return float(rate)


@contextlib.contextmanager
def _refine_progress(steps: int):
    """A progress bar on stderr for each image's latent refinement (none without --refine)."""
    if not steps:
        yield
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from netsem.codecs.refine import reporting_progress

    with Progress(TextColumn("refining the latent"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task("refine", total=steps)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        with reporting_progress(update):
            yield


def session_options(command):
    """The options `send` and `simulate` share, so both take exactly the same words."""

    @click.argument("images", nargs=-1)
    @click.option("--codec", default=DEFAULT_CODEC, show_default=True,
                  help="A codec's name (`netsem models` lists them, plug-ins included) or MODULE:ATTRIBUTE of a "
                       "codec object or factory of your own.")
    @click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
                  help="A learned codec's weights from `netsem train` (its configuration is read from the file).")
    @click.option("--quality", type=click.IntRange(1, len(QUALITY_CODECS)), default=None,
                  help=f"A rate point of the default codec, 1 (fewest bits) to {len(QUALITY_CODECS)} (most), all "
                       "channels sent: " + ", ".join(f"{q} = {name}" for q, name in QUALITY_CODECS.items()) + ".")
    @click.option("--bpp", type=click.FloatRange(min=0, min_open=True), default=None, metavar="TARGET",
                  help="Per image, the imputing codec (the --quality points and cnn-sem-impute-ec) and the channels it "
                       "leaves out (--skip-channels) that give this image the most PSNR within TARGET bits per pixel "
                       f"on the wire, on a link that loses --expect-loss (default {DEFAULT_EXPECTED_LOSS:g} %) of the "
                       "datagrams: fitted curves shortlist five codecs, each is encoded, cut to fit and decoded "
                       "here, and on a lossy link the best three are rehearsed, their datagrams lost in four seeded "
                       "patterns and decoded (~7 s in all at 512x512 on 2 cores, ~3.5 s with --expect-loss 0%; the "
                       "report's notes list them). None fits: the least rate, with a note.")
    @click.option("--refine", type=click.IntRange(min=0), default=0, metavar="N",
                  help="Encoder-side latent refinement, N gradient steps through the decoder (cnn codecs and their "
                       "-ec forms, torch): a better latent for the same decoder and fewer bytes, any receiver decodes "
                       "it; 30 steps gave +0.2 (default) to +1.8 dB (q0) with nothing lost and cost ~20-30 s "
                       "at 512x512 on 2 cores (README). 0 (default): off.")
    @click.option("--expect-loss", "expected_loss", type=ExpectedLossType(), default=None, metavar="P%[,P%...]",
                  help="With --bpp: choose for a link that loses about P % of the datagrams: the choices ranked "
                       "by their measured PSNR less what the fit lost at that loss (interpolated between 0, 10, 20, "
                       "30 and 40 %) with as many channels left out (fewer left out, more for the imputer to work "
                       "from), then the best three rehearsed on the image itself: each datagram lost with "
                       "probability P % in four seeded patterns, decoded, the best mean PSNR sent. "
                       "Several ('10%,40%'): a link whose loss varies among them, each as likely, scored by the mean "
                       "(more kept when the loss is heavy, a little less when it is light; README). "
                       f"Default {DEFAULT_EXPECTED_LOSS:g} %: at 0.5 bpp the rehearsal cost 0.09 dB with nothing lost "
                       "and gave +0.15 dB at 10 % and +0.6 at 40 % (README); 0% for the most PSNR on a link that "
                       "loses nothing.")
    @click.option("--skip-channels", "skip", type=click.IntRange(min=0), default=0, metavar="K",
                  help="Leave out the K channels whose bytes buy the least (an order fitted on the training "
                       "photographs; imputing -ec codecs, the default and its --quality points): fewer bytes, the "
                       "receiver imputes them; any receiver decodes it. --bpp chooses K itself. 0 (default): all sent.")
    @click.option("--partition", type=click.Choice(PARTITION_WORDS), default=None,
                  help="What one transmission unit is: a feature channel, a token/position, or a block of positions "
                       "(latent codecs; default channel); jpeg is cut into segments at its restart markers, one "
                       "per MCU row, webp into tiles (default segment).")
    @click.option("--jpeg-quality", type=click.IntRange(1, 95), default=75, show_default=True,
                  help="Quality of the classic codecs: jpeg, webp, jpeg2000-tiles (ignored by the others).")
    @click.option("--interleave", type=click.Choice(["on", "off"]), default="on", show_default=True,
                  help="Seeded random permutation of units before grouping them into datagrams.")
    @click.option("--netem", default="", metavar="'WORDS'",
                  help="Impairments in `tc netem` syntax, e.g. 'loss random 20%' or 'loss gemodel 1% 10% 70% 0.1%'.")
    @click.option("--phy", default="", metavar="'SPEC'",
                  help="Physical layer per datagram, e.g. 'mimo 2x2 rayleigh snr 6dB ldpc 1/2 qpsk precoder svd "
                       "detector lmmse csi-error 0.1' (grammar: netsem/phy/README.md). A failed CRC drops the datagram.")
    @click.option("--stage", "stages", multiple=True, metavar="'NAME key=value ...'",
                  help="An extra emulator stage after the PHY, registered by a package (repeatable).")
    @click.option("--loss-model", default=None, metavar="'NAME key=value ...'",
                  help="A registered loss model in place of netem's `loss` clause.")
    @click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
                  help="Seed of every random decision (interleaving, loss, noise).")
    @click.option("--mtu", type=click.IntRange(100, MAX_DATAGRAM), default=DEFAULT_MTU, show_default=True,
                  help="UDP payload budget per datagram, bytes.")
    @click.option("--frame-timeout", type=Duration(), default="0.25s", show_default=True,
                  help="Silence after which the receiver decodes a frame with what arrived.")
    @click.option("--deadline", type=Duration(), default=None,
                  help="The receiver counts datagrams arriving later than this after a frame's first as lost "
                       "(real-time video), e.g. 100ms.")
    @click.option("--stream-id", type=click.IntRange(0, 65535), default=0, show_default=True,
                  help="Stream id in every datagram (separates users or streams at one receiver).")
    @click.option("--frame-id", "first_frame_id", type=click.IntRange(0, 2**32 - 1), default=None,
                  help="Id of the first frame; the next frames count up (default: from the seed; random with --to).")
    @click.option("--rate", type=Rate(), default=None,
                  help="Pace the sender to this rate on the wire, tc's syntax (20mbit); default: each frame "
                       "leaves as one burst.")
    @click.option("--gap", type=Duration(), default=None, help="Pace the sender: at least this between datagrams (50us).")
    @click.option("--out", type=click.Path(dir_okay=False, writable=True),
                  help="Write the reconstruction (PNG); with several frames, NAME-0000.png, NAME-0001.png, ...")
    @click.option("--no-reference", "no_reference", is_flag=True,
                  help="Skip the decode with nothing lost that gives the codec's own (lossless) PSNR: one decode "
                       "less when datagrams were lost (a frame that arrived whole is its own reference anyway).")
    @click.option("--json", "as_json", is_flag=True,
                  help="Print one JSON object instead of the table (several frames: one per frame, then the summary).")
    @functools.wraps(command)
    def wrapper(images, codec, weights, quality, bpp, refine, expected_loss, skip, partition, jpeg_quality,
                interleave, netem, phy, stages, loss_model, seed, mtu, frame_timeout, deadline, stream_id,
                first_frame_id, rate, gap, out, no_reference, as_json, **extra):
        from emulator.grammar import NetemSpecError, parse_netem
        from emulator.loss import LOSS_MODELS, parse_loss_model_option
        from emulator.stages import STAGES, parse_stage_option
        from netsem.codecs.base import CodecError
        from netsem.phy import PhySpecError, parse_phy_spec
        from netsem.pipeline.frames import load_codec
        from netsem.pipeline.images import ImageError, load_images
        from netsem.pipeline.send import ReceiverUnreachable
        from netsem.pipeline.session import Pacing, SessionOptions, SessionResult
        from netsem.pipeline.simulate import NothingDelivered
        from netsem.pipeline.udp import NothingArrived

        if quality is not None or bpp is not None:
            if codec != DEFAULT_CODEC or weights or (quality is not None and bpp is not None):
                raise click.UsageError("--quality and --bpp pick a rate point of the default codec: "
                                       "give one of them, without --codec and --weights")
            if quality is not None:
                codec = QUALITY_CODECS[quality]
        if bpp is not None and skip:
            raise click.UsageError("--bpp chooses the channels left out itself: give --bpp or --skip-channels")
        if expected_loss is not None and bpp is None:
            raise click.UsageError("--expect-loss scores the choices of --bpp: give it with --bpp")
        try:
            parse_netem(netem)  # fail on bad words before any work
            if phy:
                parse_phy_spec(phy)
            for text in stages:
                STAGES.require(parse_stage_option(text)[0])
            if loss_model:
                LOSS_MODELS.require(parse_loss_model_option(loss_model)[0])
            chosen = load_codec(codec, weights=weights, jpeg_quality=jpeg_quality, refine=refine, skip=skip)
            loaded = load_images(images)
            for image in loaded:
                for note in image.notes:
                    click.echo(f"note: {note}", err=True)
            options = SessionOptions(codec=codec, weights=weights, partition=partition or chosen.partitions[0],
                                     stages=stages, loss_model=loss_model,
                                     interleave=interleave == "on", netem=netem, phy=phy, seed=seed, mtu=mtu,
                                     frame_timeout=frame_timeout, out=out, jpeg_quality=jpeg_quality,
                                     stream_id=stream_id, first_frame_id=first_frame_id,
                                     pacing=Pacing(rate=rate, gap=gap), deadline=deadline, reference=not no_reference,
                                     bpp=bpp, refine=refine, skip=skip,
                                     expected_loss=DEFAULT_EXPECTED_LOSS if expected_loss is None else expected_loss)
            with _refine_progress(refine):
                result = command(options, loaded, **extra)
        except (ImageError, CodecError, NetemSpecError, PhySpecError, NothingArrived, NothingDelivered,
                ReceiverUnreachable, ValueError, LookupError, OSError) as error:
            raise click.ClickException(str(error)) from None
        reports = result.reports if isinstance(result, SessionResult) else result
        if len(reports) == 1 and isinstance(reports[0], Report):
            print_report(reports[0], as_json)
            return
        for report in reports:
            print_frame_line(report, as_json)
        if isinstance(result, SessionResult):
            summary = result.summary
            click.echo(json.dumps({"summary": summary}) if as_json else
                       f"{summary['frames_received']}/{summary['frames']} frames received, mean PSNR "
                       f"{summary['psnr_db_mean'] or float('nan'):.2f} dB, SSIM {summary['ssim_mean'] or float('nan'):.4f}, "
                       f"{summary['datagrams_received']}/{summary['datagrams_sent']} datagrams, "
                       f"{summary['total_s']:.2f} s")

    return wrapper


@click.command()
@session_options
@click.option("--to", "destination", metavar="HOST:PORT",
              help="Send to a separately started `netsem emulate` or `netsem recv` (any host) instead of running "
                   "the chain here.")
@click.option("--pcap", type=click.Path(dir_okay=False, writable=True),
              help="Write what the in-process emulator saw and did to a pcapng file (Wireshark, `netsem inspect`).")
def send(options, images, destination, pcap):
    """Send IMAGES through a codec over real UDP: files, folders (every image in them), glob
    patterns, an animation's frames, or skimage:NAME (default skimage:astronaut). Several
    images go as consecutive frames of one stream.

    Each image is encoded, its latent partitioned into units and packed into binary
    datagrams, sent from one UDP socket through an in-process netem emulator (--netem) to
    another socket, reassembled (missing units masked) and decoded. The report gives
    PSNR/SSIM against the original and against the same codec with nothing lost, and the
    session's time, phase by phase.

    With --to, the datagrams go to HOST:PORT instead (a `netsem emulate` or `netsem recv`,
    which decodes and writes the frames) and the report is the sender's half.
    """
    from dataclasses import replace

    from netsem.pipeline.send import random_first_frame_id, run_send, send_to
    from netsem.pipeline.session import prepare_all

    if destination is not None:
        if options.netem or options.phy or pcap or options.out:
            raise click.UsageError("--netem, --phy, --pcap and --out belong to the in-process chain; with --to, "
                                   "impair and capture with `netsem emulate` on the path and write frames with "
                                   "`netsem recv --out`")
        if options.first_frame_id is None:
            options = replace(options, first_frame_id=random_first_frame_id())
        return send_to(prepare_all(options, images), endpoint(destination))
    return run_send(options, pcap=pcap, images=images)


@click.command()
@session_options
def simulate(options, images):
    """Like `netsem send`, on a virtual clock without sockets: same objects, same seed, same result."""
    from netsem.pipeline.simulate import run_simulate

    return run_simulate(options, images)


def endpoint(value: str) -> tuple[str, int]:
    """HOST:PORT or [IPV6]:PORT, or a click usage error."""
    from emulator.sockets import parse_address

    try:
        return parse_address(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


class PixelCount(click.ParamType):
    """A number of pixels: '16777216', '16M' (2^20) or '4096x4096'."""

    name = "pixels"

    def convert(self, value, param, ctx) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        try:
            if "x" in text:
                height, width = text.split("x")
                pixels = int(height) * int(width)
            else:
                pixels = int(text[:-1]) * 2**20 if text.endswith("m") else int(text)
        except ValueError:
            self.fail(f"{value!r} is not a pixel count like 16M or 4096x4096", param, ctx)
        if not 1 <= pixels <= 2**32:
            self.fail(f"{value!r} is out of range", param, ctx)
        return pixels


@click.command()
@click.option("--listen", default=f"127.0.0.1:{DEFAULT_PORT}", show_default=True, metavar="HOST:PORT",
              help="Address to receive netsem datagrams on (the default port is the Wireshark dissector's).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for each frame's image and JSON report, named frame-SEQ-SENDER-sSTREAM-fFRAME; "
                   "existing files are never replaced.")
@click.option("--frames", type=click.IntRange(1), help="Stop after this many frames (default: run until Ctrl-C).")
@click.option("--frame-timeout", type=Duration(), default="0.5s", show_default=True,
              help="Silence after a frame's latest datagram before it is decoded with what arrived.")
@click.option("--deadline", type=Duration(), default=None,
              help="Decode each frame at the latest this long after its first datagram; later datagrams count as "
                   "lost (real-time video), e.g. 100ms.")
@click.option("--max-pixels", type=PixelCount(), default="16M", show_default=True,
              help="Largest image a frame may claim (16M = 4096x4096); larger frames are rejected as too_large "
                   "before anything is allocated, since decoding costs grow with the image.")
@click.option("--min-received", type=click.FloatRange(0, 100), default=5.0, show_default=True,
              help="Percent of a frame's data that must arrive for it to be decoded; frames with less are counted "
                   "(frames_discarded) but not decoded, so stray datagrams cost no decoding. 0 decodes everything.")
@click.option("--max-frame-rate", type=click.FloatRange(1, min_open=False), default=1000.0, show_default=True,
              help="New frames per second one sender may open (as many in a burst); datagrams of frames beyond it "
                   "are rejected as rate_limited, so a flood of one-datagram frames costs little.")
@click.option("--codec", "codecs", multiple=True, metavar="MODULE:ATTRIBUTE",
              help="Make a codec of your own known before frames arrive (repeatable); installed plug-ins and "
                   "built-ins are known already.")
@click.option("--weights", "weights", multiple=True, metavar="NAME=FILE",
              help="Decode codec NAME with these weights, as its sender used them (repeatable).")
@click.option("--accept", default=None, metavar="NAME,...",
              help="Decode only frames of these codecs (`netsem models` lists them); a frame of another is "
                   "reported as not accepted and its codec never loaded (a learned one costs this process torch and "
                   "its weights, ~200 MB, on any sender's say). A sender's --bpp or --quality sends any of the "
                   "default codec's rate points: accept them all. Default: every codec known here.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per frame on stdout (JSON Lines).")
def recv(listen, out_dir, frames, frame_timeout, deadline, max_pixels, min_received, max_frame_rate, codecs, weights,
         accept, as_json) -> None:
    """Receive netsem frames on HOST:PORT from any number of senders and decode each one,
    complete or at its deadline, printing one line (or JSON object) per frame as it happens.

    Ctrl-C (SIGINT) or SIGTERM stops it within a second, prints the counters as JSON on
    stderr and exits 130 (143 for SIGTERM).
    """
    import os
    import signal
    import sys
    from pathlib import Path

    import trio

    from netsem.codecs.base import CodecError
    from netsem.codecs.registry import codec_names
    from netsem.pipeline.frames import load_codec
    from netsem.pipeline.recv import (
        OutputError,
        ReceiverOptions,
        ReceiverSummary,
        serve_receiver,
    )
    from netsem.pipeline.udp import run_trio

    address = endpoint(listen)
    pairs = []
    for item in weights:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"expected NAME=FILE, got {item!r}", param_hint="--weights")
        pairs.append((name, path))
    try:
        own = [load_codec(name).name for name in codecs]
        for name, path in pairs:
            load_codec(name, weights=path)
    except CodecError as error:
        raise click.ClickException(str(error)) from None
    accepted = tuple(_split((accept,))) if accept is not None else ()
    if accept is not None and not accepted:
        raise click.BadParameter("name at least one codec", param_hint="--accept")
    if unknown := sorted(set(accepted) - set(codec_names()) - set(own)):
        raise click.BadParameter(f"no codec named {', '.join(unknown)} (`netsem models` lists them)",
                                 param_hint="--accept")
    summary = ReceiverSummary()
    options = ReceiverOptions(frame_timeout=frame_timeout, frame_deadline=deadline, max_pixels=max_pixels,
                              min_share=min_received / 100, max_frames=frames, new_frames_per_second=max_frame_rate,
                              weights=tuple(pairs), accept=accepted)

    def show(report: dict) -> None:
        if as_json:
            click.echo(json.dumps(report))
            return
        state = "complete" if report["complete"] else f"partial at {report['delivery']}"
        partial = f" + {report['units_partial']} partly" if report["units_partial"] else ""
        lost = f", lost: {report['units_lost']}" if report["units_lost"] else ""
        outcome = report.get("error") or f"{report['image']} ({report['decode_s'] * 1e3:.0f} ms)"
        click.echo(f"frame {report['frame_id']} from {report['sender']} ({state}): {report['datagrams_received']}/"
                   f"{report['datagrams_expected']} datagrams, {report['units_received']}{partial}/"
                   f"{report['units_total']} units{lost} -> {outcome}")

    async def main() -> int | None:
        """Serve until done or a signal; the signal that stopped it, if one did."""
        stopped_by = None
        async with trio.open_nursery() as nursery:

            async def serve(task_status=trio.TASK_STATUS_IGNORED) -> None:
                await serve_receiver(address, Path(out_dir), options, on_report=show, summary=summary,
                                     task_status=task_status)
                nursery.cancel_scope.cancel()

            async def watch_signals(task_status=trio.TASK_STATUS_IGNORED) -> None:
                nonlocal stopped_by
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    task_status.started()
                    async for signum in signals:
                        stopped_by = signum
                        nursery.cancel_scope.cancel()

            await nursery.start(watch_signals)  # before "listening": a signal after it is always caught
            bound = await nursery.start(serve)
            click.echo(f"netsem recv: listening on {bound[0]}:{bound[1]}, writing to {out_dir}", err=True)
        return stopped_by

    try:
        stopped_by = run_trio(main)
    except OutputError as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:
        raise click.ClickException(f"cannot listen on {listen}: {error.strerror or error}") from None
    click.echo(json.dumps(summary.as_dict()), err=True)
    if stopped_by is not None:
        # Everything is written; skip the interpreter's teardown (torch's alone takes ~0.7 s,
        # and an abandoned decode thread would be waited for) so the signal ends it at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + stopped_by)


def _split(values: tuple[str, ...]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def interleave_choices(words: tuple[str, ...]) -> tuple[bool, ...]:
    """`--interleave` words (on, off, both; repeated or comma-separated) -> the axis, in order."""
    axis: list[bool] = []
    for word in _split(words):
        if word not in ("on", "off", "both"):
            raise click.BadParameter(f"takes on, off or both, got {word!r}", param_hint="--interleave")
        axis += [True, False] if word == "both" else [word == "on"]
    return tuple(dict.fromkeys(axis))


@click.command()
@click.argument("images", nargs=-1)
@click.option("--codec", "codecs", multiple=True, default=(DEFAULT_CODEC,), show_default=True,
              help="Codec(s); repeat or comma-separate.")
@click.option("--partition", "partitions", multiple=True, default=("channel",), show_default=True,
              help="Partition(s) of the latent codecs: channel, token, spatial (jpeg always runs cut at its "
                   "restart markers, webp in its tiles).")
@click.option("--jpeg-quality", default="75", show_default=True, metavar="Q|match:CODEC",
              help="Quality of the classic codecs, jpeg, webp and jpeg2000-tiles (1-95), or match:CODEC for, per "
                   "image and classic codec, the highest quality whose datagrams take no more bytes on the wire "
                   "than CODEC's.")
@click.option("--interleave", "interleave", multiple=True, default=("on",), show_default=True, help="on, off or both.")
@click.option("--loss", "losses", multiple=True,
              help="Bernoulli loss percentages, e.g. 0,10,20,30,40 or 0,10,...,40 (each becomes 'loss random P%').")
@click.option("--netem", "netem", multiple=True, metavar="'WORDS'",
              help="Full netem specs, one per option (adds to --loss).")
@click.option("--preset", "presets", multiple=True, metavar="NAME",
              help="A named impairment (`netsem presets` lists them), run as its netem words (repeatable; adds to "
                   "--loss and --netem).")
@click.option("--phy", "phy", multiple=True, metavar="'SPEC'",
              help="PHY spec(s), one per option (grammar: netsem/phy/README.md); with --snr written without "
                   "'snr', e.g. 'mimo 2x2 rayleigh ldpc 1/2 qpsk', and run at every SNR.")
@click.option("--snr", "snrs", multiple=True, metavar="DB,...",
              help="SNRs in dB for every --phy: '0,5,10' or '0,2,...,20' (repeat or comma-separate).")
@click.option("--refine", type=click.IntRange(min=0), default=0, metavar="N",
              help="Encoder-side latent refinement of the cnn codecs and their -ec forms, N steps (see send "
                   "--help); a classic codec matched to such a codec matches its refined bytes. 0 (default): off.")
@click.option("--skip-channels", "skip", type=click.IntRange(min=0), default=0, metavar="K",
              help="The imputing -ec codecs leave out K channels (see send --help); a classic codec matched to "
                   "such a codec matches the bytes it sends. 0 (default): all sent.")
@click.option("--bpp", "bpps", multiple=True, metavar="TARGET,...",
              help="Rate targets in bits per pixel on the wire, e.g. 0.5,1,2 (repeat or comma-separate): per "
                   "target and image, a run of what `simulate --bpp` sends (the default codec's rate point and "
                   "channels left out that give the image the most PSNR within the target; the row names them). "
                   "--codec may add classic codecs; --jpeg-quality match:bpp matches them to each target's bytes.")
@click.option("--expect-loss", "expect_loss", default=None, metavar="P%[,P%...]|configured",
              help="With --bpp: make each choice for a link that loses about P % of the datagrams, or one of "
                   "several losses, each as likely (see simulate --help), or for the loss its run is configured "
                   "with ('configured': the sender knows the link). "
                   f"Default {DEFAULT_EXPECTED_LOSS:g} %, as simulate and send.")
@click.option("--seeds", default="0", show_default=True,
              help="Seeds: '0-4' or '1,5,9'. Each seed is one loss pattern, the same for every codec and image; a "
                   "frame of a few dozen datagrams loses a share far from the configured rate (16 at 40 %: 6 or "
                   "10), so measure over 10 seeds or more (the sweep ends by saying what its runs lost).")
@click.option("--mtu", "mtus", multiple=True, default=(str(DEFAULT_MTU),), show_default=True, metavar="BYTES,...",
              help="UDP payload budget(s) per datagram: '1200' or '600,1200' (repeat or comma-separate).")
@click.option("--transport", type=click.Choice(["virtual", "udp"]), default="virtual", show_default=True,
              help="virtual: the emulator on a virtual clock (fast, identical results); udp: real sockets on "
                   "each worker's loopback.")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Worker processes of the local Dask cluster, one thread each (default: one per core).")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Run on this Dask cluster (`dask scheduler`, `dask worker`) instead of a local one; its "
                   "workers need netsem and the image files at the same paths (skimage:NAME needs none).")
@click.option("--max-runs", type=click.IntRange(1), default=None,
              help="Run at most this many of the runs --out does not hold yet, then stop; the same command "
                   "again goes on.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="Results file (.csv), written as runs finish; runs it already holds (same configuration "
                   "and versions) are not run again.")
def sweep(images, codecs, partitions, jpeg_quality, interleave, losses, netem, presets, phy, snrs, refine, skip, bpps,
          expect_loss, seeds, mtus, transport, workers, scheduler, max_runs, out) -> None:
    """Run every combination of IMAGES x codecs (and --bpp targets) x partitions x interleaving x
    MTU x impairments (netem specs, PHY specs at each SNR) x seeds on a Dask cluster, one task per
    run, and write one row per run with its configuration and versions.

    IMAGES are files or scikit-image photographs named skimage:NAME (default: skimage:astronaut).
    A run that delivers nothing is a row with delivered False and empty metrics.
    """
    import os
    from pathlib import Path

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from emulator.grammar import NetemSpecError, parse_netem
    from netsem.codecs.base import CodecError
    from netsem.phy import PhySpecError
    from netsem.pipeline.frames import CLASSIC_CODECS, load_codec
    from netsem.pipeline.images import ImageError, load_one
    from netsem.pipeline.sweep import BPP_MATCH, EXPECT_CONFIGURED, SweepGrid, configured_loss, parse_number_list
    from netsem.pipeline.sweep_results import ResultsError
    from netsem.pipeline.sweep_runner import achieved_losses, run_sweep

    if Path(out).suffix != ".csv":
        raise click.BadParameter("results stream to a .csv file", param_hint="--out")
    try:
        if "-" in seeds:
            low, high = (int(part) for part in seeds.split("-"))
            seed_list = tuple(range(low, high + 1))
        else:
            seed_list = tuple(int(seed) for seed in _split((seeds,)))
    except ValueError:
        raise click.BadParameter(f"seeds must look like '0-4' or '1,5,9', got {seeds!r}") from None
    if not seed_list:
        raise click.BadParameter(f"{seeds!r} names no seed (write the lower one first: '1-5')", param_hint="--seeds")
    numbers = {}
    # each axis may be repeated or comma-separated (a repeated option is never silently the last one)
    for hint, words in (("--loss", losses), ("--snr", snrs), ("--mtu", mtus), ("--bpp", bpps)):
        try:
            numbers[hint] = parse_number_list(",".join(words))
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint=hint) from None
    if not all(100 <= mtu <= MAX_DATAGRAM and mtu == int(mtu) for mtu in numbers["--mtu"]) or not numbers["--mtu"]:
        raise click.BadParameter(f"MTUs are whole numbers of bytes in 100..{MAX_DATAGRAM}", param_hint="--mtu")
    # The netem axis: --loss as Bernoulli specs, each --netem, then each --preset (SweepGrid
    # expands it to its words).
    specs = tuple(f"loss random {p:g}%" if p else "" for p in numbers["--loss"]) + tuple(netem)
    interleave_axis = interleave_choices(interleave)
    jpeg_match = None
    if jpeg_quality.startswith("match:"):
        jpeg_match, jpeg_quality = jpeg_quality.removeprefix("match:"), "75"
    if not jpeg_quality.isdigit() or not 1 <= int(jpeg_quality) <= 95:
        raise click.BadParameter(f"expected a quality 1-95 or match:CODEC, got {jpeg_quality!r}",
                                 param_hint="--jpeg-quality")
    codecs = tuple(_split(codecs))
    if bpps:
        if not numbers["--bpp"] or not all(0 < target < math.inf for target in numbers["--bpp"]):
            raise click.BadParameter("rate targets are positive bits per pixel, e.g. 0.5,1,2", param_hint="--bpp")
        if skip:
            raise click.UsageError("--bpp chooses the channels left out itself: give --bpp or --skip-channels")
        if click.get_current_context().get_parameter_source("codecs") is ParameterSource.DEFAULT:
            codecs = ()  # the targets' runs are the default codec's
        elif learned := [codec for codec in codecs if codec not in CLASSIC_CODECS]:
            raise click.UsageError(f"--bpp chooses among the default codec's rate points itself; --codec may add "
                                   f"classic codecs ({', '.join(CLASSIC_CODECS)}), not {', '.join(learned)}")
    elif jpeg_match == BPP_MATCH:
        raise click.UsageError("--jpeg-quality match:bpp matches the runs of --bpp: give --bpp TARGET,...")
    if expect_loss is not None:
        if not bpps:
            raise click.UsageError("--expect-loss scores the choices of --bpp: give it with --bpp")
        if expect_loss != EXPECT_CONFIGURED:
            try:
                losses = ExpectedLossType().convert(expect_loss, None, None)
                expect_loss = ",".join(f"{loss:g}" for loss in (losses if isinstance(losses, tuple) else (losses,)))
            except click.BadParameter as error:
                raise click.BadParameter(f"{error.message}, or 'configured'", param_hint="--expect-loss") from None
    grid = SweepGrid(
        images=tuple(images) or (None,), codecs=codecs, partitions=tuple(_split(partitions)),
        interleave=interleave_axis, netem=specs if specs or presets else ("",),
        presets=tuple(presets), seeds=seed_list,
        mtus=tuple(int(mtu) for mtu in numbers["--mtu"]), phy=tuple(phy), snrs=tuple(numbers["--snr"]),
        transport=transport, jpeg_quality=int(jpeg_quality), jpeg_match=jpeg_match, refine=refine,
        skip=skip, bpps=tuple(numbers["--bpp"]), expect_loss=expect_loss or f"{DEFAULT_EXPECTED_LOSS:g}",
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())
    try:
        for spec in grid.netem:
            parse_netem(spec)
        if expect_loss == EXPECT_CONFIGURED and (unknown := [
                words for words, _ in grid.netem_points() if configured_loss(words)[1] is None]):
            raise click.UsageError(f"--expect-loss configured: {unknown[0]!r} has no configured mean loss (the "
                                   "four-state model): give a percent")
        for image in grid.images:  # here, before any worker starts, so a typo is one line
            load_one(image)
        if not grid.tasks():
            raise click.UsageError("nothing to run: jpeg takes only the segment partition, the latent codecs "
                                   "channel, token or spatial")
        if skip:
            skipping = [codec for codec in grid.codecs if grid.skip_of(codec) and codec not in CLASSIC_CODECS]
            if not skipping:
                raise click.UsageError("--skip-channels: none of the codecs leaves channels out (the imputing -ec "
                                       "codecs do)")
            for codec in skipping:
                load_codec(codec, skip=skip)  # here, so that too many channels is one line
        with Progress(*columns, transient=True, console=Console(stderr=True)) as progress:
            bar = None

            def show(done: int, total: int) -> None:
                nonlocal bar
                if bar is None:  # runs already done are not counted into the speed behind the ETA
                    bar = progress.add_task(f"{total} runs", total=total, completed=done)
                else:
                    progress.update(bar, completed=done)

            outcome = run_sweep(grid, Path(out), workers=workers or os.cpu_count() or 1, scheduler=scheduler,
                                max_runs=max_runs, on_progress=show)
    except (ImageError, CodecError, NetemSpecError, PhySpecError, ResultsError, ValueError, LookupError,
            OSError) as error:
        raise click.ClickException(str(error)) from None
    nothing = f", {outcome.delivered_nothing} delivered nothing" if outcome.delivered_nothing else ""
    held = f" ({outcome.skipped} were in {out} already)" if outcome.skipped else ""
    click.echo(f"{outcome.ran} runs{nothing}{held} -> {out}")
    for loss in achieved_losses(grid, Path(out)):
        configured = "" if loss.configured is None else f" (configured {loss.configured:.3g} %)"
        spread = f"; per seed {loss.seed_range[0]:.1f}-{loss.seed_range[1]:.1f} %" if loss.seeds > 1 else ""
        click.echo(f"  {loss.netem}: the runs lost {loss.achieved:.1f} % of their datagrams{configured}, "
                   f"{loss.runs} runs, {loss.seeds} seed{'s' * (loss.seeds > 1)}{spread}")
    if outcome.remaining:
        click.echo(f"{outcome.remaining} of {outcome.total} runs left: the same command goes on")


@click.command()
@click.argument("results", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="PNG of PSNR and SSIM against the swept parameter (SNR, configured loss, or each netem spec).")
@click.option("--per-image", "per_image", type=click.Path(dir_okay=False, writable=True),
              help="Also write a per-image ΔPSNR bar chart (PNG) at --at.")
@click.option("--at", "at_value", type=float, default=10.0, show_default=True,
              help="Value of the swept parameter (loss percent or SNR in dB) of the per-image chart.")
def plot(results, out, per_image, at_value) -> None:
    """Plot a sweep's RESULTS (.csv): quality against the configured parameter it swept, and
    per-image ΔPSNR at one value of it."""
    from pathlib import Path

    from netsem.pipeline.plot import plot_delta_per_image, plot_quality
    from netsem.pipeline.sweep_results import ResultsError, read_results

    try:
        rows = read_results(Path(results))
    except (ResultsError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    if not rows:
        raise click.ClickException(f"{results} holds no results")
    axis = plot_quality(rows, Path(out))
    click.echo(f"wrote {out} (x: {axis.label})")
    if per_image:
        try:
            plot_delta_per_image(rows, Path(per_image), at_value)
        except ValueError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"wrote {per_image}")
