"""The jpeg baseline: restart markers, segments, header rebuild, row-local damage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
from scipy.ndimage import binary_dilation

from netsem.codecs import get_codec
from netsem.codecs.base import CodecError
from netsem.codecs.jpeg import MCU


def photo():
    return np.ascontiguousarray(skimage.data.chelsea()[:120, :160])


def test_stream_has_dri_and_rst_markers_and_segments_concatenate():
    jp = get_codec("jpeg", quality=80)
    s = jp.encode(photo())
    assert b"\xff\xdd" in s.stream  # DRI
    rst = [m for m in range(0xD0, 0xD8) if bytes([0xFF, m]) in s.stream]
    assert len(rst) == 7  # 8 intervals: RST0..RST6
    assert len(s.segments) == 1 + 8  # header + ceil(120 / 16) MCU rows
    assert b"".join(s.present().values()) == s.stream
    for i in range(1, 8):
        assert s.segments[i][-2:] == bytes([0xFF, 0xD0 + (i - 1) % 8])
    assert s.segments[8].endswith(b"\xff\xd9")


def test_lossless_decode_and_header_rebuild():
    jp = get_codec("jpeg", quality=80)
    s = jp.encode(photo())
    full = jp.decode_segments(s.present(), s.image_size, s.codec_params[0])
    ref = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(
        __import__("io").BytesIO(s.stream)).convert("RGB"))
    np.testing.assert_array_equal(full, ref)
    no_header = {k: v for k, v in s.present().items() if k != 0}
    np.testing.assert_array_equal(jp.decode_segments(no_header, s.image_size, s.codec_params[0]), full)


def test_losing_a_segment_only_damages_its_rows():
    jp = get_codec("jpeg", quality=80)
    img = photo()
    s = jp.encode(img)
    full = jp.decode_segments(s.present(), s.image_size, s.codec_params[0])
    lost = 4  # MCU row 3: pixel rows 48..63
    got = {k: v for k, v in s.present().items() if k != lost}
    out = jp.decode_segments(got, s.image_size, s.codec_params[0])
    r0, r1 = (lost - 1) * MCU, lost * MCU
    # chroma upsampling may reach one pixel row across the MCU boundary
    np.testing.assert_array_equal(out[: r0 - 1], full[: r0 - 1])
    np.testing.assert_array_equal(out[r1 + 1 :], full[r1 + 1 :])
    assert not np.array_equal(out[r0:r1], full[r0:r1])
    # concealed by interpolation: closer to the truth than a grey band
    err = np.abs(out[r0:r1].astype(float) - img[r0:r1]).mean()
    assert err < np.abs(128.0 - img[r0:r1]).mean() / 2


def test_matched_bytes_fit_the_budget():
    jp = get_codec("jpeg")
    s = jp.encode_to_bytes(photo(), 3000)
    assert len(s.stream) <= 3000
    assert len(jp.encode(photo(), min(95, s.codec_params[0] + 1)).stream) > 3000 or s.codec_params[0] == 95


def test_fitted_segments_fit_and_a_lost_interval_only_damages_its_mcus():
    jp = get_codec("jpeg", quality=90)
    img = np.ascontiguousarray(skimage.data.astronaut()[:96, :256])  # 6 x 16 MCUs
    rows = jp.encode(img)
    assert rows.codec_params[1] == 16
    s = jp.fit_segments(img, 300)
    assert 1 <= s.codec_params[1] < 16
    assert max(len(seg) for i, seg in s.present().items() if i > 0) <= 300
    full = jp.decode_segments(s.present(), s.image_size, s.codec_params[0], s.codec_params[1])
    np.testing.assert_array_equal(full, np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(
        __import__("io").BytesIO(s.stream)).convert("RGB")))
    first = 2 * s.codec_params[1]  # interval 2 covers MCUs [2k, 3k)
    lost_mcus = range(first, first + s.codec_params[1])
    out = jp.decode_segments({i: v for i, v in s.present().items() if i != 3}, s.image_size, s.codec_params[0], s.codec_params[1])
    damaged = np.zeros((6, 16), dtype=bool)
    damaged.flat[list(lost_mcus)] = True
    pixels = np.repeat(np.repeat(damaged, MCU, 0), MCU, 1)
    # chroma upsampling may reach one pixel across an MCU edge
    near = binary_dilation(pixels, np.ones((3, 3), dtype=bool))
    np.testing.assert_array_equal(out[~near], full[~near])
    assert not np.array_equal(out[pixels], full[pixels])


# --- hostile streams: the header segment and sizes come from a peer --------------------------

def _patched(header: bytes, offset: int, data: bytes) -> bytes:
    return header[:offset] + data + header[offset + len(data):]


def _sof(header: bytes) -> int:
    """Offset of the SOF0 segment's payload (precision, height, width, components...)."""
    return header.index(b"\xff\xc0") + 4


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux; False where that is not possible)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss_mb() -> float:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def test_a_header_whose_sof_lies_about_the_size_is_refused_before_pillow():
    jp = get_codec("jpeg", quality=80)
    s = jp.encode(np.ascontiguousarray(skimage.data.astronaut()[:64, :64]))
    header, at = s.segments[0], _sof(s.segments[0])
    assert header[at] == 8 and header[at + 1 : at + 5] == (64).to_bytes(2, "big") * 2
    for h, w in [(65500, 2700), (2700, 65500), (32, 64), (64, 63)]:
        lying = _patched(header, at + 1, h.to_bytes(2, "big") + w.to_bytes(2, "big"))
        segments = {**s.present(), 0: lying}
        measured = _reset_peak_rss()
        before = _peak_rss_mb() if measured else 0.0
        with pytest.raises(CodecError, match="SOF"):
            jp.decode_segments(segments, s.image_size, s.codec_params[0], s.codec_params[1])
        if measured:
            assert _peak_rss_mb() - before < 50  # Pillow once took 2.6 GB for 65500x2700


