"""A sequence of images sent with the `seb` codec, KB updates in band: the sans-I/O cores.

    sender = SebSender(codec, options)              # its own KB copy; updates when asked
    datagrams = sender.message(image)               # update copies (if any), then the frame
    receiver = SebReceiver(codec, options)          # its own KB copy, the emulated path inside
    receiver.arrive(datagram, now); receiver.poll(now); receiver.flush(now)
    receiver.results                                # per message: frame id, image or why not

The sender encodes each image with the KB version in use, then (updates on) lets the
`KbUpdater` look at it; an update's message rides ahead of each of the next `repeat` frames
(the update's loss survival: repetition; each copy has its own frame id) and the sender codes
with the new version only from the frame its last copy rides ahead of, so a receiver has had
every copy before it needs one. With
`snapshot_every` N the whole KB also rides ahead of every N-th message, so a receiver that
lost every copy of an update (and so cannot apply the later ones) catches up. A receiver gathers
an update segment by segment from all its copies (`assembly.UpdateAssembler`: a copy that lost
a datagram is completed by the next), applies it the moment it is whole, counts the datagrams
of versions it holds as duplicates, keeps its last `KEEP_VERSIONS` KB
versions (a frame that waits for its timeout still decodes with the KB it was coded with),
and rejects a data datagram that names any other version (`kb_version_mismatch`, before it
reaches a reassembler): never a decode against the wrong Sebs. `protect="dup"` sends every importance-1 datagram
twice (packet-level UEP by duplication; the reassembler drops the second copy).

The receiver's emulated path is one `Link` (netem words, then the PHY stage, with message-wise
UEP when `phy_important` is given): what the offline run and the socket run put through it is
the same datagrams in the same order, so with time-independent impairments they agree.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from emulator.grammar import parse_netem
from emulator.link import Link
from netsem.codecs.base import CodecError
from netsem.codecs.registry import codec_id_of
from netsem.pipeline.frames import payload_budget, received_frame
from packetizers.frames import StreamFrame
from packetizers.kinds import MessageType, PartitionKind
from packetizers.packetizer import Packetizer
from packetizers.reassembler import Reassembler, ReassemblerLimits
from packetizers.wire import FIXED_HEADER_STRUCT, HEADER_SIZE, MAGIC, Header, importance_of

from .assembly import SNAPSHOT_ID, UpdateAssembler
from .codec import Encoded, SebCodec
from .kb import KbError
from .kb_update import SNAPSHOT_BASE, KbUpdate, KbUpdater, UpdatePolicy

PROTECTIONS = ("none", "dup")
KEEP_VERSIONS = 16
MSG_TYPE_OFFSET = 5  # magic (4) + version (1)


@dataclass(frozen=True)
class SequenceOptions:
    netem: str = ""
    phy: str = ""  # PHY spec for every datagram (class 0 when phy_important is given); "" = none
    phy_important: str = ""  # PHY spec for importance-1 datagrams (message-wise UEP)
    protect: str = "none"  # packet-level UEP: "dup" sends importance-1 datagrams twice
    updates: bool = True
    repeat: int = 2  # frames an update rides ahead of
    snapshot_every: int = 0  # with updates on: the whole KB ahead of every N-th message (0: never)
    mtu: int = 1200
    seed: int = 0
    policy: UpdatePolicy = field(default_factory=UpdatePolicy)

    def __post_init__(self) -> None:
        if self.protect not in PROTECTIONS:
            raise ValueError(f"protect {self.protect!r}, expected one of {', '.join(PROTECTIONS)}")
        if self.repeat < 1:
            raise ValueError("an update is sent at least once (repeat >= 1)")
        if self.snapshot_every < 0:
            raise ValueError("snapshot_every is a number of messages (0: no snapshots)")
        if self.phy_important and not self.phy:
            raise ValueError("phy_important needs phy (the spec of the other datagrams)")


def build_link(options: SequenceOptions) -> Link:
    stages = []
    if options.phy:
        from netsem.phy.stage import importance_phy_stage, phy_stage

        stages.append(importance_phy_stage(options.phy, options.phy_important, options.seed) if options.phy_important
                      else phy_stage(options.phy, options.seed))
    return Link(parse_netem(options.netem), seed=options.seed, stages=stages)


def update_frame(update: KbUpdate, budget: int, codec_id: int) -> StreamFrame:
    data = update.to_bytes()
    return StreamFrame.cut(data, list(range(0, len(data), budget)), codec_id=codec_id, kb_version=update.new_version)


@dataclass
class SentMessage:
    index: int
    frame_id: int
    kb_version: int
    encoded: Encoded
    data_bytes: int
    update_bytes: int  # update copies sent ahead of this frame
    protection_bytes: int  # duplicated datagrams
    distortion: float | None  # eq. 5 after this message (updates on)
    update: KbUpdate | None  # made after this message


class SebSender:
    def __init__(self, codec: SebCodec, options: SequenceOptions, first_frame_id: int = 1) -> None:
        self.codec = codec
        self.options = options
        self.codec_id = codec_id_of(codec)
        self.budget = payload_budget(options.mtu)
        self.packetizer = Packetizer(PartitionKind.SEGMENT, seed=options.seed, mtu=options.mtu)
        self.updater = KbUpdater(codec.kb.copy(), options.policy, seed=options.seed) if options.updates else None
        self.next_frame_id = first_frame_id
        self.sent: list[SentMessage] = []
        self._pending: list[tuple[KbUpdate, int, object]] = []  # (update, copies sent, the KB it makes)
        self._snapshots: dict[int, KbUpdate] = {}

    def message(self, image: np.ndarray) -> list[bytes]:
        """Every datagram of the next message, in sending order: the pending update copies (a
        version is used for coding once its last copy is out, so receivers have had every copy
        before the first frame that needs it), a snapshot when due, then the frame."""
        import dataclasses

        out: list[bytes] = []
        update_bytes = 0
        for k, (update, copies, kb) in enumerate(self._pending):
            copy = update_frame(update, self.budget, self.codec_id)
            datagrams = self.packetizer.packetize(copy, (update.new_version << 8) | copies, MessageType.KB_UPDATE)
            out += datagrams
            update_bytes += sum(map(len, datagrams))
            self._pending[k] = (update, copies + 1, kb)
            if copies + 1 == self.options.repeat:
                self.codec.kb = kb  # in order: updates chain
        self._pending = [(u, c, kb) for u, c, kb in self._pending if c < self.options.repeat]
        every = self.options.snapshot_every
        if self.updater is not None and every and len(self.sent) % every == every - 1 and self.codec.kb.version != 1:
            version = self.codec.kb.version
            if version not in self._snapshots:  # built once per version
                self._snapshots = {version: KbUpdate.from_bytes(KbUpdate.snapshot(self.codec.kb).to_bytes())}
            copy = update_frame(self._snapshots[version], self.budget, self.codec_id)
            datagrams = self.packetizer.packetize(copy, (version << 8) | SNAPSHOT_ID | (len(self.sent) // every & 0x7F),
                                                  MessageType.KB_UPDATE)
            out += datagrams
            update_bytes += sum(map(len, datagrams))
        encoded = self.codec.encode(image, self.budget)
        frame = dataclasses.replace(encoded.frame, codec_id=self.codec_id)
        frame_id = self.next_frame_id
        self.next_frame_id += 1
        datagrams = self.packetizer.packetize(frame, frame_id)
        out += datagrams
        extra = [d for d in datagrams if importance_of(d) >= 1] if self.options.protect == "dup" else []
        out += extra
        update = None
        if self.updater is not None:
            update = self.updater.observe(encoded)
            if update is not None:
                self._pending.append((update, 0, self.updater.kb))
        self.sent.append(SentMessage(len(self.sent), frame_id, frame.kb_version, encoded, sum(map(len, datagrams)),
                                     update_bytes, sum(map(len, extra)),
                                     self.updater.distortions[-1] if self.updater else None, update))
        return out


@dataclass
class ReceivedMessage:
    frame_id: int
    image: np.ndarray | None
    error: str | None
    datagrams: int
    kb_version: int


class SebReceiver:
    def __init__(self, codec: SebCodec, options: SequenceOptions, limits: ReassemblerLimits | None = None) -> None:
        self.codec = codec
        self.link = build_link(options)
        limits = limits or ReassemblerLimits(frame_timeout=1.0)
        self.data = Reassembler(limits)
        self.updates = UpdateAssembler(KEEP_VERSIONS)
        self.counts: Counter[str] = Counter()
        self.results: dict[int, ReceivedMessage] = {}
        self.kbs = {codec.kb.version: codec.kb}  # the versions it can decode, oldest first
        self._current_clock = -1  # the sender's message counter when the current KB was made
        self.applied: list[int] = []  # versions, in the order they were applied
        self.update_errors: list[str] = []

    def arrive(self, datagram: bytes, now: float) -> None:
        self.counts["arrived"] += 1
        self.link.submit(datagram, now)

    def poll(self, now: float) -> None:
        for datagram in self.link.due(now):
            self._route(datagram, now)
        self._decode(self.data.poll(now))

    def flush(self, now: float) -> None:
        self.poll(now)
        self.counts["update_incomplete"] += self.updates.in_progress  # messages still missing a segment
        self._decode(self.data.flush())

    def next_deadline(self) -> float | None:
        times = [t for t in (self.link.next_deadline(), self.data.next_deadline()) if t is not None]
        return min(times) if times else None

    @property
    def rejected(self) -> Counter[str]:
        """Every datagram or frame turned away, by reason."""
        out = Counter({k: v for k, v in self.counts.items() if k not in ("arrived", "updates_applied")})
        out.update(self.data.rejected)
        out.update(self.updates.rejected)
        return out

    def _route(self, datagram: bytes, now: float) -> None:
        if len(datagram) >= HEADER_SIZE and datagram[:4] == MAGIC and datagram[MSG_TYPE_OFFSET] == MessageType.KB_UPDATE:
            header = Header(*FIXED_HEADER_STRUCT.unpack_from(datagram))
            if header.kb_version in self.kbs:
                self.counts["update_duplicate"] += 1  # a datagram of a version already held
                return
            whole = self.updates.receive(datagram)
            if whole is not None:
                self._apply(whole[1])  # at once: before the frame the update rides ahead of
            return
        if len(datagram) >= HEADER_SIZE and datagram[:4] == MAGIC:
            header = Header(*FIXED_HEADER_STRUCT.unpack_from(datagram))
            if header.msg_type == MessageType.DATA and header.kb_version not in self.kbs:
                self.counts["kb_version_mismatch"] += 1
                if header.frame_id not in self.results:
                    self.results[header.frame_id] = ReceivedMessage(
                        header.frame_id, None, f"rejected: coded with KB version {header.kb_version}, the receiver "
                        f"holds {sorted(self.kbs)} (the update was lost)", 0, header.kb_version)
                return
        self.data.receive(datagram, now)

    def _apply(self, message: bytes) -> None:
        try:
            update = KbUpdate.from_bytes(message)
            made = update.apply(self.codec.kb)
        except KbError as error:
            self.counts["update_rejected"] += 1
            self.update_errors.append(str(error))
            return
        if update.base_version == SNAPSHOT_BASE:
            self.counts["snapshots_applied"] += 1
        if update.clock >= self._current_clock:  # a late snapshot of an older version is kept, not adopted
            self.codec.kb, self._current_clock = made, update.clock
        self.kbs[update.new_version] = made
        while len(self.kbs) > KEEP_VERSIONS:
            del self.kbs[next(iter(self.kbs))]
        self.applied.append(update.new_version)
        self.counts["updates_applied"] += 1

    def _decode(self, frames) -> None:
        for frame in frames:
            header = frame.header
            try:
                kb = self.kbs.get(header.kb_version)
                codec = self.codec if kb is None else self.codec.using(kb)
                image = codec.from_frame(received_frame(frame))
                error = None
            except CodecError as e:
                image, error = None, str(e)
                self.counts["frame_undecodable"] += 1
            self.results[header.frame_id] = ReceivedMessage(header.frame_id, image, error, frame.datagrams_received,
                                                            header.kb_version)
