"""The air between the uplink users and the base station, as an emulator stage (sans-I/O).

`netsem emulate --stage "noma channel=awgn snr=10dB powers=0.8,0.2 seed=1"` (or `Link(...,
stages=[SuperpositionStage(spec)])` on the virtual clock): every user's datagram of a slot —
same frame id and datagram index, hence the same tokens — is held until the slot's K users
have all reached the air, then the K datagrams become one: the superposed, faded, noisy
received signal of those symbols, y = sum_k g_k s_k + n (the frame's channel realisation,
`AirSpec.uplink`, a function of the seed and the frame id alone), scaled to unit average power
and sent on as a (SUPERPOSED, K) datagram in the place of the slot's last user datagram. The
users' datagrams that wait are dropped with the note "held for superposition": that is what a
capture shows for them. Because the noise of a symbol is the frame's noise at that symbol's
index, the result does not depend on the order the users' datagrams arrive in: two sender
processes over sockets give the result of the virtual clock.

Rejected (dropped, with the reason as the note and in `stats`): a datagram of another codec or
stream kind (`not_uplink`), a user outside the spec's K, a bad CRC, a duplicate of a user's
datagram in a slot. A slot is known by its frame id, datagram index, frame-wide fields (but the
user) and token list together, so a forged or stray datagram that claims a slot with other
fields waits in a slot of its own and cannot block the real one. At most `max_slots` slots
wait; beyond that the oldest is given up (`incomplete`): its symbols are lost for every user,
the base station sees them as erased.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field

import numpy as np

from emulator.stages import StageOutcome
from netsem.multiuser.streams import SYMBOLS_PER_TOKEN
from netsem.semnoma.config import AirSpec
from packetizers.bitpack import pack, unpack
from packetizers.kinds import STREAM_INDEX_MASK, STREAM_KIND_SHIFT, Layout, StreamKind
from packetizers.wire import HEADER_SIZE, Header, UNIT_ID_SIZE, crc_ok, peek_header, rewrite_header, with_crc

MAX_SLOTS = 4096
FIRST_PER_DATAGRAM = Header._fields.index("importance")


@dataclass
class _Slot:
    symbols: dict[int, np.ndarray] = field(default_factory=dict)  # user -> (units, 16) complex


class SuperpositionStage:
    name = "noma"

    def __init__(self, spec: AirSpec, max_slots: int = MAX_SLOTS) -> None:
        from netsem.semnoma.streams import codec_id

        self.spec = spec
        self.codec = codec_id()
        self.max_slots = max_slots
        self.slots: OrderedDict[tuple, _Slot] = OrderedDict()
        self.stats: Counter[str] = Counter()
        self._frames: OrderedDict[tuple, tuple[np.ndarray, np.ndarray, float]] = OrderedDict()

    def process(self, datagram: bytes, time: float) -> StageOutcome:
        header = peek_header(datagram)
        if header is None or not crc_ok(datagram):
            return self._reject("bad_datagram", "not a netsem datagram or a bad CRC")
        kind, user = header.stream_id >> STREAM_KIND_SHIFT, header.stream_id & STREAM_INDEX_MASK
        if header.codec_id != self.codec or kind != StreamKind.PRIVATE or header.layout != Layout.ND \
                or header.dim1 != 2 * SYMBOLS_PER_TOKEN or header.sub_count != 1:
            return self._reject("not_uplink", "not an uplink user's symbols (codec, stream kind or shape)")
        if user >= self.spec.users:
            return self._reject("unknown_user", f"user {user}: the air carries users 0..{self.spec.users - 1}")
        n = header.unit_count_here
        table = datagram[HEADER_SIZE:HEADER_SIZE + n * UNIT_ID_SIZE]
        payload = datagram[HEADER_SIZE + n * UNIT_ID_SIZE:HEADER_SIZE + n * UNIT_ID_SIZE + header.payload_len]
        count = n * 2 * SYMBOLS_PER_TOKEN
        if len(payload) * 8 < count * header.bit_width or header.unit_count * SYMBOLS_PER_TOKEN > 1 << 22:
            return self._reject("bad_datagram", "payload shorter than its tokens, or a frame too large")
        identity = header._replace(stream_id=0)[:FIRST_PER_DATAGRAM]  # the frame-wide fields but the user
        key = (header.frame_id, header.datagram_index, identity, table)
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = _Slot()
            while len(self.slots) > self.max_slots:
                self.slots.popitem(last=False)
                self.stats["incomplete"] += 1
        if user in slot.symbols:
            return self._reject("duplicate", f"user {user} already in frame {header.frame_id} "
                                             f"slot {header.datagram_index}")
        values = unpack(payload, count, header.bit_width, signed=True).astype(np.float64) * header.scale
        slot.symbols[user] = (values[0::2] + 1j * values[1::2]).reshape(n, SYMBOLS_PER_TOKEN)
        waiting = [k for k in range(self.spec.users) if k not in slot.symbols]
        if waiting:
            self.stats["held"] += 1
            return StageOutcome(None, f"held for superposition (frame {header.frame_id} slot "
                                      f"{header.datagram_index} waits for user {', '.join(map(str, waiting))})")
        del self.slots[key]
        units = np.frombuffer(table, dtype=">u4").astype(np.int64)
        received = self._superpose(header, units, slot)
        limit = (1 << (header.bit_width - 1)) - 1
        pairs = np.stack([received.real, received.imag], axis=-1).reshape(-1)
        quantized = np.clip(np.rint(pairs / header.scale), -limit, limit).astype(np.int64)
        body = datagram[:HEADER_SIZE] + table + pack(quantized, header.bit_width)
        from netsem.semnoma.streams import superposed_stream

        self.stats["superposed"] += 1
        return StageOutcome(rewrite_header(with_crc(body), stream_id=superposed_stream(self.spec.users)),
                            f"superposed users 0-{self.spec.users - 1} ({self.spec.channel}, {self.spec.snr_db:g} dB)")

    def _superpose(self, header, units: np.ndarray, slot: _Slot) -> np.ndarray:
        """The slot's received symbols (units, 16), unit average power; padding stays 0."""
        gains, noise, norm = self._frame(header)
        index = units[:, None] * SYMBOLS_PER_TOKEN + np.arange(SYMBOLS_PER_TOKEN)[None, :]
        inside = index < noise.size
        y = sum(gains[k] * slot.symbols[k] for k in range(self.spec.users))
        y = y + np.where(inside, noise[np.minimum(index, noise.size - 1)], 0)
        return np.where(inside, y / norm, 0)

    def _frame(self, header) -> tuple[np.ndarray, np.ndarray, float]:
        """The frame's gains, noise and normaliser (a few frames cached)."""
        key = (header.frame_id, header.image_height, header.image_width)
        if key not in self._frames:
            symbols = header.image_height * header.image_width // 2  # 16 reals per 4x4 pixels
            uplink = self.spec.uplink(header.frame_id, symbols)
            gains = uplink.gains[0].numpy().astype(np.complex128)
            self._frames[key] = (gains, uplink.noise[0].numpy().astype(np.complex128),
                                             float(np.sqrt(1 + np.sum(np.abs(gains) ** 2))))
            while len(self._frames) > 16:
                self._frames.popitem(last=False)
        return self._frames[key]

    def _reject(self, reason: str, note: str) -> StageOutcome:
        self.stats[reason] += 1
        return StageOutcome(None, note)


def stage_factory(options: dict[str, str], rng) -> SuperpositionStage:
    """`--stage "noma ..."`: the spec's seed comes from the options (the senders and the base
    station must name the same), not from the link's generator."""
    return SuperpositionStage(AirSpec.parse(options))
