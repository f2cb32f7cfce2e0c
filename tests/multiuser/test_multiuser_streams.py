"""Stream ids; features -> datagrams -> features within half a quantizer step; tile counts."""

import numpy as np
import pytest

from netsem.multiuser.streams import (
    STEP,
    common_stream,
    describe_stream,
    features_frame,
    frame_symbols,
    private_stream,
    stream_kind,
    tiles_in,
)
from packetizers.packetizer import Packetizer
from packetizers.reassembler import Reassembler
from packetizers.wire import PartitionKind


def test_stream_ids():
    assert common_stream(3) == 0x8003 and private_stream(7) == 0x4007
    assert stream_kind(0x8003) == ("common", 3) and stream_kind(0x4007) == ("private", 7)
    assert stream_kind(12) == ("single", 12) and stream_kind(0xC002) == ("superposed", 2)
    assert describe_stream(0x8003) == "common g3" and describe_stream(0x4007) == "private u7"
    with pytest.raises(ValueError):
        common_stream(1 << 14)


def test_features_survive_the_wire():
    rng = np.random.default_rng(0)
    symbols = np.clip(rng.normal(0, 0.7, (4, 2 * 819)), -3.9, 3.9)  # 4 tiles of 819 symbols
    frame = features_frame(symbols, stream_id=private_stream(2), image_size=(64, 64), kb_version=9)
    datagrams = Packetizer(PartitionKind.TOKEN, interleave=True, seed=5).packetize(frame, 77)
    r = Reassembler()
    for d in datagrams[1:]:  # the first is lost
        assert r.receive(d, 0.0, "s") is None
    (got,) = r.flush()
    assert got.header.stream_id == 0x4002 and got.header.kb_version == 9
    tiles = tiles_in(got.header.dim0, got.header.dim1, 819)
    values, erased = frame_symbols(got.latent, got.received, tiles, 819, got.header.scale)
    assert tiles == 4 and values.shape == symbols.shape and erased.shape == (4, 819)
    assert 0 < erased.mean() < 0.2
    kept = ~np.repeat(erased, 2, axis=1)
    assert np.abs(values[kept] - symbols[kept]).max() <= STEP / 2 + 1e-9
    assert (values[~kept] == 0).all()


def test_tiles_in_rejects_other_shapes():
    assert tiles_in(52, 32, 819) == 1 and tiles_in(205, 32, 819) == 4
    assert tiles_in(52, 2, 819) is None and tiles_in(60, 32, 819) is None
