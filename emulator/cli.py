"""`netsem emulate`: the netem-compatible UDP proxy on the command line.

    netsem emulate --listen 127.0.0.1:9000 --forward 127.0.0.1:9001 --seed 1 \
        --pcap run.pcapng --stats run.json -- loss gemodel 1% 10% 70% 0.1% delay 20ms

Setup errors (a malformed netem spec, a port in use, an unknown host, a target that is the
emulator itself) print one line and exit with status 2. Ctrl-C (or SIGTERM) stops the proxy cleanly: the counters are printed,
the stats JSON and the capture are written, and the exit status is 130 (143 for SIGTERM).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import platform
import random
import signal
import sys
from pathlib import Path

import click
import trio

from emulator.correlation import component_rng
from emulator.fate import LinkCounters
from emulator.grammar import USAGE, NetemSpecError, parse_netem
from emulator.link import Link
from emulator.loss import create_loss_model, parse_loss_model_option
from emulator.proxy import (
    DEFAULT_CLIENT_IDLE,
    DEFAULT_MAX_CLIENTS,
    ProxyError,
    ProxyStats,
    bind_listen_socket,
    check_forward,
    parse_network,
    serve_proxy,
)
from emulator.sockets import parse_address
from emulator.stages import create_stage, parse_stage_option

PROGRAM = "netsem emulate"
log = logging.getLogger("emulator")


def _fail(message: str) -> None:
    click.echo(f"{PROGRAM}: error: {message}", err=True)
    sys.exit(2)


def describe_proxy(stats: ProxyStats) -> str:
    kernel = stats.kernel_drops_now()
    return (f"clients {stats.clients} (expired {stats.clients_expired}, evicted {stats.clients_evicted}), "
            f"not allowed {stats.not_allowed}, kernel-dropped {'unknown' if kernel is None else kernel} "
            "(socket buffers full)")


def describe_counters(name: str, counters: LinkCounters, queued: int) -> str:
    causes = ", ".join(f"{cause} {count}" for cause, count in sorted(counters.dropped.items()))
    dropped = sum(counters.dropped.values())
    return (
        f"{name}: received {counters.received}, sent {counters.sent}, dropped {dropped}"
        f"{f' ({causes})' if causes else ''}, corrupted {counters.corrupted}, duplicated {counters.duplicated}, "
        f"reordered {counters.reordered}, delayed {counters.delayed}, queue-dropped {counters.queue_dropped}"
        f"{f', still queued {queued}' if queued else ''}"
    )


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="NETEM WORDS (after --), as `tc qdisc ... netem`: " + USAGE,
)
@click.option("--listen", required=True, metavar="[HOST:]PORT", help="Where clients send (host defaults to 127.0.0.1).")
@click.option("--forward", required=True, metavar="HOST:PORT", help="Where impaired datagrams go.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed of every random decision (default: the spec's `seed`, else random, printed).")
@click.option("--pcap", "pcap_path", type=click.Path(dir_okay=False), default=None, help="Write a pcapng capture with a fate comment per packet.")
@click.option("--stats", "stats_path", type=click.Path(dir_okay=False), default=None, help="Write the counters and configuration as JSON on exit.")
@click.option("--reverse", is_flag=True, help="Impair replies from the target too (same spec, separate random streams).")
@click.option("--stage", "stage_texts", multiple=True, metavar="'NAME key=value ...'", help="Add a registered plug-in stage (repeatable).")
@click.option("--loss-model", "loss_text", default=None, metavar="'NAME key=value ...'",
              help="A registered plug-in loss model in place of the netem words' `loss` clause.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, help="Stop after SECONDS (exit 0).")
@click.option("--allow", "allow_texts", multiple=True, metavar="ADDR[/PREFIX]",
              help="Serve only clients from these addresses or networks (repeatable); others are dropped and counted.")
@click.option("--max-clients", type=click.IntRange(min=1), default=DEFAULT_MAX_CLIENTS, show_default=True,
              help="Clients tracked at once (each gets its own socket towards the target; the least recently active "
                   "is closed first).")
@click.option("--client-timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_CLIENT_IDLE,
              show_default=True, help="Seconds without traffic after which a client's socket is closed.")
@click.argument("netem_words", nargs=-1, type=click.UNPROCESSED)
def emulate(listen, forward, seed, pcap_path, stats_path, reverse, stage_texts, loss_text, duration, allow_texts,
            max_clients,
            client_timeout, netem_words) -> None:
    """Forward UDP datagrams through a netem-compatible impairment chain.

    The words after -- are those after `netem` in `tc qdisc ... netem`, with tc's units
    (a bare time is ns, a bare percentage is percent, `Mbps` is megabytes/s) and defaults.
    netsem extension: `correct` after a loss/duplicate/corrupt/reorder correlation gives an
    exactly correlated Markov source instead of netem's biased approximation.

    Like a NAT, each client (source address) gets a socket of its own towards the target,
    and replies go back to the client they answer. Listening on a non-loopback address
    lets any host use the emulator: restrict it with --allow.
    """
    try:
        spec = parse_netem(list(netem_words))
    except NetemSpecError as error:
        _fail(f"netem spec: {error}")
    try:
        listen_address = parse_address(listen, default_host="127.0.0.1")
        forward_address = parse_address(forward, default_host=None)
        allow = [parse_network(text) for text in allow_texts]
    except ValueError as error:
        _fail(str(error))
    if seed is None:
        seed = spec.seed if spec.seed is not None else random.SystemRandom().randrange(2**32)

    def build_link(stream: str) -> Link:
        stages = []
        for text in stage_texts:
            try:
                name, options = parse_stage_option(text)
                stages.append(create_stage(name, options, component_rng(seed, stream, f"stage/{name}")))
            except (ValueError, LookupError) as error:
                _fail(f"--stage {text!r}: {error}")
        loss_model = None
        if loss_text is not None:
            try:
                name, options = parse_loss_model_option(loss_text)
                loss_model = create_loss_model(name, options, component_rng(seed, stream, f"loss/{name}"))
            except (ValueError, LookupError) as error:
                _fail(f"--loss-model {loss_text!r}: {error}")
        return Link(spec, seed=seed, stream=stream, stages=stages, loss_model=loss_model)

    link = build_link("forward")
    reverse_link = build_link("reverse") if reverse else None
    logging.basicConfig(format=f"{PROGRAM}: warning: %(message)s", level=logging.WARNING, stream=sys.stderr)
    try:
        listen_sock = bind_listen_socket(listen_address)
    except ProxyError as error:
        _fail(str(error))
    try:
        check_forward(listen_sock, forward_address)
    except ProxyError as error:
        listen_sock.close()
        _fail(str(error))
    if not ipaddress.ip_address(listen_sock.getsockname()[0]).is_loopback and not allow:
        log.warning("listening on %s: any host that reaches it can send through this emulator "
                    "(restrict with --allow ADDR/PREFIX)", listen_sock.getsockname()[0])
    for note in spec.notes:
        click.echo(f"{PROGRAM}: note: {note}", err=True)

    capture = None
    if pcap_path is not None:
        from emulator.pcap import CaptureWriter

        try:
            capture = CaptureWriter(pcap_path)
        except OSError as error:
            _fail(f"cannot write {pcap_path}: {error.strerror or error}")
    stats = ProxyStats()
    host, port = listen_sock.getsockname()[:2]
    click.echo(
        f"{PROGRAM}: listening on {host}:{port}, forwarding to {forward_address[0]}:{forward_address[1]}, "
        f"seed {seed}, netem: {' '.join(netem_words) or '(no impairment)'}",
        err=True,
    )
    serve = functools.partial(serve_proxy, listen_sock, forward_address, link, reverse_link=reverse_link,
                              capture=capture, stats=stats, allow=allow, max_clients=max_clients,
                              client_idle=client_timeout)
    try:
        outcome = trio.run(_run, serve, link, reverse_link, duration)
    except ProxyError as error:
        _fail(str(error))
    finally:
        listen_sock.close()
        if capture is not None:
            capture.close()

    lines = [describe_counters("forward", link.counters, link.queued)]
    if reverse_link is not None:
        lines.append(describe_counters("reverse", reverse_link.counters, reverse_link.queued))
    lines.append(describe_proxy(stats))
    if stats.forward_refused:
        lines.append(f"target refused {stats.forward_refused} datagrams (nothing listening at {forward})")
    for line in lines:
        click.echo(f"{PROGRAM}: {line}", err=True)
    if stats_path is not None:
        _write_stats(Path(stats_path), netem_words, seed, listen, forward, link, reverse_link, stats)
    sys.exit({"interrupted": 130, "terminated": 143}.get(outcome, 0))


async def _run(serve, link, reverse_link, duration) -> str:
    """Run until the duration ends or a signal arrives; returns why it stopped."""
    outcome = "finished"
    async with trio.open_nursery() as nursery:
        await nursery.start(serve)

        async def watch_signals() -> None:
            nonlocal outcome
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    outcome = "interrupted" if signum == signal.SIGINT else "terminated"
                    nursery.cancel_scope.cancel()

        nursery.start_soon(watch_signals)
        if sys.stderr.isatty():
            nursery.start_soon(_live_status, link, reverse_link)
        if duration is not None:
            await trio.sleep(duration)
            nursery.cancel_scope.cancel()
    return outcome


async def _live_status(link: Link, reverse_link: Link | None) -> None:
    """A one-line status on the terminal, refreshed a few times a second."""
    from rich.console import Console
    from rich.live import Live

    def line() -> str:
        parts = []
        for name, current in (("fwd", link), ("rev", reverse_link)):
            if current is None:
                continue
            c = current.counters
            parts.append(
                f"{name} rx {c.received} tx {c.sent} drop {sum(c.dropped.values())} corrupt {c.corrupted} "
                f"dup {c.duplicated} reord {c.reordered} delayed {c.delayed} qfull {c.queue_dropped} queued {current.queued}"
            )
        return " | ".join(parts)

    with Live(line(), console=Console(stderr=True), refresh_per_second=4, transient=True) as live:
        while True:
            await trio.sleep(0.25)
            live.update(line())


def _write_stats(path, netem_words, seed, listen, forward, link, reverse_link, stats) -> None:
    import numpy
    import scapy

    document = {
        "configuration": {
            "netem": list(netem_words), "seed": seed, "listen": listen, "forward": forward,
            "reverse": reverse_link is not None, "limit": link.spec.limit,
        },
        "forward": link.counters.as_dict(),
        "reverse": reverse_link.counters.as_dict() if reverse_link is not None else None,
        "proxy": stats.as_dict(),
        "versions": {
            "python": platform.python_version(), "trio": trio.__version__, "numpy": numpy.__version__,
            "scapy": scapy.VERSION, "click": click.__version__ if hasattr(click, "__version__") else "",
        },
    }
    try:
        path.write_text(json.dumps(document, indent=2) + "\n")
    except OSError as error:
        click.echo(f"{PROGRAM}: error: cannot write {path}: {error.strerror or error}", err=True)