def test_headers_pillow_would_not_write_are_refused():
    jp = get_codec("jpeg", quality=80)
    s = jp.encode(photo())
    header, at = s.segments[0], _sof(s.segments[0])
    dri = header.index(b"\xff\xdd") + 4
    bad = {
        "4:4:4 sampling": _patched(header, at + 7, b"\x11"),
        "12-bit": _patched(header, at, b"\x0c"),
        "restart interval": _patched(header, dri, (s.codec_params[1] + 1).to_bytes(2, "big")),
        "APP1": header[:2] + b"\xff\xe1\x00\x04ab" + header[2:],
        "SOF1": _patched(header, at - 3, b"\xc1"),
        "two SOFs": header[:at - 4] + header[at - 4 : at + 15] + header[at - 4:],
        "truncated": header[:-5],
        "after SOS": header + b"\x00",
        "no SOI": header[2:],
        "length past the end": _patched(header, 4, b"\xff\xff"),
    }
    for what, h in bad.items():
        with pytest.raises(CodecError):
            jp.decode_segments({**s.present(), 0: h}, s.image_size, s.codec_params[0], s.codec_params[1])
            pytest.fail(what)


def test_an_interval_holding_a_marker_and_bad_parameters_are_refused():
    jp = get_codec("jpeg", quality=80)
    s = jp.encode(photo())
    sof_segment = s.segments[0][_sof(s.segments[0]) - 4 :][:19]
    for body in (s.segments[2][:5] + sof_segment + s.segments[2][5:], b"\xff\xd9" + s.segments[2]):
        with pytest.raises(CodecError, match="marker"):
            jp.decode_segments({**s.present(), 2: body}, s.image_size, s.codec_params[0], s.codec_params[1])
    no_header = {k: v for k, v in s.present().items() if k}
    for quality, mcus in [(0, None), (96, None), (2**32 - 1, None), (80, -1), (80, 1 << 16)]:
        with pytest.raises(CodecError):
            jp.decode_segments(no_header, s.image_size, quality, mcus)
    for size in [(0, 160), (120, 0), (65535, 65535), (65501, 16)]:
        with pytest.raises(CodecError):
            jp.decode_segments(s.present(), size, s.codec_params[0], s.codec_params[1])
