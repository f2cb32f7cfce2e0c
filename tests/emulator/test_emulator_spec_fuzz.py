"""Any netem spec gives a `NetemSpec` or one `NetemSpecError`, and the CLIs print it in one line.

The 200 000-spec run is `python tools/fuzz_specs.py`; here 20 000 netem specs from the same
generator, hypothesis on top, and the real `netsem emulate` / `netsem send` processes.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.grammar import NetemSpec, NetemSpecError, parse_netem
from emulator.stages import parse_stage_option

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "fuzz_specs.py"


def _load_fuzzer():
    spec = importlib.util.spec_from_file_location("fuzz_specs", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


FUZZER = _load_fuzzer()


def _targets(*names: str) -> tuple:
    return tuple(target for target in FUZZER.TARGETS if target.name in names)


def test_20000_generated_netem_specs_parse_or_give_netem_errors():
    start = time.perf_counter()
    result = FUZZER.fuzz(20_000, seed=9, targets=_targets("parse_netem"))
    assert result.ok, FUZZER.report(result)
    outcomes = result.outcomes["parse_netem"]
    assert outcomes["parsed"] > 500 and outcomes["NetemSpecError"] > 10_000  # both paths are exercised
    assert result.slowest_s < 0.5, FUZZER.report(result)  # long words are refused at once
    assert time.perf_counter() - start < 20


def test_the_fuzz_tool_is_deterministic():
    first, second = (FUZZER.fuzz(500, seed=4) for _ in range(2))
    assert first.outcomes == second.outcomes and first.ok


def test_the_fuzz_tool_reports_an_escaping_exception():
    def fragile(words):
        raise OverflowError("cannot convert float infinity to integer")

    target = FUZZER.Target("fragile", FUZZER.netem_spec, fragile, (NetemSpecError,))
    result = FUZZER.fuzz(3, seed=0, targets=(target,))
    assert not result.ok and result.escaped["fragile: OverflowError"] == 3
    assert "ESCAPED fragile: OverflowError x3" in FUZZER.report(result)


netem_words = st.one_of(
    st.sampled_from(FUZZER.NETEM_KEYWORDS + FUZZER.NETEM_SUBWORDS + FUZZER.DISTRIBUTIONS),
    st.sampled_from(FUZZER.ODD_WORDS),
    st.builds(lambda number, suffix: number + suffix,
              st.from_regex(r"[+-]?[0-9]{0,30}(\.[0-9]*)?([eE][+-]?[0-9]{1,7})?", fullmatch=True),
              st.sampled_from(("",) + FUZZER.SUFFIXES)),
    st.text(max_size=12),
)


@given(st.lists(netem_words, max_size=12))
def test_any_word_list_parses_or_gives_a_netem_error(words):
    try:
        assert isinstance(parse_netem(words), NetemSpec)
    except NetemSpecError as error:
        assert "\n" not in str(error)


@given(st.text(max_size=60))
def test_any_text_parses_or_gives_a_netem_error(text):
    try:
        assert isinstance(parse_netem(text), NetemSpec)
    except NetemSpecError as error:
        assert "\n" not in str(error)


@given(st.text(max_size=40))
def test_stage_options_give_a_name_and_options_or_a_value_error(text):
    try:
        name, options = parse_stage_option(text)
    except ValueError as error:
        assert type(error) is ValueError and "\n" not in str(error)
    else:
        assert name and all(key for key in options)


def test_a_stage_option_given_twice_is_an_error():
    with pytest.raises(ValueError, match="stage option 'snr' given twice"):
        parse_stage_option("phy snr=6dB snr=1e400")


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netsem", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def _assert_one_line_error(run: subprocess.CompletedProcess, *expected: str) -> None:
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    for text in expected:
        assert text in lines[0]


def test_emulate_refuses_an_overflowing_delay_in_one_line():
    run = _run_cli("emulate", "--listen", "127.0.0.1:0", "--forward", "127.0.0.1:9", "--", "delay", "1e400ms")
    _assert_one_line_error(run, 'Illegal "latency"', "1e400ms")
    assert run.returncode == 2


def test_emulate_refuses_an_overflowing_phy_stage_in_one_line():
    run = _run_cli("emulate", "--listen", "127.0.0.1:0", "--forward", "127.0.0.1:9",
                   "--stage", "phy snr=6dB rician=1e5dB")
    _assert_one_line_error(run, "rician 1e5dB", "K-factor")
    assert run.returncode == 2


def test_send_refuses_an_overflowing_delay_in_one_line():
    run = _run_cli("send", "--netem", "delay 1e400ms")  # loads torch: the one such run
    _assert_one_line_error(run, 'Illegal "latency"', "1e400ms")
