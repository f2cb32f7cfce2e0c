"""Packetize -> drop any subset -> reassemble, checked against an independent oracle.

`unit_elements` is a deliberately naive statement of which latent elements each unit holds,
written from the table in `packetizers/partition.py`'s docstring with plain loops, so the
tests check the vectorised partitioner against the specification, not against itself.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from packetizers import engine
from packetizers.frames import LatentFrame
from packetizers.packetizer import Packetizer, sub_unit_bounds
from packetizers.partition import partition_for
from packetizers.reassembler import Reassembler
from packetizers.wire import Layout, PartitionKind, parse_with_construct


def unit_elements(layout: str, shape: tuple[int, ...], kind: str, block=(0, 0), grid=(0, 0)) -> list[list[int]]:
    """Flat latent indices of every unit, each in the unit's documented element order."""
    flat = np.arange(int(np.prod(shape))).reshape(shape)
    units: list[list[int]] = []
    if layout == "chw":
        channels, height, width = shape
        if kind == "channel":
            for c in range(channels):
                units.append([int(flat[c, y, x]) for y in range(height) for x in range(width)])
        elif kind == "token":
            for y in range(height):
                for x in range(width):
                    units.append([int(flat[c, y, x]) for c in range(channels)])
        else:
            for y0 in range(0, height, block[0]):
                for x0 in range(0, width, block[1]):
                    ys = range(y0, min(y0 + block[0], height))
                    xs = range(x0, min(x0 + block[1], width))
                    units.append([int(flat[c, y, x]) for c in range(channels) for y in ys for x in xs])
    else:
        tokens, dims = shape
        if kind == "channel":
            for d in range(dims):
                units.append([int(flat[n, d]) for n in range(tokens)])
        elif kind == "token":
            for n in range(tokens):
                units.append([int(flat[n, d]) for d in range(dims)])
        else:
            gh, gw = grid
            for y0 in range(0, gh, block[0]):
                for x0 in range(0, gw, block[1]):
                    ys = range(y0, min(y0 + block[0], gh))
                    xs = range(x0, min(x0 + block[1], gw))
                    units.append([int(flat[y * gw + x, d]) for y in ys for x in xs for d in range(dims)])
    return units

KINDS = {"channel": PartitionKind.CHANNEL, "token": PartitionKind.TOKEN, "spatial": PartitionKind.SPATIAL}


@st.composite
def frames(draw):
    layout = draw(st.sampled_from(["chw", "nd"]))
    kind = draw(st.sampled_from(list(KINDS)))
    bit_width = draw(st.integers(1, 16))
    signed = draw(st.booleans())
    if layout == "chw":
        shape = (draw(st.integers(1, 12)), draw(st.integers(1, 9)), draw(st.integers(1, 9)))
        grid = (0, 0)
    else:
        grid = (draw(st.integers(1, 8)), draw(st.integers(1, 8)))
        shape = (grid[0] * grid[1], draw(st.integers(1, 24)))
    block = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    low, high = (-(1 << (bit_width - 1)), (1 << (bit_width - 1)) - 1) if signed else (0, (1 << bit_width) - 1)
    seed = draw(st.integers(0, 2**32 - 1))
    latent = np.random.default_rng(seed).integers(low, high, size=shape, endpoint=True)
    mtu = draw(st.integers(100, 400))
    return layout, kind, bit_width, signed, latent, grid, block, mtu, seed


@given(frames(), st.booleans(), st.booleans(), st.data())
def test_any_subset_reassembles_exactly_the_received_elements(frame, interleave, compiled, data):
    """With either engine packing and unpacking (packetizers/engine.py)."""
    engine.use_compiled(compiled)
    check_any_subset(frame, interleave, data)


def check_any_subset(frame, interleave, data):
    layout, kind, bit_width, signed, latent, grid, block, mtu, seed = frame
    packetizer = Packetizer(KINDS[kind], interleave=interleave, seed=seed, mtu=mtu, block=block)
    lf = LatentFrame(latent, Layout.CHW if layout == "chw" else Layout.ND, bit_width, signed, token_grid=grid)
    datagrams = packetizer.packetize(lf, frame_id=5)
    assert all(len(d) <= mtu for d in datagrams)
    keep = data.draw(st.lists(st.booleans(), min_size=len(datagrams), max_size=len(datagrams)))
    units = unit_elements(layout, latent.shape, kind, block, grid)

    expected_mask = np.zeros(latent.size, dtype=bool)
    reassembler = Reassembler()
    for datagram, kept in zip(datagrams, keep):
        parsed = parse_with_construct(datagram)
        assert parsed.crc32 == zlib.crc32(datagram[:-4])
        if not kept:
            continue
        assert reassembler.receive(datagram, now=0.0) is None
        header = parsed.header
        for unit in parsed.unit_ids:
            elements = units[unit]
            start, end = sub_unit_bounds(len(elements), header.sub_index, header.sub_count)
            expected_mask[elements[start:end]] = True
    delivered = reassembler.poll(now=10.0)
    if not any(keep):
        assert delivered == []
        return
    (result,) = delivered
    expected_mask = expected_mask.reshape(latent.shape)
    assert result.complete == all(keep)
    np.testing.assert_array_equal(result.received, expected_mask)
    np.testing.assert_array_equal(result.latent[expected_mask], latent[expected_mask])
    assert not result.latent[~expected_mask].any()
    # every unit's elements are covered by exactly the datagrams that name it
    for unit, elements in enumerate(units):
        assert result.unit_received[unit] == expected_mask.reshape(-1)[elements].all()


@pytest.mark.parametrize("layout,shape,grid", [("chw", (5, 7, 6), (0, 0)), ("nd", (12, 5), (3, 4))])
@pytest.mark.parametrize("kind", list(KINDS))
def test_partition_matches_the_documented_unit_order(layout, shape, grid, kind):
    partition = partition_for(Layout.CHW if layout == "chw" else Layout.ND, shape, KINDS[kind], (2, 3), grid)
    latent = np.arange(int(np.prod(shape))).reshape(shape)
    expected = np.concatenate([np.asarray(u) for u in unit_elements(layout, shape, kind, (2, 3), grid)])
    np.testing.assert_array_equal(partition.to_units(latent), expected)
    np.testing.assert_array_equal(partition.from_units(partition.to_units(latent)), latent)
