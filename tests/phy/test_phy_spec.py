"""The PHY spec grammar: parsing, canonical text, and one-line errors naming the word."""

import random

import pytest

from emulator.stages import available_stages, create_stage
from netsem.phy import PhySpecError, parse_phy_spec
from netsem.phy.spec import stage_options_to_spec


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
