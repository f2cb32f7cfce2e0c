"""Parse the words after `netem` in `tc qdisc ... netem ...` into a `NetemSpec`.

The rules are tc's (`netem_parse_opt` in iproute2 `tc/q_netem.c`): keywords match by prefix
in tc's order (`d` is delay, `du` duplicate, `r` reorder, `ra` rate), optional numbers are
taken only when the next word starts with a digit, bare percentages are percent ("loss 0.1"
is 0.1 %), a bare time is nanoseconds, and the defaults are tc's (limit 1000, loss-model
extras as in §2 of NETEM.md). The checks tc makes after parsing (reorder needs a delay, gap
needs reorder, ecn needs a loss model, distribution needs delay and jitter) are made too.
Every number must also fit the kernel field it lands in (`emulator.units` says how), so
any string gives either a `NetemSpec` or one `NetemSpecError` naming the word and the field.

netsem extensions (tc rejects every one of them; each must be spelt out in full, and the
spec lists those used in `extensions`):

- `correct` right after a `loss random`, `duplicate`, `corrupt` or `reorder` probability (and
  its optional correlation): a correctly correlated two-state Markov generator instead of
  netem's smoothed-uniform approximation (see `emulator.correlation`);
- `loss burst MEAN_LOSS MEAN_BURST`: loss as people describe it, a mean loss rate and a mean
  burst length in packets, turned into the Gilbert-Elliott model `loss gemodel p r 100% 0%`
  with r = 1 / MEAN_BURST and p = r MEAN_LOSS / (1 - MEAN_LOSS) (`emulator.burst`);
- after a `corrupt` probability: `payload` (the default: one bit of the UDP payload flips and
  the datagram is delivered), `frame` (netem's own choice of bit, anywhere in the Ethernet +
  IP + UDP frame: a bit in the headers makes the receiver's stack discard the datagram, a bit
  in the payload is delivered) or `frame-checksum` (as `frame`, but the receiver verifies the
  UDP checksum, so every corrupted datagram is discarded);
- `in-order`: jitter never reorders (a packet whose delay would overtake waits for the one
  before it), where netem reorders whenever jitter is given without `rate`;
- `link-trace FILE [once] [stretch F] [bytes N]`: a Mahimahi trace as the rate, and
  `packet-trace FILE [once] [stretch F]`: per-packet loss and delay (`emulator.traces`);
- `distribution uniform` when no `uniform.dist` file exists (tc refuses it then): netem's
  built-in uniform jitter, the same as leaving `distribution` out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emulator import burst, distributions, traces, units

CORRECT_WORD = "correct"
CORRUPT_MODES = ("payload", "frame", "frame-checksum")
IN_ORDER_WORD = "in-order"
LINK_TRACE_WORD = "link-trace"
PACKET_TRACE_WORD = "packet-trace"
BURST_WORD = "burst"
# netsem's own keywords, matched exactly (never by prefix) before tc's.
EXTENSION_KEYWORDS = (IN_ORDER_WORD, LINK_TRACE_WORD, PACKET_TRACE_WORD)

# A distribution name becomes the file NAME.dist, and a file name has at most 255 characters.
MAX_DISTRIBUTION_NAME = 255 - len(".dist")
# Messages show this much of a word, so that a hostile word cannot make them long.
_SHOWN_LENGTH = 40

USAGE = (
    "usage: [limit PACKETS] [delay TIME [JITTER [CORRELATION]]] "
    "[distribution {uniform|normal|pareto|paretonormal}] "
    "[loss {random PERCENT [CORRELATION] [correct] | state P13 [P31 [P32 [P23 [P14]]]] "
    "| gemodel PERCENT [R [1-H [1-K]]] | burst MEAN_LOSS MEAN_BURST}] [ecn] "
    "[corrupt PERCENT [CORRELATION] [correct] [payload|frame|frame-checksum]] "
    "[duplicate PERCENT [CORRELATION] [correct]] [reorder PERCENT [CORRELATION] [correct] [gap DISTANCE]] "
    "[rate RATE [PACKETOVERHEAD [CELLSIZE [CELLOVERHEAD]]]] "
    "[slot {MIN_DELAY [MAX_DELAY] | distribution NAME DELAY JITTER} [packets N] [bytes B]] [seed N] "
    "[in-order] [link-trace FILE [once] [stretch F] [bytes N]] [packet-trace FILE [once] [stretch F]]"
)

# (keyword, what it means): tc tests them in this order with matches(), i.e. a word that is a
# prefix of the keyword selects it.
KEYWORDS = (
    ("limit", "limit"), ("latency", "delay"), ("delay", "delay"), ("loss", "loss"),
    ("drop", "loss"), ("seed", "seed"), ("ecn", "ecn"), ("reorder", "reorder"),
    ("corrupt", "corrupt"), ("gap", "gap"), ("duplicate", "duplicate"),
    ("distribution", "distribution"), ("rate", "rate"), ("slot", "slot"),
)


class NetemSpecError(ValueError):
    """A netem spec that tc would reject; the message names the offending word."""


@dataclass(frozen=True)
class CorrelatedProbability:
    """A per-packet event probability with netem's correlation (fractions in [0, 1])."""

    probability: float
    correlation: float = 0.0
    correct: bool = False  # netsem extension: exact two-state Markov correlation


