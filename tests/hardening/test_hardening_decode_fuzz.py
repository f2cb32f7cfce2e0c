"""The decode-path fuzzer (tools/fuzz_decode.py) finds no escape: a hostile frame's decode
fails, if at all, with a CodecError, the frame's own one-line error."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from fuzz_decode import fuzz, report  # noqa: E402


def test_two_thousand_hostile_frames_through_every_codec_raise_nothing_but_codec_errors():
    result = fuzz(2000, seed=7)
    print(report(result))
    assert result.ok, dict(result.escapes)
    assert result.delivered > 500 and result.decoded > 100 and sum(result.codec_errors.values()) > 100
