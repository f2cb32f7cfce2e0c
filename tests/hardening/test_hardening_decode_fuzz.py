"""The decode-path fuzzer (tools/fuzz_decode.py) finds no escape: a hostile frame's decode
fails, if at all, with a CodecError, the frame's own one-line error."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from fuzz_decode import fuzz, report  # noqa: E402


def test_eight_hundred_hostile_frames_through_every_codec_raise_nothing_but_codec_errors():
    # 800 frames reach every codec several times (tools/fuzz_decode.py, 100 000 by default, is the long run)
    result = fuzz(800, seed=7)
    print(report(result))
    assert result.ok, dict(result.escapes)
    assert result.delivered > 200 and result.decoded > 80 and sum(result.codec_errors.values()) > 100