@dataclass(frozen=True)
class RandomLoss:
    """`loss random P [C]`: Bernoulli, or correlated as netem (or exactly, with `correct`)."""

    probability: float
    correlation: float = 0.0
    correct: bool = False


@dataclass(frozen=True)
class FourStateLoss:
    """`loss state p13 [p31 [p32 [p23 [p14]]]]` with tc's defaults for omitted values."""

    p13: float
    p31: float
    p32: float = 0.0
    p23: float = 1.0
    p14: float = 0.0


@dataclass(frozen=True)
class GilbertElliottLoss:
    """`loss gemodel p [r [1-h [1-k]]]`: 1-h is the loss probability in Bad, 1-k in Good."""

    p: float
    r: float
    one_minus_h: float = 1.0
    one_minus_k: float = 0.0


LossSpec = RandomLoss | FourStateLoss | GilbertElliottLoss


@dataclass(frozen=True)
class RateSpec:
    """`rate RATE [PACKETOVERHEAD [CELLSIZE [CELLOVERHEAD]]]`, the rate in bytes/s as the kernel gets it."""

    bytes_per_s: int
    packet_overhead: int = 0
    cell_size: int = 0
    cell_overhead: int = 0


@dataclass(frozen=True)
class SlotSpec:
    """`slot MIN [MAX]` or `slot distribution NAME DELAY JITTER`, plus packets/bytes per slot (0 = unlimited)."""

    min_delay_ns: int = 0
    max_delay_ns: int = 0
    distribution_table: tuple[int, ...] | None = field(default=None, repr=False)
    dist_delay_ns: int = 0
    dist_jitter_ns: int = 0
    max_packets: int = 0
    max_bytes: int = 0


@dataclass(frozen=True)
class NetemSpec:
    """Everything a `tc qdisc ... netem` line configures, in tc's units and defaults."""

    limit: int = 1000
    latency_ns: int = 0
    jitter_ns: int = 0
    delay_correlation: float = 0.0
    distribution: str | None = None
    distribution_table: tuple[int, ...] | None = field(default=None, repr=False)
    loss: LossSpec | None = None
    duplicate: CorrelatedProbability | None = None
    corrupt: CorrelatedProbability | None = None
    reorder: CorrelatedProbability | None = None
    gap: int = 0
    rate: RateSpec | None = None
    slot: SlotSpec | None = None
    ecn: bool = False
    seed: int | None = None
    corrupt_mode: str = "payload"  # netsem extension: payload | frame | frame-checksum
    in_order: bool = False  # netsem extension: jitter never reorders
    link_trace: traces.LinkTrace | None = None  # netsem extension: a Mahimahi trace in place of `rate`
    packet_trace: traces.PacketTrace | None = None  # netsem extension: per-packet loss and delay
    loss_burst: tuple[float, float] | None = field(default=None, compare=False)  # `loss burst L B` as asked
    words: tuple[str, ...] = ()
    # the netsem extensions the words use (tc would refuse them); derived, so not compared
    extensions: tuple[str, ...] = field(default=(), compare=False)
    notes: tuple[str, ...] = field(default=())  # things the user should know (printed by the CLI)


