"""A seb frame's segments: what is packed is parsed back; what a peer gets wrong is named."""

from __future__ import annotations

import numpy as np
import pytest

from netsem.seb.segment import SegmentError, pack_segment, parse_segment, segment_bytes


def _segment(rng, total=20, groups=4):
    regions = np.sort(rng.choice(total, 7, replace=False))
    fine = np.array([True, False, False, True, False, True, False])
    fi = rng.integers(256, size=(3, 4, groups))
    ci = rng.integers(64, size=(4, groups))
    return regions, fine, fi, ci


def test_round_trip_and_size():
    rng = np.random.default_rng(0)
    regions, fine, fi, ci = _segment(rng)
    data = pack_segment(1, 20, regions, fine, fi, ci)
    assert len(data) == segment_bytes(20, fine, 4)
    s = parse_segment(data, 20, 4)
    assert s.klass == 1
    assert np.array_equal(s.regions, regions) and np.array_equal(s.fine, fine)
    assert np.array_equal(s.fine_index, fi) and np.array_equal(s.coarse_index, ci)


@pytest.mark.parametrize("mangle, message", [
    (lambda d: d[:3], "shorter than"),
    (lambda d: bytes([2]) + d[1:], "importance class 2"),
    (lambda d: d[:1] + bytes([0, 0, 0]) + d[4:], "lists no region"),
    (lambda d: d[:3] + bytes([d[3] | 0x01]) + d[4:], "past the image"),
    (lambda d: d + b"\x00", "bits left"),
    (lambda d: d[:-3], "ends inside"),
])
def test_malformed_segments_are_named(mangle, message):
    rng = np.random.default_rng(1)
    regions, fine, fi, ci = _segment(rng)
    data = pack_segment(0, 20, regions, fine, fi, ci)
    with pytest.raises(SegmentError, match=message):
        parse_segment(mangle(data), 20, 4)
