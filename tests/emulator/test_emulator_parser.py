"""The netem grammar: every keyword, tc's units and defaults, and every error path."""

from __future__ import annotations

import pytest

from emulator.grammar import (
    CorrelatedProbability,
    FourStateLoss,
    GilbertElliottLoss,
    NetemSpecError,
    RandomLoss,
    RateSpec,
    parse_netem,
)
from emulator import units


def test_empty_spec_has_tc_defaults():
    spec = parse_netem([])
    assert spec.limit == 1000
    assert (spec.latency_ns, spec.jitter_ns, spec.loss, spec.rate, spec.slot) == (0, 0, None, None, None)


@pytest.mark.parametrize(
    "word, ns",
    [("1s", 10**9), ("2sec", 2 * 10**9), ("1secs", 10**9), ("10ms", 10**7), ("3msec", 3 * 10**6),
     ("1msecs", 10**6), ("250us", 250_000), ("1usec", 1000), ("2usecs", 2000), ("7ns", 7), ("8nsec", 8),
     ("9nsecs", 9), ("100", 100), ("1.5ms", 1_500_000), ("1e3us", 1_000_000), ("10MS", 10**7)],
)
def test_time_units(word, ns):
    assert parse_netem(["delay", word]).latency_ns == ns


def test_delay_jitter_correlation_and_prefixes():
    spec = parse_netem("d 100ms 10ms 25%")
    assert (spec.latency_ns, spec.jitter_ns, spec.delay_correlation) == (100_000_000, 10_000_000, 0.25)
    assert parse_netem("latency 5ms").latency_ns == 5_000_000
    assert parse_netem("la 5ms").latency_ns == 5_000_000


def test_delay_percent_is_read_as_jitter_and_rejected_like_tc():
    with pytest.raises(NetemSpecError, match='Illegal "latency".*25%'):
        parse_netem("delay 100ms 25%")


@pytest.mark.parametrize("word", ["-5ms", "5parsecs", "ms", "nan", "inf"])
def test_bad_times(word):
    with pytest.raises(NetemSpecError, match="latency"):
        parse_netem(["delay", word])


def test_optional_numbers_need_a_leading_digit():
    with pytest.raises(NetemSpecError, match=r'What is "\.5ms"'):
        parse_netem("delay 10ms .5ms")


def test_limit_sizes():
    assert parse_netem("limit 50").limit == 50
    assert parse_netem("limit 1k").limit == 1024
    assert parse_netem("l 2kb").limit == 2048
    assert parse_netem("limit 0").limit == 0
    for bad in ("-1", "x", "10q", "1e20"):
        with pytest.raises(NetemSpecError, match='"limit"'):
            parse_netem(["limit", bad])


def test_loss_random_forms():
    assert parse_netem("loss 1%").loss == RandomLoss(0.01)
    assert parse_netem("loss 0.1").loss == RandomLoss(0.001)  # a bare number is percent
    assert parse_netem("loss random 5% 25%").loss == RandomLoss(0.05, 0.25)
    assert parse_netem("drop 5").loss == RandomLoss(0.05)
    assert parse_netem("loss random 10% 25% correct").loss == RandomLoss(0.10, 0.25, True)
    assert parse_netem("loss random 10% correct").loss == RandomLoss(0.10, 0.0, True)


@pytest.mark.parametrize("spec, field", [
    ("loss 110%", "loss percent"), ("loss random 5x", "loss percent"), ("loss 5% 101%", "loss correlation"),
])
def test_loss_random_errors(spec, field):
    with pytest.raises(NetemSpecError, match=f'Illegal "{field}"'):
        parse_netem(spec)


@pytest.mark.parametrize("word", ["-1%", ".5%", "foo", "Random"])
def test_unknown_loss_parameter(word):
    with pytest.raises(NetemSpecError, match=f"Unknown loss parameter: '{word}'"):
        parse_netem(["loss", word])


def test_second_loss_is_rejected():
    with pytest.raises(NetemSpecError, match="duplicate loss argument"):
        parse_netem("loss 1% drop 2%")


def test_loss_state_defaults_and_order():
    assert parse_netem("loss state 5%").loss == FourStateLoss(0.05, 0.95, 0.0, 1.0, 0.0)
    assert parse_netem("loss state 5% 30%").loss == FourStateLoss(0.05, 0.30, 0.0, 1.0, 0.0)
    # command-line order is p13 p31 p32 p23 p14
    assert parse_netem("loss state 5 30 10 20 1").loss == FourStateLoss(0.05, 0.30, 0.10, 0.20, 0.01)