class _Words:
    """A cursor over the words with tc's NEXT_ARG / NEXT_IS_NUMBER helpers."""

    def __init__(self, words: list[str]) -> None:
        self.words = words
        self.index = 0

    def current(self) -> str:
        return self.words[self.index]

    def take(self, what: str) -> str:
        """Advance to the next word, which must exist (tc's NEXT_ARG)."""
        self.index += 1
        if self.index >= len(self.words):
            raise NetemSpecError(f"'{_shown(self.words[self.index - 1])}' needs a value: {what} is missing")
        return self.words[self.index]

    def peek(self) -> str | None:
        return self.words[self.index + 1] if self.index + 1 < len(self.words) else None

    def next_is_number(self, *, signed: bool = False) -> bool:
        word = self.peek()
        if word is None:
            return False
        return units.starts_with_digit(word) or (signed and word.startswith("-"))

    def next_is_word(self, word: str) -> bool:
        return self.peek() == word


def _shown(word: str) -> str:
    """`word` for a one-line message: control characters escaped, a long word cut to its start."""
    text = word if word.isprintable() else repr(word)[1:-1]
    if len(text) > _SHOWN_LENGTH:
        return f"{text[:_SHOWN_LENGTH]}... ({len(word)} characters)"
    return text


def _convert(parser, word: str, field_name: str, **kwargs):
    try:
        return parser(word, **kwargs)
    except ValueError as error:
        raise NetemSpecError(f"Illegal \"{field_name}\": '{_shown(word)}' ({error})") from None


def _keyword(word: str) -> str | None:
    if not word:
        return None
    if word in EXTENSION_KEYWORDS:
        return word
    for name, canonical in KEYWORDS:
        if name.startswith(word):
            return canonical
    return None


