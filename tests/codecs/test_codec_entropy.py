"""Range-coded latent codecs (-ec): lossless with respect to the latent they wrap, every unit
decodes alone, bands that fit the datagram budget, the prior's cost model matches the coder,
and a receiver refuses what it cannot decode with one line."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from netsem.codecs import get_codec
from netsem.codecs.base import CodecError
from netsem.codecs.entropy import CONTEXTS, RowContextPrior, band_rows, contexts_below, row_contexts
from packetizers.frames import LatentFrame, StreamFrame

torch.set_num_threads(2)


def photo(h=96, w=128):
    from netsem.pipeline.images import load_image

    image, _ = load_image("skimage:chelsea")  # an evaluation photograph: the prior never saw it
    return image[:h, :w]


@pytest.fixture(scope="module")
def codecs():
    return get_codec("cnn-sem"), get_codec("cnn-sem-ec")


def _lost(frame: StreamFrame, lost: set[int]) -> StreamFrame:
    return dataclasses.replace(frame, segments=tuple(None if i in lost else s for i, s in enumerate(frame.segments)))


def test_complete_frame_decodes_to_exactly_the_inner_codecs_image(codecs):
    inner, coded = codecs
    image = photo()
    stream = coded.to_frame(image)
    assert isinstance(stream, StreamFrame) and len(stream.segments) == 60  # one unit per channel
    np.testing.assert_array_equal(coded.from_frame(stream), inner.from_frame(inner.to_frame(image)))
    raw_bytes = inner.to_frame(image).wire_bits / 8
    assert sum(map(len, stream.segments)) < 0.9 * raw_bytes  # the point of it


def test_any_subset_of_units_decodes_as_those_channels_lost(codecs):
    inner, coded = codecs
    image = photo()
    stream, latent = coded.to_frame(image), inner.to_frame(image)
    lost = {0, 7, 8, 30, 59}
    received = np.ones(latent.latent.shape, bool)
    received[sorted(lost)] = False
    np.testing.assert_array_equal(coded.from_frame(_lost(stream, lost)),
                                  inner.from_frame(latent.with_received(received)))


def test_units_are_bands_that_fit_the_budget(codecs):
    inner, coded = codecs
    image = photo(256, 256)
    whole = coded.to_frame(image)
    budget = max(map(len, whole.segments)) // 3
    banded = coded.to_frame(image, payload_budget=budget)
    rows = inner.latent_shape(256, 256)[1]
    per_band = banded.codec_params[0]
    assert per_band < rows and len(banded.segments) == 60 * -(-rows // per_band)
    assert np.mean([len(s) <= budget for s in banded.segments]) > 0.9
    np.testing.assert_array_equal(coded.from_frame(banded), coded.from_frame(whole))
    # one lost band: only its rows of its channel are lost
    latent = inner.to_frame(image)
    received = np.ones(latent.latent.shape, bool)
    bands = -(-rows // per_band)
    received[5, per_band: 2 * per_band] = False
    np.testing.assert_array_equal(coded.from_frame(_lost(banded, {5 * bands + 1})),
                                  inner.from_frame(latent.with_received(received)))


def test_band_rows():
    assert band_rows(np.array([100, 300]), 32, 0) == 32
    assert band_rows(np.array([100, 300]), 32, 300) == 32
    assert band_rows(np.array([100, 301]), 32, 300) == 16
    assert band_rows(np.array([5000]), 3, 10) == 1


def test_prior_cost_model_matches_the_coder_and_survives_saving(tmp_path):
    rng = np.random.default_rng(0)
    # channel 0 nearly constant, channel 1 uniform: very different costs
    frames = [LatentFrame(np.stack([rng.choice([0, 0, 0, 1], (16, 16)), rng.integers(-32, 32, (16, 16))]), "chw", 6, True,
                          scale=0.5) for _ in range(20)]
    prior = RowContextPrior.fit(frames)
    test = frames[0].latent
    coded_bits = 8 * sum(len(prior.encode(test[c], c)) for c in range(2))
    assert prior.bits(test) <= coded_bits <= prior.bits(test) + 2 * 64  # at most ~2 words of overhead per unit
    assert len(prior.encode(test[0], 0)) < len(prior.encode(test[1], 1)) / 3
    path = tmp_path / "p.safetensors"
    prior.save(path)
    again = RowContextPrior.load(path)
    assert (again.tag, again.scale, again.bit_width, again.signed) == (prior.tag, 0.5, 6, True)
    for c in range(2):
        np.testing.assert_array_equal(again.decode(prior.encode(test[c], c), c, 16, 16), test[c])


def test_the_row_above_is_the_context():
    rng = np.random.default_rng(1)
    # flat runs of columns, each row the row above give or take one: cheap with the context, not without it
    def latent():
        first = np.repeat(rng.integers(-6, 7, 6), 4)
        rows = [first + rng.choice([-1, 0, 0, 0, 0, 0, 0, 1], 24) for _ in range(24)]
        return np.clip(np.stack(rows), -8, 7)[None]
    frames = [LatentFrame(latent(), "chw", 4, True) for _ in range(40)]
    prior = RowContextPrior.fit(frames)
    test = latent()
    factorized = -np.log2(prior.marginal[0][test[0].ravel() - prior.lowest]).sum()
    assert prior.bits(test) < 0.6 * factorized
    assert 8 * len(prior.encode(test[0], 0)) <= prior.bits(test) + 64
    np.testing.assert_array_equal(prior.decode(prior.encode(test[0], 0), 0, 24, 24), test[0])
    # a unit's first row has context 0 whatever it holds; a row's contexts depend only on the row above
    contexts = row_contexts(test[0])
    assert (contexts[0] == 0).all() and (contexts[1:] > 0).all() and contexts.max() < CONTEXTS
    changed = test[0].copy()
    changed[5] += 1
    np.testing.assert_array_equal(row_contexts(changed)[[*range(6), *range(7, 24)]],
                                  contexts[[*range(6), *range(7, 24)]])
    np.testing.assert_array_equal(contexts_below(test[0][3:4])[0], contexts[4])


def test_a_prior_file_of_another_kind_is_refused_with_one_line(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "old.safetensors"
    save_file({"pmf": np.full((2, 64), 1 / 64, np.float32)}, str(path), metadata={"kind": "factorized-prior"})
    with pytest.raises(CodecError, match="not a row-context-prior file") as info:
        RowContextPrior.load(path)
    assert "\n" not in str(info.value)


def test_hostile_frames_are_refused_or_read_as_lost(codecs):
    _, coded = codecs
    stream = coded.to_frame(photo(64, 64))
    for bad in (dataclasses.replace(stream, kb_version=stream.kb_version ^ 1),
                dataclasses.replace(stream, segments=stream.segments[:-1]),
                dataclasses.replace(stream, codec_params=(0, 6)),
                dataclasses.replace(stream, codec_params=(1, 8)),
                dataclasses.replace(stream, image_size=(0, 64))):
        with pytest.raises(CodecError) as info:
            coded.from_frame(bad)
        assert "\n" not in str(info.value)
    with pytest.raises(CodecError):
        coded.from_frame(get_codec("cnn-sem").to_frame(photo(64, 64)))
    # a unit that is not whole words is a lost unit; one of noise words decodes to something valid
    junk = dataclasses.replace(stream, segments=(b"\x01\x02\x03", b"\xff" * 64, *stream.segments[2:]))
    assert coded.from_frame(junk).shape == (64, 64, 3)


def test_contexts_follow_their_definition_at_every_bit_width():
    """The lookup tables give what the module's docstring defines: 1 + busyness x PREDICTIONS +
    prediction + PREDICTION_REACH, from the three elements above."""
    from netsem.codecs.entropy import BUSYNESS, PREDICTION_REACH, PREDICTIONS

    rng = np.random.default_rng(2)
    for bit_width in (2, 4, 6, 9, 12, 16):
        values = rng.integers(-(1 << (bit_width - 1)), 1 << (bit_width - 1), (40, 33))
        above = np.pad(values[:-1], ((0, 0), (1, 1)))
        left, centre, right = above[:, :-2], above[:, 1:-1], above[:, 2:]
        busyness = np.minimum((2 * np.log2(1 + abs(left) + abs(centre) + abs(right))).astype(int), BUSYNESS - 1)
        prediction = np.clip(np.rint((left + 2 * centre + right) / 4), -PREDICTION_REACH, PREDICTION_REACH)
        expected = 1 + busyness * PREDICTIONS + prediction.astype(int) + PREDICTION_REACH
        np.testing.assert_array_equal(row_contexts(values)[1:], expected)