@pytest.mark.parametrize("spec, field", [
    ("loss state x", "loss p13"), ("loss state 5 200", "loss p31"), ("loss state 5 3 200", "loss p32"),
    ("loss state 5 3 2 200", "loss p23"), ("loss state 5 3 2 1 200", "loss p14"),
])
def test_loss_state_errors(spec, field):
    with pytest.raises(NetemSpecError, match=f'Illegal "{field}"'):
        parse_netem(spec)


def test_loss_gemodel_defaults():
    assert parse_netem("loss gemodel 1%").loss == GilbertElliottLoss(0.01, 0.99, 1.0, 0.0)
    assert parse_netem("loss gemodel 1% 10%").loss == GilbertElliottLoss(0.01, 0.10, 1.0, 0.0)
    assert parse_netem("loss gemodel 1% 10% 70% 0.1%").loss == GilbertElliottLoss(0.01, 0.10, 0.70, 0.001)


@pytest.mark.parametrize("spec, field", [
    ("loss gemodel x", "loss gemodel p"), ("loss gemodel 1 200", "loss gemodel r"),
    ("loss gemodel 1 2 200", "loss gemodel h"), ("loss gemodel 1 2 3 200", "loss gemodel k"),
])
def test_loss_gemodel_errors(spec, field):
    with pytest.raises(NetemSpecError, match=f'Illegal "{field}"'):
        parse_netem(spec)


def test_missing_values_name_the_word():
    for spec in ("delay", "loss", "loss random", "loss state", "loss gemodel", "limit", "duplicate",
                 "corrupt", "reorder", "gap", "rate", "seed", "distribution", "slot", "slot distribution",
                 "slot distribution normal", "slot distribution normal 1ms", "slot 1ms packets"):
        with pytest.raises(NetemSpecError, match="needs a value"):
            parse_netem(spec)


def test_corrupt_duplicate_reorder_gap():
    spec = parse_netem("delay 10ms corrupt 1% 5% duplicate 2% 10% reorder 25% 50% gap 5")
    assert spec.corrupt == CorrelatedProbability(0.01, 0.05)
    assert spec.duplicate == CorrelatedProbability(0.02, 0.10)  # sent: another correlation is present
    assert spec.reorder == CorrelatedProbability(0.25, 0.50)
    assert spec.gap == 5
    assert parse_netem("delay 1ms r 10%").gap == 1  # tc sets gap 1 when reorder is given alone
    assert parse_netem("delay 1ms reorder 10% gap 0x10").gap == 16
    assert parse_netem("delay 1ms reorder 10% gap 010").gap == 8  # strtoul base 0: octal
    assert parse_netem("du 3% correct").duplicate == CorrelatedProbability(0.03, 0.0, True)
    assert parse_netem("c 3% 20% correct").corrupt == CorrelatedProbability(0.03, 0.20, True)


def test_duplicate_correlation_alone_is_dropped_like_tc():
    spec = parse_netem("duplicate 10% 50%")
    assert spec.duplicate == CorrelatedProbability(0.10, 0.0)
    assert any("duplicate correlation is ignored" in note for note in spec.notes)
    assert parse_netem("duplicate 10% 50% correct").duplicate == CorrelatedProbability(0.10, 0.50, True)


@pytest.mark.parametrize("spec, field", [
    ("corrupt 200%", "corrupt"), ("corrupt 1% 200%", "corrupt correlation"), ("duplicate x", "duplicate"),
    ("duplicate 1% 200", "duplicate correlation"), ("delay 1ms reorder -1", "reorder"),
    ("delay 1ms reorder 1 200", "reorder correlation"), ("delay 1ms reorder 1 gap -1", "gap"),
    ("delay 1ms reorder 1 gap x", "gap"), ("seed -3", "seed"), ("seed 1.5", "seed"),
])
def test_probability_errors(spec, field):
    with pytest.raises(NetemSpecError, match=f'Illegal "{field}"'):
        parse_netem(spec)


def test_combination_checks():
    with pytest.raises(NetemSpecError, match="reordering not possible without specifying some delay"):
        parse_netem("reorder 25%")
    with pytest.raises(NetemSpecError, match="gap specified without reorder probability"):
        parse_netem("gap 5 delay 10ms")  # the man page's own example, rejected by tc
    with pytest.raises(NetemSpecError, match="ecn requested without loss model"):
        parse_netem("ecn")
    with pytest.raises(NetemSpecError, match="distribution specified but no latency and jitter"):
        parse_netem("delay 10ms distribution normal")


def test_ecn_is_accepted_with_a_note():
    spec = parse_netem("loss 1% ecn")
    assert spec.ecn and any("UDP payloads carry no ECN bits" in note for note in spec.notes)