def parse_netem(words: list[str] | tuple[str, ...] | str) -> NetemSpec:
    """Parse netem words (a list, or one string split on whitespace) into a `NetemSpec`.

    Raises `NetemSpecError` with one message naming the offending word.
    """
    word_list = words.split() if isinstance(words, str) else list(words)
    cursor = _Words(word_list)
    values: dict = {"words": tuple(word_list)}
    correlation_sent = False  # tc's present[TCA_NETEM_CORR]
    duplicate_correlation = 0.0
    notes: list[str] = []
    extensions: list[str] = []

    def probability(field_name: str) -> CorrelatedProbability:
        nonlocal correlation_sent
        value = _convert(units.parse_percent, cursor.take(f"the {field_name} percentage"), field_name)
        correlation = 0.0
        if cursor.next_is_number():
            correlation = _convert(units.parse_percent, cursor.take("a correlation"), f"{field_name} correlation")
            if field_name != "duplicate":  # tc bug: duplicate never sets present[TCA_NETEM_CORR]
                correlation_sent = True
        correct = cursor.next_is_word(CORRECT_WORD)
        if correct:
            cursor.take(CORRECT_WORD)
            extensions.append(f"{field_name} ... correct")
        return CorrelatedProbability(value, correlation, correct)

    while cursor.index < len(word_list):
        word = cursor.current()
        keyword = _keyword(word)
        if keyword == "limit":
            values["limit"] = _convert(units.parse_size, cursor.take("the packet limit"), "limit")
        elif keyword == "delay":
            values["latency_ns"] = _convert(units.parse_time_ns, cursor.take("the delay"), "latency")
            if cursor.next_is_number():
                values["jitter_ns"] = _convert(units.parse_time_ns, cursor.take("the jitter"), "latency")
                if cursor.next_is_number():
                    values["delay_correlation"] = _convert(units.parse_percent, cursor.take("a correlation"), "latency")
                    correlation_sent = True
        elif keyword == "loss":
            previous = values.get("loss")
            # tc's test: a second loss is refused only after a loss above 0 or a loss model
            if previous is not None and not (isinstance(previous, RandomLoss) and previous.probability == 0):
                raise NetemSpecError(f'Illegal "duplicate loss argument": a second {word!r}')
            loss, sent = _parse_loss(cursor, extensions)
            if isinstance(loss, RandomLoss) and isinstance(previous, RandomLoss) and not sent:
                loss = RandomLoss(loss.probability, previous.correlation, loss.correct)  # tc keeps cor.loss_corr
            if isinstance(loss, BurstLoss):
                values["loss_burst"] = (loss.mean_loss, loss.mean_burst)
                loss = loss.model
            values["loss"] = loss
            correlation_sent |= sent
        elif keyword == "seed":
            values["seed"] = _convert(
                units.parse_c_integer, cursor.take("the seed"), "seed", low=0, high=units.U64_MAX, base=10
            )
        elif keyword == "ecn":
            values["ecn"] = True
        elif keyword == "reorder":
            values["reorder"] = probability("reorder")
        elif keyword == "corrupt":
            values["corrupt"] = probability("corrupt")
            if cursor.peek() in CORRUPT_MODES:
                values["corrupt_mode"] = cursor.take("the corruption mode")
                extensions.append(f"corrupt ... {values['corrupt_mode']}")
        elif keyword == "duplicate":
            values["duplicate"] = probability("duplicate")
            duplicate_correlation = values["duplicate"].correlation
        elif keyword == "gap":
            values["gap"] = _convert(units.parse_c_integer, cursor.take("the gap"), "gap", low=0, high=units.U32_MAX)
        elif keyword == "distribution":
            name = cursor.take("the distribution name")
            values["distribution"] = name
            values["distribution_table"] = _distribution_table(name, "distribution", extensions)
        elif keyword == "rate":
            values["rate"] = _parse_rate(cursor)
        elif keyword == "slot":
            values["slot"] = _parse_slot(cursor, extensions)
        elif keyword == IN_ORDER_WORD:
            values["in_order"] = True
            extensions.append(IN_ORDER_WORD)
        elif keyword == LINK_TRACE_WORD:
            values["link_trace"] = _parse_trace(cursor, LINK_TRACE_WORD)
            extensions.append(LINK_TRACE_WORD)
        elif keyword == PACKET_TRACE_WORD:
            values["packet_trace"] = _parse_trace(cursor, PACKET_TRACE_WORD)
            extensions.append(PACKET_TRACE_WORD)
        else:
            raise NetemSpecError(
                f'What is "{_shown(word)}"? It is not a netem option (options: limit delay distribution loss ecn '
                "corrupt duplicate reorder gap rate slot seed; netsem's: in-order link-trace packet-trace)"
            )
        cursor.index += 1

    _check_combinations(values)
    duplicate = values.get("duplicate")
    if duplicate is not None and duplicate_correlation and not duplicate.correct and not correlation_sent:
        values["duplicate"] = CorrelatedProbability(duplicate.probability, 0.0, False)
        notes.append(
            "duplicate correlation is ignored, as tc does: tc sends it only together with another "
            "correlation (delay, loss, corrupt or reorder); add 'correct' to apply it exactly"
        )
    if values.get("ecn"):
        notes.append(
            "ecn has no effect here: UDP payloads carry no ECN bits, so every packet is Not-ECT and "
            "every loss event drops it, as netem does for Not-ECT packets"
        )
    jitter_source = values.get("jitter_ns", 0) or values.get("packet_trace") is not None
    if jitter_source and values.get("rate") is None and values.get("link_trace") is None and not values.get("in_order"):
        notes.append("delays that vary reorder packets, as in netem without 'rate' (add 'in-order' to keep their order)")
    if extensions:
        notes.append(f"netsem extensions (tc would refuse them): {', '.join(dict.fromkeys(extensions))}")
    values["extensions"] = tuple(dict.fromkeys(extensions))
    values["notes"] = tuple(notes)
    return NetemSpec(**values)


def _distribution_table(name: str, field_name: str, extensions: list[str]) -> tuple[int, ...] | None:
    if len(name) > MAX_DISTRIBUTION_NAME:
        raise NetemSpecError(
            f"No distribution data for '{_shown(name)}': a name has at most {MAX_DISTRIBUTION_NAME} characters"
        )
    if name == distributions.UNIFORM and not distributions.table_file(name).exists():
        extensions.append(f"{field_name} uniform")
    return _convert(distributions.load_table, name, field_name)


@dataclass(frozen=True)
class BurstLoss:
    """`loss burst L B` while parsing: what was asked and the model it becomes."""

    mean_loss: float
    mean_burst: float
    model: GilbertElliottLoss


