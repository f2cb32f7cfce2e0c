"""Per-flow rules: which impairment a flow through the proxy gets, like tc filters in front of netem classes.

A rule is `MATCH: NETEM WORDS` (`netsem emulate --rule`, repeatable), e.g.

    dport 5000: loss 5%                  flows to a target on port 5000
    src 10.0.0.0/8 sport 4000-4999: delay 20ms
    reverse dport 6000: delay 5ms        replies from the target on port 6000 only
    default: delay 20ms                  everything no rule above takes (= the words after --)

The proxy forwards client -> target; a flow is one client (its source address) towards one
target (a `--forward`). MATCH terms, all of which must hold: `sport PORT[-PORT]` and `src
ADDR[/PREFIX]` name the client, `dport PORT[-PORT]` and `dst ADDR[/PREFIX]` the target; they
name the same ends in both directions (a reply's source is the target). `forward` or
`reverse` restricts a rule to one direction; without either a rule impairs the forward
direction, and replies too when the proxy impairs replies (`--reverse`). `default` matches
everything and stands alone. The first rule that matches a flow and direction wins.

Each rule is its own netem instance: its own queue and limit, shared by every flow it
matches (as a tc class is), and its own random streams (`rule N/forward`, `rule N/reverse`),
so adding a rule never shifts the draws of another.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from emulator.grammar import NetemSpec, NetemSpecError, parse_netem

Address = tuple[str, int]
FORWARD, REVERSE = "forward", "reverse"
DEFAULT = "default"
# The match ends at the first ':' followed by a space or the end (IPv6 addresses have no ': ').
_SEPARATOR = re.compile(r":(?=\s|$)")


class RuleError(ValueError):
    """A rule that cannot be used; the message names the word."""


@dataclass(frozen=True)
class FlowRule:
    """One parsed `--rule`: what it matches and the netem spec it applies."""

    text: str
    spec: NetemSpec = field(repr=False)
    sports: tuple[int, int] | None = None
    dports: tuple[int, int] | None = None
    src: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    direction: str | None = None  # FORWARD, REVERSE or None (forward, and reverse with --reverse)
    default: bool = False

    def matches(self, client: Address, target: Address, direction: str) -> bool:
        if self.direction is not None and self.direction != direction:
            return False
        if self.default:
            return True
        return (_in_ports(self.sports, client[1]) and _in_ports(self.dports, target[1])
                and _in_network(self.src, client[0]) and _in_network(self.dst, target[0]))

    def applies_to(self, direction: str, reverse_too: bool) -> bool:
        """Whether the rule has a link in `direction` (replies: only if asked for)."""
        if self.direction is not None:
            return self.direction == direction
        return direction == FORWARD or reverse_too

    @property
    def match_text(self) -> str:
        return _SEPARATOR.split(self.text, maxsplit=1)[0].strip()


def _in_ports(ports: tuple[int, int] | None, port: int) -> bool:
    return ports is None or ports[0] <= port <= ports[1]


def _in_network(network, host: str) -> bool:
    if network is None:
        return True
    address = ipaddress.ip_address(host.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address in network


def parse_rule(text: str) -> FlowRule:
    """`MATCH: NETEM WORDS` -> FlowRule; RuleError naming the problem."""
    parts = _SEPARATOR.split(text, maxsplit=1)
    if len(parts) != 2:
        raise RuleError(f"rule {text!r} needs 'MATCH: NETEM WORDS' (e.g. 'dport 5000: loss 5%')")
    match_words, netem_words = parts[0].split(), parts[1].split()
    try:
        spec = parse_netem(netem_words)
    except NetemSpecError as error:
        raise RuleError(f"rule {text!r}: {error}") from None
    values: dict = {}
    words = iter(match_words)
    for word in words:
        if word in (FORWARD, REVERSE):
            _set_once(values, "direction", word, text)
        elif word == DEFAULT:
            _set_once(values, "default", True, text)
        elif word in ("sport", "dport"):
            _set_once(values, word + "s", _ports(next(words, None), word, text), text)
        elif word in ("src", "dst"):
            _set_once(values, word, _network(next(words, None), word, text), text)
        else:
            raise RuleError(f"rule {text!r}: unknown match word {word!r} "
                            "(sport, dport, src, dst, forward, reverse, default)")
    if not match_words:
        raise RuleError(f"rule {text!r} matches nothing: give match words or 'default'")
    if values.get("default") and set(values) - {"default", "direction"}:
        raise RuleError(f"rule {text!r}: 'default' matches everything and takes no other match words")
    return FlowRule(text, spec, **values)


def _set_once(values: dict, key: str, value, text: str) -> None:
    if key in values:
        raise RuleError(f"rule {text!r}: {key.rstrip('s')} given twice")
    values[key] = value


def _ports(word: str | None, name: str, text: str) -> tuple[int, int]:
    low, _, high = (word or "").partition("-")
    high = high or low
    if not (low.isdigit() and high.isdigit() and int(low) <= int(high) <= 65535):
        raise RuleError(f"rule {text!r}: {name} needs PORT or PORT-PORT (0..65535), not {word!r}")
    return int(low), int(high)


def _network(word: str | None, name: str, text: str):
    try:
        return ipaddress.ip_network((word or "").strip(), strict=False)
    except ValueError:
        raise RuleError(f"rule {text!r}: {name} needs ADDR or ADDR/PREFIX, not {word!r}") from None


def link_name(index: int | None, direction: str) -> str:
    """The name (and random stream) of a rule's link: 'forward'/'reverse' for the default."""
    return direction if index is None else f"rule {index}/{direction}"


class RuleSet:
    """Rules and their links in order, and the default links for flows no rule takes.

    `links` maps each rule index to its (forward link or None, reverse link or None); the
    links are built by the caller (who knows the seed, stages and loss models).
    """

    def __init__(self, rules: Sequence[FlowRule], links: dict[int, tuple[object | None, object | None]],
                 default_forward, default_reverse=None) -> None:
        self.rules = list(rules)
        self._links = links
        self.default_forward = default_forward
        self.default_reverse = default_reverse

    def forward_link(self, client: Address, target: Address):
        return self._select(client, target, FORWARD, 0) or self.default_forward

    def reverse_link(self, client: Address, target: Address):
        return self._select(client, target, REVERSE, 1) or self.default_reverse

    def _select(self, client: Address, target: Address, direction: str, which: int):
        for index, rule in enumerate(self.rules):
            link = self._links[index][which]
            if link is not None and rule.matches(client, target, direction):
                return link
        return None

    def named_links(self) -> list[tuple[str, object]]:
        """Every link with its name: the defaults first, then each rule's."""
        named = [(FORWARD, self.default_forward)]
        if self.default_reverse is not None:
            named.append((REVERSE, self.default_reverse))
        for index in range(len(self.rules)):
            for which, direction in ((0, FORWARD), (1, REVERSE)):
                link = self._links[index][which]
                if link is not None:
                    named.append((link_name(index, direction), link))
        return named
