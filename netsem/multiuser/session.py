"""The multicast session's sans-I/O core: the sender's datagrams, and one receiver's path.

Sender (`plan_transmission`): each group's common frame is packetized once (it goes to the
group's multicast address), each user's private frame once (unicast to that user). All
frames of one transmission share a frame id.

Receiver (`ReceiverCore`, one per user): datagrams arrive on two paths, the multicast socket
(`"common"`) and the unicast one (`"private"`). Each path runs through its own `emulator.link.Link`
configured with this receiver's netem words, so one multicast datagram meets every member's own
impairments after it leaves the sender once. What the link lets through is checked before
reassembly: a datagram whose CRC holds but whose stream id is not this receiver's is rejected
and counted by reason (`wrong_group`: another group's common features; `wrong_user`: another
user's private features; `not_multiuser`: an ordinary or superposed stream id; `wrong_codec`,
`wrong_model`: another codec or another model's features). Everything else (a bad CRC, a bad
header, a duplicate...) is the reassembler's to count. When a transmission's frames are in (or
their time is up), `take_ready` hands out its common and private symbols with the erased ones
marked; the analog channel and the decoder (torch) are applied by the caller.

Two links per receiver, not one: datagrams from two sockets interleave in an order that
depends on scheduling, while each socket delivers its own datagrams in the order they were
sent, so two links see the same sequence on sockets as in `simulate_offline`, and the same
seed loses the same datagrams.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from emulator.grammar import NetemSpec
from emulator.link import Link
from netsem.multiuser.streams import (
    common_stream,
    features_frame,
    frame_symbols,
    private_stream,
    stream_kind,
    tiles_in,
)
from packetizers.packetizer import Packetizer
from packetizers.reassembler import Frame, Reassembler, ReassemblerLimits
from packetizers.wire import (
    CRC_SIZE,
    HEADER_SIZE,
    MAGIC,
    PartitionKind,
    crc_ok,
    peek_header,
)

PATHS = ("common", "private")


@dataclass
class Transmission:
    """What the sender puts on the wire for one batch of users."""

    frame_id: int
    groups: np.ndarray  # (G, K) user indices
    common: dict[int, list[bytes]]  # group -> its common datagrams (sent once, multicast)
    private: dict[int, list[bytes]]  # user -> its private datagrams (unicast)

    def group_of(self, user: int) -> int:
        return int(np.argwhere(self.groups == user)[0, 0])

    @property
    def common_bytes(self) -> int:
        return sum(len(d) for ds in self.common.values() for d in ds)

    @property
    def private_bytes(self) -> int:
        return sum(len(d) for ds in self.private.values() for d in ds)

    @property
    def common_bytes_if_unicast(self) -> int:
        """What the common features would cost sent to each member separately."""
        return sum(len(d) * len(self.groups[g]) for g, ds in self.common.items() for d in ds)


def plan_transmission(common: np.ndarray | None, private: np.ndarray, groups: np.ndarray, *, tiles: int,
                      image_size: tuple[int, int], kb_version: int, frame_id: int, mtu: int, seed: int) -> Transmission:
    """common (G x T, 2 L_c) and private (users x T, 2 L_p) transmitted symbols -> datagrams.
    Symbols travel as tokens, interleaved with a seed derived from `seed` and the stream."""

    def datagrams(symbols: np.ndarray, stream_id: int) -> list[bytes]:
        frame = features_frame(symbols, stream_id=stream_id, image_size=image_size, kb_version=kb_version)
        packetizer = Packetizer(PartitionKind.TOKEN, interleave=True, seed=(seed * 65537 + stream_id) & 0xFFFFFFFF,
                                mtu=mtu)
        return packetizer.packetize(frame, frame_id)

    users = groups.size
    return Transmission(
        frame_id=frame_id,
        groups=groups,
        common={} if common is None else {
            g: datagrams(common[g * tiles:(g + 1) * tiles], common_stream(g)) for g in range(groups.shape[0])
        },
        private={k: datagrams(private[k * tiles:(k + 1) * tiles], private_stream(k)) for k in range(users)},
    )


@dataclass
class Received:
    """One user's share of one transmission, as its receiver got it."""

    frame_id: int
    tiles: int
    common: np.ndarray | None  # (T, 2 L_c) symbols, 0 where erased; None: private-only transmission
    common_erased: np.ndarray | None  # (T, L_c) bool
    private: np.ndarray  # (T, 2 L_p)
    private_erased: np.ndarray  # (T, L_p)
    image_size: tuple[int, int]


@dataclass
class _Pending:
    first: float
    frames: dict[str, Frame] = field(default_factory=dict)