def _parse_loss(cursor: _Words, extensions: list[str]) -> tuple[LossSpec | BurstLoss, bool]:
    """The words after `loss`/`drop`; returns the model and whether a correlation was sent."""
    word = cursor.take("the loss model or percentage")
    if units.starts_with_digit(word) or word == "random":
        if word == "random":
            word = cursor.take("the loss percentage")
        probability = _convert(units.parse_percent, word, "loss percent")
        correlation, sent = 0.0, False
        if cursor.next_is_number():
            correlation = _convert(units.parse_percent, cursor.take("a correlation"), "loss correlation")
            sent = True
        correct = cursor.next_is_word(CORRECT_WORD)
        if correct:
            cursor.take(CORRECT_WORD)
            extensions.append("loss ... correct")
        return RandomLoss(probability, correlation, correct), sent
    if word == "state":
        p13 = _convert(units.parse_percent, cursor.take("p13"), "loss p13")
        extras = _optional_percentages(cursor, ("loss p31", "loss p32", "loss p23", "loss p14"))
        defaults = [1.0 - p13, 0.0, 1.0, 0.0]
        p31, p32, p23, p14 = extras + defaults[len(extras):]
        return FourStateLoss(p13, p31, p32, p23, p14), False
    if word == "gemodel":
        p = _convert(units.parse_percent, cursor.take("p"), "loss gemodel p")
        extras = _optional_percentages(cursor, ("loss gemodel r", "loss gemodel h", "loss gemodel k"))
        defaults = [1.0 - p, 1.0, 0.0]
        r, one_minus_h, one_minus_k = extras + defaults[len(extras):]
        return GilbertElliottLoss(p, r, one_minus_h, one_minus_k), False
    if word == BURST_WORD:
        mean_loss = _convert(units.parse_percent, cursor.take("the mean loss"), "loss burst mean loss")
        length_word = cursor.take("the mean burst length in packets")
        mean_burst = _convert(units.parse_positive_decimal, length_word, "loss burst mean length")
        try:
            p, r = burst.gilbert_parameters(mean_loss, mean_burst)
        except ValueError as error:
            raise NetemSpecError(f"Illegal \"loss burst\": {error}") from None
        extensions.append("loss burst")
        return BurstLoss(mean_loss, mean_burst, GilbertElliottLoss(p, r, 1.0, 0.0)), False
    raise NetemSpecError(
        f"Unknown loss parameter: '{_shown(word)}' (expected random, state, gemodel, burst or a percentage)"
    )


def _optional_percentages(cursor: _Words, field_names: tuple[str, ...]) -> list[float]:
    taken = []
    for field_name in field_names:
        if not cursor.next_is_number():
            break
        taken.append(_convert(units.parse_percent, cursor.take(field_name), field_name))
    return taken


def _parse_rate(cursor: _Words) -> RateSpec:
    """tc's three optional numbers are independent: each is taken when the next word fits it
    (the overheads may start with '-'), so `rate 1mbit 20 -5` is an overhead and a cell overhead."""
    rate = _convert(units.parse_rate_bytes_per_s, cursor.take("the rate"), "rate")
    packet_overhead = cell_size = cell_overhead = 0
    s32 = {"low": units.S32_MIN, "high": units.S32_MAX}
    if cursor.next_is_number(signed=True):
        packet_overhead = _convert(units.parse_c_integer, cursor.take("packet overhead"), "rate", **s32)
    if cursor.next_is_number():
        cell_size = _convert(units.parse_c_integer, cursor.take("cell size"), "rate", low=0, high=units.U32_MAX)
    if cursor.next_is_number(signed=True):
        cell_overhead = _convert(units.parse_c_integer, cursor.take("cell overhead"), "rate", **s32)
    return RateSpec(rate, packet_overhead, cell_size, cell_overhead)


def _parse_slot(cursor: _Words, extensions: list[str]) -> SlotSpec:
    values: dict = {}
    if cursor.next_is_number():
        values["min_delay_ns"] = _convert(units.parse_time_ns, cursor.take("min delay"), "slot min_delay")
        values["max_delay_ns"] = values["min_delay_ns"]
        if cursor.next_is_number():
            word = cursor.take("max delay")
            values["max_delay_ns"] = _convert(units.parse_time_ns, word, "slot max_delay")
            if values["max_delay_ns"] < values["min_delay_ns"]:
                raise NetemSpecError(f"Illegal \"slot max_delay\": '{_shown(word)}' is below the minimum delay")
    else:
        word = cursor.take("slot delays or 'distribution'")
        if word != "distribution":
            raise NetemSpecError(f"Unknown slot parameter: '{_shown(word)}'")
        name = cursor.take("the slot distribution name")
        values["distribution_table"] = _distribution_table(name, "slot distribution", extensions)
        values["dist_delay_ns"] = _convert(units.parse_time_ns, cursor.take("slot delay"), "slot delay")
        word = cursor.take("slot jitter")
        values["dist_jitter_ns"] = _convert(units.parse_time_ns, word, "slot jitter")
        if values["dist_jitter_ns"] <= 0:
            raise NetemSpecError(f"Non-positive jitter: slot jitter '{_shown(word)}' must be above 0")
    peek = cursor.peek()
    if peek and "packets".startswith(peek):
        cursor.take("packets")
        values["max_packets"] = _convert(
            units.parse_c_integer, cursor.take("the packet count"), "slot packets", low=units.S32_MIN, high=units.S32_MAX
        )
    peek = cursor.peek()
    if peek and "bytes".startswith(peek):
        cursor.take("bytes")
        word = cursor.take("the byte count")
        values["max_bytes"] = _convert(units.parse_size, word, "slot bytes")
        if values["max_bytes"] > units.S32_MAX:  # tc casts it to the kernel's s32, which would wrap
            raise NetemSpecError(
                f"Illegal \"slot bytes\": '{_shown(word)}' (above {units.S32_MAX}, the most netem's s32 holds)"
            )
    return SlotSpec(**values)


