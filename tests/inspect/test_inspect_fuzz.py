"""Malformed and mutated datagrams: no exception escapes, every reject is counted.

The ≥100 000-input run is `python tools/fuzz_receiver.py`; here a few thousand inputs.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from netsem.inspect.datagram import Datagram, Rejected, parse_datagram
from packetizers.reassembler import Reassembler, RejectReason

TOOL = Path(__file__).resolve().parents[2] / "tools" / "fuzz_receiver.py"


def _load_fuzzer():
    spec = importlib.util.spec_from_file_location("fuzz_receiver", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


FUZZER = _load_fuzzer()
SEED_DATAGRAMS = [d for frame in FUZZER.seed_frames() for d in frame]


@st.composite
def hostile(draw) -> bytes:
    """A seed datagram with random byte edits, a random cut, maybe a repaired CRC; or noise."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=400))
    data = bytearray(draw(st.sampled_from(SEED_DATAGRAMS)))
    for position, value in draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), max_size=6)):
        data[position] = value
    data = bytes(data[: draw(st.integers(0, len(data)))]) if draw(st.booleans()) else bytes(data)
    return FUZZER.with_crc(data[:-4]) if draw(st.booleans()) and len(data) >= 4 else data


@given(st.lists(hostile(), min_size=1, max_size=20))
def test_receiver_rejects_are_counted_with_a_reason(inputs):
    reassembler = Reassembler()
    returned = []
    for i, data in enumerate(inputs):
        reason = reassembler.receive(data, float(i))
        assert reason is None or isinstance(reason, RejectReason)
        returned.append(reason)
    rejected = [r.value for r in returned if r is not None]
    assert sum(reassembler.rejected.values()) == len(rejected)
    assert all(reassembler.rejected[r] == rejected.count(r) for r in set(rejected))
    assert reassembler.datagrams_accepted == returned.count(None)
    reassembler.flush()


@given(hostile())
def test_inspect_parser_never_raises(data):
    outcome = parse_datagram(data)
    assert isinstance(outcome, (Datagram, Rejected))


def test_fuzz_tool_small_run():
    result = FUZZER.fuzz(3000, seed=7)
    assert result.ok, FUZZER.report(result)
    assert result.inputs >= 3000 and result.accepted > 0 and result.frames_delivered > 0
    assert sum(result.rejects.values()) + result.accepted == result.inputs
    assert len(result.rejects) >= 10  # the mutations reach most reject reasons