def test_distributions():
    for name in ("normal", "pareto", "paretonormal"):
        spec = parse_netem(f"delay 10ms 1ms distribution {name}")
        assert spec.distribution == name and len(spec.distribution_table) == 4096
    assert parse_netem("delay 10ms 1ms di uniform").distribution_table is None
    with pytest.raises(NetemSpecError, match="No distribution data for nosuch"):
        parse_netem("delay 10ms 1ms distribution nosuch")


def test_custom_distribution_file(tmp_path, monkeypatch):
    (tmp_path / "mine.dist").write_text("# comment\n\n-8192 0 8192\n0x10\n")
    monkeypatch.setenv("TC_LIB_DIR", str(tmp_path))
    assert parse_netem("delay 10ms 1ms distribution mine").distribution_table == (-8192, 0, 8192, 16)
    (tmp_path / "bad.dist").write_text("1 2 x\n")
    with pytest.raises(NetemSpecError, match="'x' is not an integer"):
        parse_netem("delay 10ms 1ms distribution bad")


@pytest.mark.parametrize("word, bytes_per_s", [
    ("1mbit", 125_000), ("1Mbit", 125_000), ("100kbit", 12_500), ("1gbit", 125_000_000), ("1tbit", 125 * 10**9),
    ("1kibit", 128), ("1mibit", 131_072), ("1gibit", 134_217_728), ("1tibit", 137_438_953_472), ("8bit", 1),
    ("1000", 125), ("1bps", 1), ("1kbps", 1000), ("1Mbps", 1_000_000), ("1gbps", 10**9), ("1tbps", 10**12),
    ("1KiBps", 1024), ("1MiBps", 1024**2), ("1GiBps", 1024**3), ("1TiBps", 1024**4),
])
def test_rate_units(word, bytes_per_s):
    assert parse_netem(["rate", word]).rate == RateSpec(bytes_per_s)


def test_rate_overheads():
    assert parse_netem("rate 1mbit 20").rate == RateSpec(125_000, 20)
    assert parse_netem("ra 1mbit -14 48 5").rate == RateSpec(125_000, -14, 48, 5)
    assert parse_netem("rate 1mbit 0x10 010 -3").rate == RateSpec(125_000, 16, 8, -3)


@pytest.mark.parametrize("word", ["1M", "1k", "fast", "-1mbit", "10%"])
def test_rate_errors(word):
    with pytest.raises(NetemSpecError, match='Illegal "rate"'):
        parse_netem(["rate", word])


def test_rate_bad_overhead():
    with pytest.raises(NetemSpecError, match='Illegal "rate"'):
        parse_netem("rate 1mbit 1x")


def test_slot_forms():
    slot = parse_netem("slot 1ms 5ms packets 10 bytes 1k").slot
    assert (slot.min_delay_ns, slot.max_delay_ns, slot.max_packets, slot.max_bytes) == (10**6, 5 * 10**6, 10, 1024)
    assert parse_netem("slot 2ms").slot.max_delay_ns == 2 * 10**6
    slot = parse_netem("slot distribution normal 10ms 2ms p 3").slot
    assert (slot.dist_delay_ns, slot.dist_jitter_ns, slot.max_packets) == (10**7, 2 * 10**6, 3)
    assert len(slot.distribution_table) == 4096


@pytest.mark.parametrize("spec, message", [
    ("slot 5ms 1ms", 'Illegal "slot max_delay"'), ("slot foo", "Unknown slot parameter: 'foo'"),
    ("slot distribution normal 10ms 0", "Non-positive jitter"), ("slot 1ms packets x", 'Illegal "slot packets"'),
    ("slot 1ms bytes x", 'Illegal "slot bytes"'), ("slot x1", "Unknown slot parameter"),
    ("slot distribution normal x 1ms", 'Illegal "slot delay"'), ("slot distribution normal 1ms x", 'Illegal "slot jitter"'),
    ("slot distribution nosuch 1ms 1ms", "No distribution data for nosuch"),
])
def test_slot_errors(spec, message):
    with pytest.raises(NetemSpecError, match=message):
        parse_netem(spec)


def test_seed():
    assert parse_netem("seed 42").seed == 42


@pytest.mark.parametrize("word", ["foo", "help", "h", "jitter", "correct", ""])
def test_unknown_words_are_named(word):
    with pytest.raises(NetemSpecError, match=f'What is "{word}"'):
        parse_netem(["delay", "1ms", word])


def test_every_error_is_one_line():
    for spec in ("foo", "delay 1ms 25%", "loss bar", "rate 1M", "reorder 1%", "slot 5ms 1ms"):
        with pytest.raises(NetemSpecError) as caught:
            parse_netem(spec)
        assert "\n" not in str(caught.value)


