"""The named values a frame and its datagrams carry: layouts, partitions, message types, flags.

Declared apart from the wire format (`wire.py`, which builds on them) so that the data a
codec hands over (`frames.py`) can name its layout without importing the wire.
"""

from __future__ import annotations

import enum


class MessageType(enum.IntEnum):
    DATA = 0  # a frame's latent units or byte-stream segments
    KB_UPDATE = 1  # a knowledge-base update (seed 001): Sebs added / removed, base -> new version


class Layout(enum.IntEnum):
    CHW = 0  # (channels, height, width): CNN feature maps
    ND = 1  # (tokens, dims): transformer tokens
    BYTES = 2  # (stream length,): a byte stream cut into variable-length segments

    @classmethod
    def named(cls, value: Layout | str) -> Layout:
        """`Layout.CHW` from itself or from "chw"."""
        if isinstance(value, cls):
            return value
        try:
            return cls[str(value).upper()]
        except KeyError:
            raise ValueError(f"unknown latent layout {value!r}; expected chw or nd") from None


class PartitionKind(enum.IntEnum):
    CHANNEL = 0
    TOKEN = 1
    SPATIAL = 2
    SEGMENT = 3  # bytes layout: one self-contained segment (a JPEG restart interval)

    @property
    def word(self) -> str:
        """The name users write: "channel", "token", "spatial", "segment"."""
        return self.name.lower()

    @classmethod
    def named(cls, word: PartitionKind | str) -> PartitionKind:
        if isinstance(word, cls):
            return word
        try:
            return cls[str(word).upper()]
        except KeyError:
            raise ValueError(f"unknown partition {word!r}; expected one of {', '.join(PARTITION_WORDS)}") from None


PARTITION_WORDS = tuple(kind.word for kind in PartitionKind)
LATENT_PARTITIONS = (PartitionKind.CHANNEL, PartitionKind.TOKEN, PartitionKind.SPATIAL)
LATENT_PARTITION_WORDS = tuple(kind.word for kind in LATENT_PARTITIONS)  # what a latent codec can be cut into


class Flags(enum.IntFlag):
    NONE = 0
    INTERLEAVED = 1  # units were permuted by the seeded interleaver before grouping
    SIGNED = 2  # elements are two's complement at bit_width


class StreamKind(enum.IntEnum):
    """The top two bits of the header's 16-bit `stream_id`; the low 14 bits are the index.

    A single-user stream (what `netsem send` sends) keeps kind 0, so its stream id is the plain
    number a user chose. Seed 000's multi-user downlink sends each group's common features as
    (COMMON, group) and each user's private features as (PRIVATE, user). Seed 004's uplink
    sends each user's symbols as (PRIVATE, user) and the base station's received signal, the
    users' symbols superposed by the air (`netsem.semnoma.air`), as (SUPERPOSED, users)."""

    SINGLE = 0
    PRIVATE = 1
    COMMON = 2
    SUPERPOSED = 3


STREAM_KIND_SHIFT = 14
STREAM_INDEX_MASK = (1 << STREAM_KIND_SHIFT) - 1


def stream_kind(stream_id: int) -> tuple[str, int]:
    """('common', g), ('private', k), ('single', id) or ('superposed', users)."""
    kind = StreamKind(stream_id >> STREAM_KIND_SHIFT & 0b11)
    return kind.name.lower(), (stream_id if kind == StreamKind.SINGLE else stream_id & STREAM_INDEX_MASK)


def describe_stream(stream_id: int) -> str:
    """What `netsem inspect` and the dissector show: 'common g3', 'private u7', '12' (single),
    'superposed x2'."""
    kind, index = stream_kind(stream_id)
    return {"common": f"common g{index}", "private": f"private u{index}", "single": str(index),
            "superposed": f"superposed x{index}"}[kind]
