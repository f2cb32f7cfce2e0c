"""The PHY spec grammar: parsing, canonical text, and one-line errors naming the word."""

import importlib.util
import random
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.stages import available_stages, create_stage
from netsem.phy import PhySpec, PhySpecError, parse_phy_spec
from netsem.phy.spec import KEYWORDS as PHY_KEYWORDS
from netsem.phy.spec import stage_options_to_spec

FUZZ_TOOL = Path(__file__).resolve().parents[2] / "tools" / "fuzz_specs.py"


def _load_fuzzer():
    """tools/fuzz_specs.py (its 200 000-spec run is the tool's own; here 20 000 specs)."""
    spec = importlib.util.spec_from_file_location("fuzz_specs", FUZZ_TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


FUZZER = _load_fuzzer()


def test_full_spec_parses():
    spec = parse_phy_spec("mimo 2x2 rayleigh snr 6dB ldpc 1/2 qpsk precoder svd detector lmmse csi-error 0.1")
    assert (spec.nt, spec.nr, spec.channel, spec.snr_db) == (2, 2, "rayleigh", 6.0)
    assert spec.code_rate == 0.5 and spec.bits_per_symbol == 2
    assert (spec.precoder, spec.power, spec.detector, spec.csi_error) == ("svd", "waterfill", "lmmse", 0.1)


def test_defaults_and_variants():
    spec = parse_phy_spec("snr 3")
    assert (spec.nt, spec.nr, spec.channel, spec.code_rate, spec.modulation) == (2, 2, "rayleigh", 0.5, "qpsk")
    assert parse_phy_spec("siso awgn snr 3 dB").precoder == "none"
    assert parse_phy_spec("rician 10dB snr 1 16qam").k_factor == pytest.approx(10.0)
    assert parse_phy_spec("rician 3 snr 1").k_factor == 3.0
    assert parse_phy_spec("snr 1 uncoded 64-qam").code_rate is None
    assert parse_phy_spec("snr 1 ldpc 0.75").code_rate == 0.75


@pytest.mark.parametrize("text", [
    "mimo 2x2 rayleigh snr 6dB ldpc 1/2 qpsk precoder svd detector lmmse csi-error 0.1",
    "siso awgn snr -3dB uncoded 16qam detector zf",
    "mimo 4x2 rician 2 snr 12dB ldpc 3/4 64qam precoder svd power equal",
])
def test_describe_round_trips(text):
    spec = parse_phy_spec(text)
    assert parse_phy_spec(spec.describe()) == spec


@pytest.mark.parametrize("text, word", [
    ("mimo 2x2 rayleig snr 6dB", "rayleig"),
    ("snr 41dB", "snr 41dB"),
    ("snr -11", "snr -11"),
    ("snr six", "six"),
    ("rayleigh", "snr"),
    ("snr 3 ldpc 1/10", "ldpc 1/10"),
    ("snr 3 mimo 2by2", "mimo 2by2"),
    ("snr 3 mimo 2x2 awgn mimo 4x4", "antennas given twice"),
    ("snr 3 siso precoder svd", "precoder svd"),
    ("snr 3 precoder none power waterfill", "power waterfill"),
    ("snr 3 mimo 4x2 precoder none", "precoder none"),
    ("snr 3 mimo 2x4 awgn", "awgn"),
    ("snr 3 detector ml", "detector ml"),
    ("snr 3 csi-error 2", "csi-error 2"),
    ("snr 3 uncoded iterations 5", "uncoded"),
    ("snr 3 ldpc", "'ldpc' needs a value"),
])
def test_bad_specs_name_the_word(text, word):
    with pytest.raises(PhySpecError) as info:
        parse_phy_spec(text)
    message = str(info.value)
    assert "\n" not in message
    assert word in message


def test_stage_options_map_to_spec_and_register():
    text = stage_options_to_spec({"snr": "6dB", "mimo": "2x2", "channel": "rayleigh", "ldpc": "1/2", "mod": "qpsk"})
    assert parse_phy_spec(text) == parse_phy_spec("mimo 2x2 rayleigh snr 6dB ldpc 1/2 qpsk")
    assert "phy" in available_stages()
    stage = create_stage("phy", {"snr": "20dB", "channel": "awgn", "uncoded": ""}, random.Random(1))
    assert stage.name == "phy" and stage.spec.channel == "awgn" and stage.spec.code_rate is None
    with pytest.raises(PhySpecError):
        create_stage("phy", {"snr": "90dB"}, random.Random(1))


# Issue "Hardening II", defect 9: hostile numbers give a PhySpecError naming the word, never
# another exception, and numbers are plain ASCII decimals (Python's float() takes more).
@pytest.mark.parametrize("text, word", [
    ("rician 1e5dB snr 3", "rician 1e5dB"),  # 10 ** (K / 10) used to overflow
    ("snr 3 rician 1e308dB", "rician 1e308dB"),
    ("snr 3 iterations " + "1" * 5000, "iterations 1111"),  # int()'s 4300-digit limit
    ("snr 3 mimo " + "2" * 5000 + "x2", "mimo 2222"),
    ("snr 3 iterations ²", "iterations ²"),  # str.isdigit() is true, int() refuses it
    ("snr 3 iterations ١٢", "iterations ١٢"),
    ("mimo ١x١ snr 3", "mimo ١x١"),
    ("snr ١٢", "snr ١٢"),
    ("snr １２dB", "snr １２dB"),
    ("snr 1_0", "snr 1_0"),
    ("snr infinity", "snr infinity"),
    ("snr nan", "snr nan"),
    ("snr 1e400", "snr 1e400"),
    ("snr 3 ldpc 1/0", "ldpc 1/0"),
    ("snr 3 ldpc 0/0", "ldpc 0/0"),
    ("snr 3 ldpc 1e400/1e400", "ldpc 1e400/1e400"),
    ("snr 3 ldpc 1e300/1e-300", "ldpc 1e300/1e-300"),
    ("snr 3 ldpc 1/2/3", "ldpc 1/2/3"),
    ("snr 3 csi-error 0x1", "csi-error 0x1"),
    ("snr 3 " + "q" * 10**5, "unknown PHY word"),
])
def test_hostile_numbers_give_one_line_naming_the_word(text, word):
    with pytest.raises(PhySpecError) as info:
        parse_phy_spec(text)
    message = str(info.value)
    assert "\n" not in message and word in message and len(message) < 500


def test_numbers_in_range_still_parse():
    assert parse_phy_spec("snr -0").snr_db == 0.0 and str(parse_phy_spec("snr -0").snr_db) == "0.0"
    assert parse_phy_spec("snr +6.5e0dB").snr_db == 6.5
    assert parse_phy_spec("snr 3 rician -1e300dB").k_factor == 0.0
    assert parse_phy_spec("snr 3 rician 30dB").k_factor == pytest.approx(1000.0)
    assert parse_phy_spec("snr 3 ldpc 3/4").code_rate == 0.75
    assert parse_phy_spec("snr 3 ldpc .5").code_rate == 0.5
    assert parse_phy_spec("snr 3 iterations 007").iterations == 7


def test_20000_generated_phy_specs_and_stage_options_parse_or_give_phy_errors():
    targets = tuple(target for target in FUZZER.TARGETS if target.name in ("parse_phy_spec", "--stage phy"))
    result = FUZZER.fuzz(20_000, seed=5, targets=targets)
    assert result.ok, FUZZER.report(result)
    assert result.outcomes["parse_phy_spec"]["parsed"] > 500
    assert result.slowest_s < 0.5, FUZZER.report(result)


phy_words = st.one_of(
    st.sampled_from(PHY_KEYWORDS + ("dB", "svd", "none", "waterfill", "equal", "lmmse", "zf", "bp", "sionna")),
    st.sampled_from(FUZZER.ODD_WORDS),
    st.from_regex(r"[+-]?[0-9]{0,30}(\.[0-9]*)?([eE][+-]?[0-9]{1,7})?(dB|/[0-9.e-]{0,6}|x[0-9]{0,3})?", fullmatch=True),
    st.text(max_size=10),
)


@given(st.lists(phy_words, max_size=12), st.sampled_from((" ", ", ")))
def test_any_phy_text_parses_or_gives_a_phy_error(words, separator):
    try:
        assert isinstance(parse_phy_spec(separator.join(words)), PhySpec)
    except PhySpecError as error:
        assert "\n" not in str(error)