def test_percent_and_u32_helpers():
    assert units.probability_to_u32(1.0) == 0xFFFFFFFF
    assert units.probability_to_u32(0.5) == 2147483648  # rint(2147483647.5), half to even
    with pytest.raises(ValueError):
        units.parse_percent("5%%")


# Values that do not fit the kernel field they land in (issue "Hardening II", defect 9): each is
# refused with the field and the word named, instead of an OverflowError or a wrapped value.
@pytest.mark.parametrize("spec, field, word", [
    ("delay 1e400ms", "latency", "1e400ms"),  # strtod's inf
    ("delay 1e300s", "latency", "1e300s"),  # finite, inf once scaled to ns
    ("delay 9.3e18", "latency", "9.3e18"),  # finite, above s64 ns
    ("delay 1ms 1e400", "latency", "1e400"),
    ("slot 1e400", "slot min_delay", "1e400"),
    ("slot 1ms 1e400", "slot max_delay", "1e400"),
    ("slot distribution normal 1e400 1ms", "slot delay", "1e400"),
    ("slot distribution normal 1ms 1e400", "slot jitter", "1e400"),
    ("rate 1e400bit", "rate", "1e400bit"),
    ("rate 1e30bit", "rate", "1e30bit"),  # above tc's u64 of bytes/s
    ("limit 1e400", "limit", "1e400"),
    ("slot 1ms bytes 3g", "slot bytes", "3g"),  # tc casts to s32, which would wrap negative
    ("slot 1ms packets 2147483648", "slot packets", "2147483648"),
    ("seed 18446744073709551616", "seed", "18446744073709551616"),
    ("delay 1ms reorder 1 gap 4294967296", "gap", "4294967296"),
    ("rate 1mbit 2147483648", "rate", "2147483648"),
])
def test_values_beyond_their_field_are_refused(spec, field, word):
    with pytest.raises(NetemSpecError, match=f'Illegal "{field}"') as caught:
        parse_netem(spec)
    assert f"'{word}'" in str(caught.value)


def test_largest_values_of_each_field_are_accepted():
    assert parse_netem("delay 9e18ns").latency_ns == 9 * 10**18
    assert parse_netem("rate 1.4e20bit").rate.bytes_per_s == 17_500_000_000_000_000_000
    assert parse_netem("slot 1ms bytes 2147483647").slot.max_bytes == 2**31 - 1
    assert parse_netem("seed 18446744073709551615").seed == 2**64 - 1
    assert parse_netem("limit 4294967295").limit == 2**32 - 1


def test_seed_is_decimal_as_in_tc():
    assert parse_netem("seed 010").seed == 10  # get_u64(..., 10): no octal
    with pytest.raises(NetemSpecError, match='Illegal "seed"'):
        parse_netem("seed 0x10")


@pytest.mark.parametrize("word", ["1" * 101, "1" * 5000, "0x" + "f" * 20000, "9" * 4301 + "ms"])
def test_long_numbers_are_refused_at_once_in_one_short_line(word):
    for spec in (["delay", word], ["seed", word], ["delay", "1ms", "reorder", "1", "gap", word]):
        with pytest.raises(NetemSpecError, match=f"a number of {len(word)} characters") as caught:
            parse_netem(spec)
        message = str(caught.value)
        assert "\n" not in message and len(message) < 200 and "4300" not in message


@pytest.mark.parametrize("spec, message", [
    ("delay ١٢ms", 'Illegal "latency"'),  # C's strtod reads ASCII digits only
    ("delay 1ms ١٢", 'What is "١٢"'),  # NEXT_IS_NUMBER's isdigit() too
    ("delay 1ms ²", 'What is "²"'),
    ("loss ١٢%", "Unknown loss parameter"),
    ("limit １２", 'Illegal "limit"'),
])
def test_non_ascii_digits_are_not_numbers(spec, message):
    with pytest.raises(NetemSpecError, match=message):
        parse_netem(spec)


def test_minus_zero_is_zero():
    assert str(parse_netem("corrupt -0").corrupt.probability) == "0.0"
    assert parse_netem("delay -0ms").latency_ns == 0


def test_words_with_control_characters_give_one_line():
    for words in (["delay", "1ms", "a\nb"], ["loss", "x\ny"], ["delay", "1\n"], ["slot", "\r"]):
        with pytest.raises(NetemSpecError) as caught:
            parse_netem(words)
        assert "\n" not in str(caught.value) and "\r" not in str(caught.value)


def test_long_words_are_shown_cut_short():
    for words in (["x" * 10**6], ["delay", "1ms", "1ms", "distribution", "n" * 10**5], ["loss", "y" * 10**5]):
        with pytest.raises(NetemSpecError) as caught:
            parse_netem(words)
        assert len(str(caught.value)) < 300