def _parse_trace(cursor: _Words, keyword: str) -> traces.LinkTrace | traces.PacketTrace:
    """`link-trace FILE [once] [stretch F] [bytes N]` or `packet-trace FILE [once] [stretch F]`."""
    path = cursor.take("the trace file")
    options: dict = {}
    allowed = ("once", "stretch", "bytes") if keyword == LINK_TRACE_WORD else ("once", "stretch")
    while cursor.peek() in allowed and cursor.peek() not in options:
        option = cursor.take(cursor.peek())
        if option == "once":
            options["once"] = True
        elif option == "stretch":
            options["stretch"] = _convert(units.parse_positive_decimal, cursor.take("the stretch factor"),
                                          f"{keyword} stretch")
        else:
            options["bytes"] = _convert(units.parse_c_integer, cursor.take("the bytes per opportunity"),
                                        f"{keyword} bytes", low=1, high=units.S32_MAX)
    loop, stretch = not options.get("once", False), options.get("stretch", 1.0)
    try:
        if keyword == LINK_TRACE_WORD:
            return traces.read_link_trace(path, loop=loop, stretch=stretch,
                                          bytes_per_opportunity=options.get("bytes", traces.MTU_BYTES))
        return traces.read_packet_trace(path, loop=loop, stretch=stretch)
    except traces.TraceError as error:
        raise NetemSpecError(f"{keyword}: {error}") from None


def _loss_model_given(loss: LossSpec | None) -> bool:
    """tc's `opt.loss > 0 || loss_type != NETEM_LOSS_UNSPEC`."""
    return loss is not None and not (isinstance(loss, RandomLoss) and loss.probability == 0)


def _check_combinations(values: dict) -> None:
    """tc's checks after the loop, with its messages, then those of netsem's extensions."""
    packet_trace = values.get("packet_trace")
    reorder = values.get("reorder")
    if reorder is not None and reorder.probability > 0:
        if packet_trace is not None:
            raise NetemSpecError("'reorder' and 'packet-trace' do not combine: the trace's delays decide the order")
        if values.get("latency_ns", 0) == 0:
            raise NetemSpecError("reordering not possible without specifying some delay: 'reorder' needs 'delay TIME'")
        if values.get("gap", 0) == 0:
            values["gap"] = 1
    elif values.get("gap", 0) > 0:
        raise NetemSpecError("gap specified without reorder probability: 'gap' needs 'reorder PERCENT'")
    if values.get("ecn") and not _loss_model_given(values.get("loss")):
        raise NetemSpecError("ecn requested without loss model: 'ecn' needs 'loss ...' above 0%")
    if "distribution" in values and (values.get("latency_ns", 0) == 0 or values.get("jitter_ns", 0) == 0):
        raise NetemSpecError(
            f"distribution specified but no latency and jitter values: 'distribution {values['distribution']}' "
            "needs 'delay TIME JITTER'"
        )
    if values.get("link_trace") is not None and values.get("rate") is not None:
        raise NetemSpecError("'link-trace' and 'rate' do not combine: the trace is the link's rate")
    if packet_trace is not None:
        for keyword, present in (("loss", "loss" in values), ("delay", "latency_ns" in values or "jitter_ns" in values)):
            if present:
                raise NetemSpecError(f"'{keyword}' and 'packet-trace' do not combine: the trace gives each packet's "
                                     "loss and delay")
