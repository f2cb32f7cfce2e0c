"""`netsem emulate`: the netem-compatible UDP proxy on the command line.

    netsem emulate --listen 127.0.0.1:9000 --forward 127.0.0.1:9001 --seed 1 \
        --pcap run.pcapng --stats run.json -- loss gemodel 1% 10% 70% 0.1% delay 20ms
    netsem emulate --listen 47000 --forward 127.0.0.1:5000 --forward 47001=127.0.0.1:6000 \
        --rule 'dport 5000: loss 5%' --rule 'dport 6000: delay 20ms' --event-log run.jsonl
    netsem emulate --listen 47000 --forward 127.0.0.1:5000 --replay run.jsonl

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
from emulator.eventlog import EventLogError, EventLogWriter, ReplayLink, read_event_log
from emulator.fate import LinkCounters
from emulator.grammar import USAGE, NetemSpec, NetemSpecError, parse_netem
from emulator.link import Link
from emulator.loss import create_loss_model, parse_loss_model_option
from emulator.presets import PresetError, netem_equivalent, preset_words
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
from emulator.rules import (
    FORWARD,
    REVERSE,
    FlowRule,
    RuleError,
    RuleSet,
    link_name,
    parse_rule,
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
@click.option("--listen", default=None, metavar="[HOST:]PORT",
              help="Where clients send (host defaults to 127.0.0.1); the --forward without LISTEN= serves it.")
@click.option("--forward", "forward_texts", multiple=True, required=True, metavar="[[HOST:]PORT=]HOST:PORT",
              help="Where impaired datagrams go. Repeatable as LISTEN=TARGET: another port of this emulator, "
                   "forwarding to another target (rules tell flows apart by target with dport/dst).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed of every random decision (default: the spec's `seed`, else random, printed).")
@click.option("--pcap", "pcap_path", type=click.Path(dir_okay=False), default=None, help="Write a pcapng capture with a fate comment per packet.")
@click.option("--stats", "stats_path", type=click.Path(dir_okay=False), default=None, help="Write the counters and configuration as JSON on exit.")
@click.option("--reverse", is_flag=True, help="Impair replies from the target too (same spec, separate random streams).")
@click.option("--rule", "rule_texts", multiple=True, metavar="'MATCH: NETEM WORDS'",
              help="Per-flow impairment (repeatable, first match wins): MATCH is sport/dport PORT[-PORT], src/dst "
                   "ADDR[/PREFIX], forward, reverse or default, e.g. 'dport 5000: loss 5%'.")
@click.option("--preset", "preset_name", default=None, metavar="NAME",
              help="Start from a named impairment (`netsem presets` lists them); the words after -- add to it.")
@click.option("--event-log", "event_log_path", type=click.Path(dir_okay=False), default=None,
              help="Write every fate decision, with its random stream positions, as JSON Lines.")
@click.option("--replay", "replay_path", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Repeat the fates of an event log exactly (its rules and words; give no others).")
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
def emulate(listen, forward_texts, seed, pcap_path, stats_path, reverse, rule_texts, preset_name, event_log_path,
            replay_path, stage_texts, loss_text, duration, allow_texts, max_clients, client_timeout,
            netem_words) -> None:
    """Forward UDP datagrams through a netem-compatible impairment chain.

    The words after -- are those after `netem` in `tc qdisc ... netem`, with tc's units
    (a bare time is ns, a bare percentage is percent, `Mbps` is megabytes/s) and defaults.
    netsem extensions: `correct` after a correlation, `loss burst MEAN_LOSS MEAN_BURST`,
    `corrupt P frame`, `in-order`, `link-trace FILE`, `packet-trace FILE` (see the README).

    Like a NAT, each client (source address) gets a socket of its own towards the target,
    and replies go back to the client they answer. Listening on a non-loopback address
    lets any host use the emulator: restrict it with --allow.
    """
    # From here on SIGINT / SIGTERM only leave a mark: one that arrives while the sockets are set
    # up (before trio watches signals) ends the run cleanly instead of raising KeyboardInterrupt
    # wherever setup happens to be.
    early: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, frame: early.append(number))
    try:
        routes = _parse_routes(listen, forward_texts)
        allow = [parse_network(text) for text in allow_texts]
    except ValueError as error:
        _fail(str(error))
    if replay_path is not None:
        given = [name for name, value in (("netem words", netem_words), ("--rule", rule_texts), ("--preset", preset_name),
                                          ("--stage", stage_texts), ("--loss-model", loss_text), ("--seed", seed),
                                          ("--reverse", reverse)) if value]
        if given:
            _fail(f"--replay repeats the logged run: give no {', '.join(given)}")
        logged, rules, words, seed, reverse = _replayed(replay_path)
    else:
        words = list(netem_words)
        if preset_name is not None:
            try:
                words = preset_words(preset_name) + words
            except PresetError as error:
                _fail(str(error))
        try:
            rules = [parse_rule(text) for text in rule_texts]
        except RuleError as error:
            _fail(str(error))
        words, rules = _split_defaults(words, rules, preset_name)
    try:
        spec = parse_netem(words)
    except NetemSpecError as error:
        _fail(f"netem spec{f' (preset {preset_name} + your words)' if preset_name else ''}: {error}")
    if seed is None:
        seed = spec.seed if spec.seed is not None else random.SystemRandom().randrange(2**32)

    counting = event_log_path is not None

    def build_link(link_spec: NetemSpec, stream: str) -> Link:
        stages = []
        for text in stage_texts:
            try:
                name, options = parse_stage_option(text)
                stages.append(create_stage(name, options, component_rng(seed, stream, f"stage/{name}", counting=counting)))
            except (ValueError, LookupError) as error:
                _fail(f"--stage {text!r}: {error}")
        loss_model = None
        if loss_text is not None:
            try:
                name, options = parse_loss_model_option(loss_text)
                loss_model = create_loss_model(name, options,
                                               component_rng(seed, stream, f"loss/{name}", counting=counting))
            except (ValueError, LookupError) as error:
                _fail(f"--loss-model {loss_text!r}: {error}")
        try:
            return Link(link_spec, seed=seed, stream=stream, stages=stages, loss_model=loss_model,
                        draw_positions=counting)
        except ValueError as error:
            _fail(f"{stream}: {error}")

    if replay_path is not None:
        try:
            rule_set, replay_links = _replay_rule_set(logged, rules, reverse)
        except EventLogError as error:
            _fail(f"--replay {replay_path}: {error}")
    else:
        link_of = {}
        for index, rule in enumerate(rules):
            link_of[index] = tuple(
                build_link(rule.spec, link_name(index, direction)) if rule.applies_to(direction, reverse) else None
                for direction in (FORWARD, REVERSE)
            )
        rule_set = RuleSet(rules, link_of, build_link(spec, FORWARD), build_link(spec, REVERSE) if reverse else None)
        replay_links = []
    named_links = rule_set.named_links()
    link, reverse_link = rule_set.default_forward, rule_set.default_reverse
    logging.basicConfig(format=f"{PROGRAM}: warning: %(message)s", level=logging.WARNING, stream=sys.stderr)
    sockets = []
    try:
        for listen_address, forward_address in routes:
            sockets.append(bind_listen_socket(listen_address))
            check_forward(sockets[-1], forward_address)
    except ProxyError as error:
        for sock in sockets:
            sock.close()
        _fail(str(error))
    for sock in sockets:
        if not ipaddress.ip_address(sock.getsockname()[0]).is_loopback and not allow:
            log.warning("listening on %s: any host that reaches it can send through this emulator "
                        "(restrict with --allow ADDR/PREFIX)", sock.getsockname()[0])
    for note in dict.fromkeys(note for rule_spec in [spec, *(rule.spec for rule in rules)] for note in rule_spec.notes):
        click.echo(f"{PROGRAM}: note: {note}", err=True)

    capture = event_log = None
    if pcap_path is not None:
        from emulator.pcap import CaptureWriter

        try:
            capture = CaptureWriter(pcap_path)
        except OSError as error:
            _fail(f"cannot write {pcap_path}: {error.strerror or error}")
    if event_log_path is not None:
        header = {"seed": seed, "reverse": reverse, "rules": [rule.text for rule in rules],
                  "links": [{"name": name, "netem": list(each.spec.words), "draw_streams": list(each.draw_names),
                             "stages": list(stage_texts), "loss_model": loss_text} for name, each in named_links]}
        try:
            event_log = EventLogWriter(event_log_path, header)
        except OSError as error:
            _fail(f"cannot write {event_log_path}: {error.strerror or error}")
    stats = ProxyStats()

    def announce() -> None:
        for sock, (_, forward_address) in zip(sockets, routes):
            host, port = sock.getsockname()[:2]
            click.echo(
                f"{PROGRAM}: listening on {host}:{port}, forwarding to {forward_address[0]}:{forward_address[1]}, "
                f"seed {seed}, netem: {_shown_words(preset_name, netem_words, spec)}"
                f"{f', replaying {replay_path}' if replay_path else ''}",
                err=True,
            )
        for index, rule in enumerate(rules):
            equivalent = netem_equivalent(rule.spec)
            click.echo(f"{PROGRAM}: rule {index}: {rule.text}{f' (= {equivalent})' if equivalent else ''}", err=True)
    serve = functools.partial(serve_proxy, sockets[0], routes[0][1], link, reverse_link=reverse_link, rules=rule_set,
                              routes=list(zip(sockets[1:], (target for _, target in routes[1:]))), capture=capture,
                              event_log=event_log, stats=stats, allow=allow, max_clients=max_clients,
                              client_idle=client_timeout)
    try:
        outcome = trio.run(_run, serve, named_links, duration, announce, early)
    except ProxyError as error:
        _fail(str(error))
    finally:
        for sock in sockets:
            sock.close()
        if capture is not None:
            capture.close()
        if event_log is not None:
            event_log.close()

    lines = [describe_counters(name, each.counters, each.queued) for name, each in named_links]
    beyond = sum(each.beyond_log for each in replay_links)
    if beyond:
        lines.append(f"replay: {beyond} datagrams arrived beyond the log and passed unimpaired")
    lines.append(describe_proxy(stats))
    if stats.forward_refused:
        lines.append(f"a target refused {stats.forward_refused} datagrams (nothing listening there?)")
    for line in lines:
        click.echo(f"{PROGRAM}: {line}", err=True)
    if stats_path is not None:
        _write_stats(Path(stats_path), words, seed, listen, forward_texts, rules, named_links, stats)
    sys.exit({"interrupted": 130, "terminated": 143}.get(outcome, 0))


def _parse_routes(listen: str | None, forward_texts: tuple[str, ...]) -> list[tuple[tuple[str, int], tuple[str, int]]]:
    """(listen address, target) per --forward; the one without LISTEN= uses --listen (first)."""
    routes, plain = [], []
    for text in forward_texts:
        listen_text, sep, target_text = text.rpartition("=")
        target = parse_address(target_text, default_host=None)
        if sep:
            routes.append((parse_address(listen_text, default_host="127.0.0.1"), target))
        else:
            plain.append(target)
    if len(plain) > 1:
        raise ValueError("give one --forward HOST:PORT for --listen; more targets need their own port: "
                         "--forward LISTEN=HOST:PORT")
    if plain:
        if listen is None:
            raise ValueError("--forward HOST:PORT needs --listen (or write --forward LISTEN=HOST:PORT)")
        routes.insert(0, (parse_address(listen, default_host="127.0.0.1"), plain[0]))
    elif listen is not None:
        raise ValueError("--listen needs a --forward HOST:PORT without LISTEN=")
    return routes


def _split_defaults(words: list[str], rules: list[FlowRule], preset_name: str | None) -> tuple[list[str], list[FlowRule]]:
    """A `default: WORDS` rule stands for the words after -- (giving both is an error)."""
    defaults = [rule for rule in rules if rule.default]
    if not defaults:
        return words, rules
    if len(defaults) > 1 or defaults[0].direction is not None:
        _fail("give one 'default: WORDS' rule, without forward/reverse (or use --reverse)")
    if words:
        _fail(f"'{defaults[0].text}' and the words after -- {f'or --preset {preset_name} ' if preset_name else ''}"
              "both say what unmatched flows get: give one")
    return list(defaults[0].spec.words), [rule for rule in rules if not rule.default]


def _replayed(path: str):
    """The log, and the rules, default words, seed and reverse flag of the run it recorded."""
    try:
        logged = read_event_log(path)
        header = logged.header
        rules = [parse_rule(text) for text in header.get("rules", [])]
        default = next(link for link in header["links"] if link["name"] == FORWARD)
        for link in header["links"]:
            parse_netem(link["netem"])
    except (EventLogError, RuleError, NetemSpecError, KeyError, TypeError, StopIteration) as error:
        _fail(f"--replay {path}: {error or 'no forward link in its header'}")
    return logged, rules, default["netem"], header.get("seed"), bool(header.get("reverse"))


def _replay_rule_set(logged, rules: list[FlowRule], reverse: bool):
    by_name: dict[str, list[dict]] = {}
    for record in logged.records:
        by_name.setdefault(record["link"], []).append(record)
    specs = {link["name"]: parse_netem(link["netem"]) for link in logged.header["links"]}
    replays = {name: ReplayLink(by_name.get(name, []), link_spec) for name, link_spec in specs.items()}
    link_of = {index: (replays.get(link_name(index, FORWARD)), replays.get(link_name(index, REVERSE)))
               for index in range(len(rules))}
    rule_set = RuleSet(rules, link_of, replays[FORWARD], replays.get(REVERSE) if reverse else None)
    return rule_set, list(replays.values())


def _shown_words(preset_name: str | None, netem_words, spec: NetemSpec) -> str:
    shown = " ".join(spec.words) or "(no impairment)"
    if preset_name:
        shown = f"preset {preset_name}: {shown}"
    equivalent = netem_equivalent(spec)
    return f"{shown} (= {equivalent})" if equivalent else shown


async def _run(serve, named_links, duration, announce, early: list[int]) -> str:
    """Run until the duration ends or a signal arrives (`early`: signals that came during
    set-up); returns why it stopped. "listening" is announced once the signals are watched."""
    outcome = "finished"
    async with trio.open_nursery() as nursery:

        async def watch_signals(task_status=trio.TASK_STATUS_IGNORED) -> None:
            nonlocal outcome
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                task_status.started()
                async for signum in signals:
                    outcome = "interrupted" if signum == signal.SIGINT else "terminated"
                    nursery.cancel_scope.cancel()

        await nursery.start(watch_signals)
        if early:
            outcome = "interrupted" if early[0] == signal.SIGINT else "terminated"
            nursery.cancel_scope.cancel()
            return outcome
        await nursery.start(serve)
        announce()
        if sys.stderr.isatty():
            nursery.start_soon(_live_status, named_links)
        if duration is not None:
            await trio.sleep(duration)
            nursery.cancel_scope.cancel()
    return outcome


async def _live_status(named_links) -> None:
    """A one-line status on the terminal, refreshed a few times a second."""
    from rich.console import Console
    from rich.live import Live

    def line() -> str:
        parts = []
        for name, current in named_links:
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


def _write_stats(path, netem_words, seed, listen, forward_texts, rules, named_links, stats) -> None:
    import numpy
    import scapy

    links = dict(named_links)
    document = {
        "configuration": {
            "netem": list(netem_words), "seed": seed, "listen": listen,
            "forward": forward_texts[0] if len(forward_texts) == 1 else list(forward_texts),
            "rules": [rule.text for rule in rules], "reverse": REVERSE in links, "limit": links[FORWARD].spec.limit,
        },
        "forward": links[FORWARD].counters.as_dict(),
        "reverse": links[REVERSE].counters.as_dict() if REVERSE in links else None,
        "links": {name: each.counters.as_dict() for name, each in named_links},
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
