"""tc's parser rules issue 21 found missing, and netsem's extensions to the netem words."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.burst import percent_word
from emulator.grammar import (
    GilbertElliottLoss,
    NetemSpecError,
    RandomLoss,
    RateSpec,
    parse_netem,
)
from emulator.units import probability_to_u32


@pytest.mark.parametrize("words, rate", [
    ("rate 1mbit 20 -5", RateSpec(125_000, 20, 0, -5)),  # tc's optional numbers are independent
    ("rate 1mbit -5 -3", RateSpec(125_000, -5, 0, -3)),
    ("rate 1mbit 20 64 -5", RateSpec(125_000, 20, 64, -5)),
    ("rate 1mbit 20 64", RateSpec(125_000, 20, 64, 0)),
    ("rate 1mbit -14", RateSpec(125_000, -14, 0, 0)),
])
def test_rate_optional_numbers_are_independent(words, rate):
    assert parse_netem(words).rate == rate


def test_a_second_loss_after_loss_0_is_accepted_as_by_tc():
    assert parse_netem("loss 0% loss 5%").loss == RandomLoss(0.05)
    assert parse_netem("loss 0% 25% loss 5%").loss == RandomLoss(0.05, 0.25)  # tc keeps the correlation
    assert isinstance(parse_netem("loss 0% loss gemodel 1% 10%").loss, GilbertElliottLoss)
    for words in ("loss 5% loss 1%", "loss state 1% loss 2%", "loss gemodel 0% loss 1%", "loss burst 1% 2 loss 0%"):
        with pytest.raises(NetemSpecError, match="duplicate loss argument"):
            parse_netem(words)


def test_ecn_needs_a_loss_above_zero():
    with pytest.raises(NetemSpecError, match="ecn requested without loss model"):
        parse_netem("loss 0% ecn")
    assert parse_netem("loss 0% loss 5% ecn").ecn and parse_netem("loss gemodel 0% ecn").ecn


def test_seed_is_decimal():
    assert parse_netem("seed 010").seed == 10


def test_distribution_uniform_is_a_named_extension(tmp_path, monkeypatch):
    monkeypatch.setenv("TC_LIB_DIR", str(tmp_path))
    spec = parse_netem("delay 10ms 1ms distribution uniform")
    assert spec.distribution_table is None and "distribution uniform" in spec.extensions
    assert any("tc would refuse" in note for note in spec.notes)
    slot = parse_netem("slot distribution uniform 10ms 2ms")
    assert slot.slot.distribution_table is None and "slot distribution uniform" in slot.extensions
    (tmp_path / "uniform.dist").write_text("-8192 8192\n")  # with the file, tc reads it: so do we
    spec = parse_netem("delay 10ms 1ms distribution uniform")
    assert spec.distribution_table == (-8192, 8192) and not spec.extensions


def test_loss_burst_becomes_simple_gilbert_shown_in_netem_words():
    spec = parse_netem("loss burst 5% 3")
    assert spec.loss_burst == (0.05, 3.0) and "loss burst" in spec.extensions
    r, p = 1 / 3, (1 / 3) * 0.05 / 0.95
    assert spec.loss == GilbertElliottLoss(pytest.approx(p), pytest.approx(r), 1.0, 0.0)
    words = f"loss gemodel {percent_word(spec.loss.p)} {percent_word(spec.loss.r)} 100% 0%"
    again = parse_netem(words).loss  # the netem words give back the very u32 values netem holds
    assert probability_to_u32(again.p) == probability_to_u32(spec.loss.p)
    assert probability_to_u32(again.r) == probability_to_u32(spec.loss.r)


@pytest.mark.parametrize("words, message", [
    ("loss burst 5% 0.5", "at least 1 packet"),
    ("loss burst 60% 1", "needs bursts longer"),  # p would exceed 1: at most B / (B + 1) = 50 %
    ("loss burst 100% 3", "lie in"),
    ("loss burst 5%", "needs a value"),
    ("loss burst 5% x", 'Illegal "loss burst mean length"'),
])
def test_loss_burst_errors(words, message):
    with pytest.raises(NetemSpecError, match=message):
        parse_netem(words)


def test_corrupt_modes():
    assert parse_netem("corrupt 5%").corrupt_mode == "payload"
    spec = parse_netem("corrupt 5% 10% correct frame")
    assert spec.corrupt_mode == "frame" and spec.corrupt.correct and spec.corrupt.correlation == 0.10
    assert parse_netem("corrupt 1% frame-checksum delay 1ms").corrupt_mode == "frame-checksum"
    with pytest.raises(NetemSpecError, match='What is "fram"'):
        parse_netem("corrupt 1% fram")  # extensions are spelt in full


def test_in_order_and_the_reordering_note():
    assert any("reorder packets" in note for note in parse_netem("delay 10ms 5ms").notes)
    spec = parse_netem("delay 10ms 5ms in-order")
    assert spec.in_order and not any("reorder packets" in note for note in spec.notes)
    assert not any("reorder packets" in note for note in parse_netem("delay 10ms 5ms rate 1mbit").notes)
    for word in ("in", "link", "packet"):  # never prefix-matched
        with pytest.raises(NetemSpecError, match="What is"):
            parse_netem([word])


def test_traces_parse_and_refuse_what_they_replace(tmp_path):
    link = tmp_path / "link.trace"
    link.write_text("1\n1\n2\n4\n")
    packets = tmp_path / "p.ptrace"
    packets.write_text("# two columns\n0 10.5\n1.5 lost\n3 12\n")
    spec = parse_netem(["link-trace", str(link), "stretch", "2", "bytes", "1000", "once"])
    assert spec.link_trace.opportunities_ms == (1, 1, 2, 4) and spec.link_trace.stretch == 2.0
    assert not spec.link_trace.loop and spec.link_trace.bytes_per_opportunity == 1000
    trace = parse_netem(["packet-trace", str(packets)]).packet_trace
    assert trace.delays_ns == (10_500_000, None, 12_000_000) and trace.send_ns == (0, 1_500_000, 3_000_000)
    for words, message in [
        (["link-trace", str(link), "rate", "1mbit"], "do not combine"),
        (["packet-trace", str(packets), "loss", "1%"], "do not combine"),
        (["packet-trace", str(packets), "delay", "1ms"], "do not combine"),
        (["link-trace", str(tmp_path / "none")], "cannot read trace"),
        (["link-trace", str(packets)], "one integer"),
    ]:
        with pytest.raises(NetemSpecError, match=message):
            parse_netem(words)


EXTENSION_WORDS = ("in-order", "link-trace", "packet-trace", "burst", "payload", "frame", "frame-checksum", "once",
                   "stretch", "bytes", "correct", "loss", "corrupt", "delay", "rate", "0", "-5", "1e400", "5%", "2",
                   "0.5", "uniform", "distribution", "nosuch.trace", "")


@given(st.lists(st.sampled_from(EXTENSION_WORDS), max_size=8))
def test_extension_words_give_a_spec_or_one_error(words):
    try:
        parse_netem(words)
    except NetemSpecError as error:
        assert "\n" not in str(error)