class ReceiverCore:
    """One user's receiver; see the module docstring. `expects_common`: the model has common
    features (a private-only transmission sends none, and nothing is waited for)."""

    def __init__(self, user: int, group: int, *, netem: NetemSpec, seed: int, codec_id: int, kb_version: int,
                 common_symbols: int, private_symbols: int, expects_common: bool = True,
                 wait: float = 0.5, limits: ReassemblerLimits | None = None) -> None:
        self.user, self.group = user, group
        self.links = {path: Link(netem, seed=seed, stream=f"user{user}-{path}") for path in PATHS}
        self.reassembler = Reassembler(limits or ReassemblerLimits())
        self.codec_id, self.kb_version = codec_id, kb_version
        self.symbols = {"common": common_symbols, "private": private_symbols}
        self.expects_common = expects_common
        self.wait = wait  # seconds a transmission waits for its second stream after the first arrived
        self.rejected: Counter[str] = Counter()
        self.bytes_in: Counter[str] = Counter()  # accepted datagram bytes by stream kind
        self.datagrams_in: Counter[str] = Counter()
        self.datagrams_arrived: Counter[str] = Counter()  # by path, before the link
        self._pending: dict[int, _Pending] = {}
        self._ready: list[Received] = []

    # -- input ------------------------------------------------------------------------------
    def arrive(self, datagram: bytes, now: float, path: str, source=None) -> None:
        """A datagram read from the `path` socket: into that path's link."""
        self.datagrams_arrived[path] += 1
        self.links[path].submit(datagram, now, tag=source)

    def poll(self, now: float) -> None:
        """Move what the links release into the reassembler, and frames out of it."""
        for link in self.links.values():
            for datagram, source in link.due_tagged(now):
                self._accept(datagram, now, source)
        self._collect(self.reassembler.poll(now), now)
        for frame_id, pending in list(self._pending.items()):
            if now >= pending.first + self.wait:
                self._finish(frame_id)

    def flush(self, now: float) -> None:
        """The session is over (call it once `link_deadline()` is None, or what the links still
        hold stays there): every frame held is delivered as it is."""
        self.poll(now)
        self._collect(self.reassembler.flush(), now)
        for frame_id in list(self._pending):
            self._finish(frame_id)

    def link_deadline(self) -> float | None:
        """When a link next releases a datagram (None: nothing is in flight on the links)."""
        times = [t for t in (link.next_deadline() for link in self.links.values()) if t is not None]
        return min(times) if times else None

    def next_deadline(self) -> float | None:
        times = [t for t in (self.link_deadline(), self.reassembler.next_deadline()) if t is not None]
        times += [p.first + self.wait for p in self._pending.values()]
        return min(times) if times else None

    def take_ready(self) -> list[Received]:
        ready, self._ready = self._ready, []
        return ready

    # -- inside -----------------------------------------------------------------------------
    def _reject_reason(self, datagram: bytes) -> str | None:
        if len(datagram) < HEADER_SIZE + CRC_SIZE or datagram[:4] != MAGIC or not crc_ok(datagram):
            return None  # the reassembler names what is wrong with it
        header = peek_header(datagram)
        if header is None:
            return None
        kind, index = stream_kind(header.stream_id)
        if kind == "common" and index != self.group:
            return "wrong_group"
        if kind == "private" and index != self.user:
            return "wrong_user"
        if kind not in ("common", "private"):
            return "not_multiuser"
        if header.codec_id != self.codec_id:
            return "wrong_codec"
        if header.kb_version != self.kb_version:
            return "wrong_model"
        return None

    def _accept(self, datagram: bytes, now: float, source) -> None:
        reason = self._reject_reason(datagram)
        if reason is not None:
            self.rejected[reason] += 1
            return
        if self.reassembler.receive(datagram, now, source) is None:
            kind = stream_kind(int.from_bytes(datagram[10:12], "big"))[0]
            self.bytes_in[kind] += len(datagram)
            self.datagrams_in[kind] += 1

    def _collect(self, frames: list[Frame], now: float) -> None:
        for frame in frames:
            kind = stream_kind(frame.header.stream_id)[0]
            pending = self._pending.setdefault(frame.header.frame_id, _Pending(now))
            pending.frames[kind] = frame
            if len(pending.frames) == (2 if self.expects_common else 1):
                self._finish(frame.header.frame_id)

    def _finish(self, frame_id: int) -> None:
        pending = self._pending.pop(frame_id)
        private = pending.frames.get("private")
        common = pending.frames.get("common")
        known = private or common
        tiles = self._tiles(known)
        if tiles is None:
            self.rejected["wrong_geometry"] += 1
            return
        received = {}
        for kind, frame in (("common", common), ("private", private)):
            length = self.symbols[kind]
            if frame is None:
                received[kind] = (np.zeros((tiles, 2 * length), np.float32), np.ones((tiles, length), bool))
            else:
                received[kind] = frame_symbols(frame.latent, frame.received, tiles, length, frame.header.scale)
        header = known.header
        self._ready.append(Received(
            frame_id=frame_id, tiles=tiles,
            common=received["common"][0] if self.expects_common else None,
            common_erased=received["common"][1] if self.expects_common else None,
            private=received["private"][0], private_erased=received["private"][1],
            image_size=(header.image_height, header.image_width),
        ))

    def _tiles(self, frame: Frame) -> int | None:
        """Tiles in the frame's image, if its shape is what this model sends for that many."""
        kind = stream_kind(frame.header.stream_id)[0]
        return tiles_in(frame.header.dim0, frame.header.dim1, self.symbols[kind])


def simulate_offline(transmission: Transmission, receivers: dict[int, ReceiverCore], *,
                     joins: dict[int, int] | None = None,
                     extra: dict[int, list[tuple[str, bytes]]] | None = None) -> dict[int, list[Received]]:
    """The socket session on a virtual clock: every receiver gets the common datagrams of the
    group it joined (`joins`; default its own) and its own private ones (plus `extra` (path,
    datagram) pairs, e.g. hostile ones) in the order the sender sends them, at time 0; the links
    run until they are empty, then the session ends as the socket one does (`flush`)."""
    out = {}
    for user, core in receivers.items():
        group = (joins or {}).get(user, transmission.group_of(user))
        for datagram in transmission.common.get(group, []):
            core.arrive(datagram, 0.0, "common", "sender")
        for datagram in transmission.private[user]:
            core.arrive(datagram, 0.0, "private", "sender")
        for path, datagram in (extra or {}).get(user, []):
            core.arrive(datagram, 0.0, path, "sender")
        now = 0.0
        while (deadline := core.link_deadline()) is not None:
            now = max(now, deadline)
            core.poll(now)
        core.flush(now)
        out[user] = core.take_ready()
    return out
