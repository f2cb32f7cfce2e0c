"""Seed 004 over the network: uplink users as senders, the air as an emulator stage, the base
station as a receiver — sans-I/O cores; `transport` moves their bytes over UDP.

    user k:  image -> model.transmit(image, context_k) -> 12-bit symbol frame, stream
             (PRIVATE, k) -> token-partition datagrams   (`user_datagrams`)
    air:     SuperpositionStage in the emulator's Link: one (SUPERPOSED, K) datagram per slot
    BS:      reassemble -> received signal (erased where a slot was lost) -> SIC with the
             frame's channel realisation -> K images      (`BaseStation`)

Every end derives frame `f`'s channel from `AirSpec.uplink(f, L)` (seed and frame id), so the
users' adaptive contexts, the air's fading and noise, and the base station's SIC agree without
a control channel (standing in for the CSI feedback the seed assumes). `run_offline` runs the
same cores on a virtual clock: it gives the socket path's result for the same seed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from emulator.grammar import parse_netem
from emulator.link import Link
from netsem.multiuser.data import to_tensor, to_uint8
from netsem.semnoma.air import SuperpositionStage
from netsem.semnoma.config import AirSpec
from netsem.semnoma.model import SemNomaJscc
from netsem.semnoma.scheme import sic_decode
from netsem.semnoma.streams import codec_id, frame_complex, model_tag, user_frame
from packetizers.kinds import STREAM_INDEX_MASK, STREAM_KIND_SHIFT, PartitionKind, StreamKind
from packetizers.packetizer import Packetizer
from packetizers.reassembler import Frame, Reassembler
from packetizers.wire import DEFAULT_MTU, peek_header


def tag_of(model: SemNomaJscc) -> int:
    return model_tag(model.config.to_json())


def packetizer(air: AirSpec, mtu: int = DEFAULT_MTU) -> Packetizer:
    """Every user packetizes alike (same interleaving seed), so datagram i of each user carries
    the same tokens: that is what makes a slot."""
    return Packetizer(PartitionKind.TOKEN, interleave=True, seed=air.seed, mtu=mtu)


@torch.no_grad()
def user_datagrams(model: SemNomaJscc, image: np.ndarray, user: int, frame_id: int, air: AirSpec,
                   mtu: int = DEFAULT_MTU) -> list[bytes]:
    """User `user`'s datagrams for `image` (H, W, 3) uint8, sides multiples of 4."""
    if not 0 <= user < air.users:
        raise ValueError(f"user {user} outside 0..{air.users - 1} (the air spec has {air.users} power coefficients)")
    h, w = image.shape[:2]
    symbols = model.config.symbols(h, w)
    context = air.uplink(frame_id, symbols).context()[:, user]
    sent = model.transmit(to_tensor(image[None]), context)[0].numpy()
    return packetizer(air, mtu).packetize(user_frame(sent, user, (h, w), tag_of(model)), frame_id)


@dataclass
class Delivered:
    """One frame as the base station decoded it."""

    frame_id: int
    images: list[np.ndarray]  # per user, (H, W, 3) uint8
    erased: float  # share of the received symbols lost (slots that never completed)
    datagrams: int
    delivery: str


class BaseStation:
    """Sans-I/O: `receive(datagram, now)`, `poll(now)` / `flush()` -> decoded frames."""

    def __init__(self, model: SemNomaJscc, air: AirSpec) -> None:
        self.model = model
        self.air = air
        self.codec = codec_id()
        self.tag = tag_of(model)
        self.reassembler = Reassembler()
        self.rejected: Counter[str] = Counter()

    def receive(self, datagram: bytes, now: float, source=None) -> str | None:
        """None when accepted, else the reason it was not (counted).

        `source` is not used: the air forwards a slot's datagram from the socket of whichever
        user completed the slot, so one frame reaches the base station from several addresses;
        frames are told apart by their frame id (and fields) alone."""
        header = peek_header(datagram)
        reason = None
        if header is not None:
            kind = header.stream_id >> STREAM_KIND_SHIFT
            if header.codec_id != self.codec:
                reason = "wrong_codec"
            elif kind != StreamKind.SUPERPOSED:
                reason = "not_superposed"
            elif header.stream_id & STREAM_INDEX_MASK != self.air.users:
                reason = "wrong_users"
            elif header.kb_version != self.tag:
                reason = "wrong_model"
        if reason is None:
            rejected = self.reassembler.receive(datagram, now)
            reason = None if rejected is None else rejected.value
        if reason is not None:
            self.rejected[reason] += 1
        return reason

    def receive_many(self, datagrams: list[bytes], now: float, source=None) -> list[str | None]:
        """`receive` of each (the socket loop's batches; superposed datagrams are few)."""
        return [self.receive(datagram, now, source) for datagram in datagrams]

    def next_deadline(self) -> float | None:
        return self.reassembler.next_deadline()

    def poll(self, now: float) -> list[Delivered]:
        return [self._decode(frame) for frame in self.reassembler.poll(now)]

    def flush(self) -> list[Delivered]:
        return [self._decode(frame) for frame in self.reassembler.flush()]

    def stats(self) -> dict:
        return {"rejected": dict(self.rejected), "reassembler": self.reassembler.stats()}

    @torch.no_grad()
    def _decode(self, frame: Frame) -> Delivered:
        h, w = frame.header.image_height, frame.header.image_width
        symbols = self.model.config.symbols(h, w)
        uplink = self.air.uplink(frame.header.frame_id, symbols)
        values, erased = frame_complex(frame.latent, frame.received, symbols, frame.header.scale)
        norm = float((1 + uplink.gains.abs().pow(2).sum()).sqrt())
        received = torch.as_tensor(values * norm, dtype=torch.complex64)[None]
        decoded = sic_decode(self.model, received, uplink, (h, w))
        images = [to_uint8(decoded.images[0, k:k + 1])[0] for k in range(self.air.users)]
        return Delivered(frame.header.frame_id, images, float(erased.mean()), frame.datagrams_received,
                         frame.delivery.value)


def slot_order(per_user: list[list[bytes]]) -> list[bytes]:
    """The users' datagrams as they reach the air when the users send together: slot by slot."""
    out = []
    for i in range(max(map(len, per_user))):
        out += [datagrams[i] for datagrams in per_user if i < len(datagrams)]
    return out


def run_offline(model: SemNomaJscc, images: list[np.ndarray], air: AirSpec, *, frame_id: int = 1, netem: str = "",
                link_seed: int = 0, mtu: int = DEFAULT_MTU) -> tuple[Delivered | None, dict]:
    """The socket path on a virtual clock: users' datagrams slot by slot through a Link with
    the netem words and the air stage, then the base station."""
    per_user = [user_datagrams(model, image, k, frame_id, air, mtu) for k, image in enumerate(images)]
    stage = SuperpositionStage(air)
    link = Link(parse_netem(netem), seed=link_seed, stages=[stage])
    station = BaseStation(model, air)
    for datagram in slot_order(per_user):
        link.submit(datagram, 0.0)
    now, out = 0.0, []
    while (deadline := link.next_deadline()) is not None:
        now = max(now, deadline)
        for datagram in link.due(now):
            station.receive(datagram, now)
    out += station.flush()
    stats = {"datagrams_per_user": [len(d) for d in per_user], "air": dict(stage.stats), **station.stats(),
             "link": link.counters.as_dict()}
    return (out[0] if out else None), stats
