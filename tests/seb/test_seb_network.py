"""The seb sequence over the network: KB updates in band, sockets = virtual clock, hostile input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from netsem.seb.kb_update import UpdatePolicy
from netsem.seb.network import make_pair, run_offline, run_udp
from netsem.seb.session import SequenceOptions
from packetizers.frames import StreamFrame
from packetizers.kinds import MessageType, PartitionKind
from packetizers.packetizer import Packetizer
from packetizers.wire import FIXED_HEADER_STRUCT, Header

# every message asks for an update (trigger 0), so a six-message run carries several
EAGER = UpdatePolicy(trigger=0.0, cooldown=1, window=2, candidates=8)


def _header(d: bytes) -> Header:
    return Header(*FIXED_HEADER_STRUCT.unpack_from(d))


def test_sockets_and_virtual_clock_agree(seb_images):
    options = SequenceOptions(netem="loss random 10%", seed=4, policy=EAGER, mtu=1200, repeat=3)
    offline = run_offline(seb_images, options)
    udp = run_udp(seb_images, options)
    assert [r.psnr for r in offline.rows] == [r.psnr for r in udp.rows]
    assert offline.counts == udp.counts and offline.applied == udp.applied
    assert offline.applied, "the eager policy makes updates"
    assert [r.kb_version for r in offline.rows] == [r.kb_version for r in udp.rows]


def test_updates_ride_ahead_and_keep_both_ends_in_step(seb_images):
    options = SequenceOptions(seed=1, policy=EAGER, repeat=2)
    sender, receiver = make_pair(options)
    later_copies = 0
    for k, (_, image) in enumerate(seb_images):
        datagrams = sender.message(image)
        types = [_header(d).msg_type for d in datagrams]
        # update copies first, then the frame (all of it coded with the sender's current version)
        assert types == sorted(types, reverse=True)
        data_versions = {_header(d).kb_version for d in datagrams if _header(d).msg_type == MessageType.DATA}
        assert data_versions == {sender.sent[-1].kb_version}
        later_copies += sum(1 for d in datagrams
                            if _header(d).msg_type == MessageType.KB_UPDATE and _header(d).frame_id & 0x7F)
        for d in datagrams:
            receiver.arrive(d, 0.05 * k)
        receiver.poll(0.05 * k)
    receiver.flush(10.0)
    made = [s.update.new_version for s in sender.sent if s.update is not None]
    assert receiver.applied == made[:-1]  # the last update has no frame after it to ride ahead of
    assert receiver.counts["update_duplicate"] == later_copies  # every datagram of a second copy
    assert all(r.image is not None for r in receiver.results.values())
    assert receiver.kbs[receiver.applied[-1]].version == receiver.applied[-1]


def test_copies_of_an_update_complete_each_other(seb_images):
    """Copy 1 loses its first datagram, copy 2 its second: neither is whole, together they are.
    The sender codes with the new version only after the last copy, so nothing is rejected."""
    options = SequenceOptions(seed=2, policy=UpdatePolicy(trigger=0.0, cooldown=100), repeat=2)
    sender, receiver = make_pair(options)
    dropped = []
    for k, (_, image) in enumerate(seb_images[:4]):
        for d in sender.message(image):
            h = _header(d)
            copy = h.frame_id & 0x7F
            if h.msg_type == MessageType.KB_UPDATE and h.datagram_index == copy and copy < 2:
                dropped.append((copy, h.datagram_count))
                continue
            receiver.arrive(d, 0.05 * k)
        receiver.poll(0.05 * k)
    receiver.flush(10.0)
    assert [c for c, _ in dropped] == [0, 1] and dropped[0][1] >= 2, dropped
    assert receiver.applied == [2] and receiver.counts["update_incomplete"] == 0
    assert [s.kb_version for s in sender.sent] == [1, 1, 2, 2]  # made after message 0, in use from message 2
    assert receiver.counts["kb_version_mismatch"] == 0
    assert all(receiver.results[s.frame_id].image is not None for s in sender.sent)


def test_hostile_datagrams_are_counted_with_a_reason(seb_images):
    options = SequenceOptions(seed=3, updates=False)
    sender, receiver = make_pair(options)
    first = sender.message(seb_images[0][1])
    # a data datagram that names a KB version nobody has
    wrong = bytearray(first[0])
    wrong[12:14] = (77).to_bytes(2, "big")  # kb_version
    from packetizers.wire import with_crc

    forged_version = with_crc(bytes(wrong[:-4]))
    # a KB update that does not apply (base version 9) and one that does not parse
    bad_base = StreamFrame((bytes.fromhex("0009000a00000001040000") + b"\x00\x00",), image_size=(0, 0), kb_version=10)
    garbage = StreamFrame((b"\xff" * 40,), image_size=(0, 0), kb_version=11)
    packetizer = Packetizer(PartitionKind.SEGMENT)
    hostile = [forged_version, *packetizer.packetize(bad_base, 900, MessageType.KB_UPDATE),
               *packetizer.packetize(garbage, 901, MessageType.KB_UPDATE), b"\x00" * 30]
    for d in hostile + first:
        receiver.arrive(d, 0.0)
    receiver.flush(5.0)
    assert receiver.counts["kb_version_mismatch"] == 1
    assert receiver.counts["update_rejected"] == 2
    assert any("does not apply to version 1" in e for e in receiver.update_errors)
    assert any("does not parse" in e for e in receiver.update_errors)
    assert sum(receiver.data.rejected.values()) == 1  # the 30 zero bytes, named by the reassembler
    (result,) = [r for r in receiver.results.values() if r.image is not None]
    assert result.kb_version == 1


def test_options_are_checked():
    with pytest.raises(ValueError, match="protect"):
        SequenceOptions(protect="triple")
    with pytest.raises(ValueError, match="needs phy"):
        SequenceOptions(phy_important="siso awgn snr 3dB ldpc 1/2")
    with pytest.raises(ValueError, match="at least once"):
        SequenceOptions(repeat=0)
    assert dataclasses.replace(SequenceOptions(), protect="dup").protect == "dup"


def test_phy_uep_over_sockets_matches_the_virtual_clock(seb_images):
    """Message-wise UEP at the PHY stage: importance-1 datagrams at LDPC 1/2, the rest at 2/3, at an
    SNR where only the former get through; the socket run and the offline run agree."""
    options = SequenceOptions(phy="siso awgn snr 2dB ldpc 2/3 qpsk", phy_important="siso awgn snr 2dB ldpc 1/2 qpsk",
                              updates=False, seed=6)
    offline = run_offline(seb_images[:3], options)
    udp = run_udp(seb_images[:3], options)
    assert [r.psnr for r in offline.rows] == [r.psnr for r in udp.rows]
    stats = offline.phy_stats
    assert stats["channel_uses_class0"] > 0 and stats["channel_uses_class1"] > 0
    assert stats["delivered"] >= 3 and all(r.psnr is not None for r in offline.rows)  # class 1 of every frame
    assert stats["crc_failed"] >= 3  # class 0 does not survive 2 dB at rate 2/3


def test_a_receiver_that_lost_every_copy_catches_up_from_a_snapshot(seb_images):
    """Every copy of update v2 lost: frames coded with v2 (and v3, whose update needs v2) are
    rejected with their reason until a snapshot (the whole KB) arrives; from then on all decode."""
    from netsem.seb.kb_update import KbUpdate

    options = SequenceOptions(seed=5, policy=UpdatePolicy(trigger=0.0, cooldown=1, window=2, candidates=8),
                              repeat=1, snapshot_every=3)
    sender, receiver = make_pair(options)
    for k, (_, image) in enumerate(seb_images):
        for d in sender.message(image):
            h = _header(d)
            if h.msg_type == MessageType.KB_UPDATE and h.kb_version == 2 and not h.frame_id & 0x80:
                continue  # the only copy of update 1 -> 2 is lost
            receiver.arrive(d, 0.05 * k)
        receiver.poll(0.05 * k)
    receiver.flush(10.0)
    assert receiver.counts["snapshots_applied"] >= 1
    assert receiver.counts["update_rejected"] >= 1  # v2 -> v3 could not apply before the snapshot
    results = [receiver.results[s.frame_id] for s in sender.sent]
    assert results[1].image is None and "KB version 2" in results[1].error
    first_snapshot = 2  # snapshot_every=3: it rides ahead of message index 2
    assert all(r.image is not None for r in results[first_snapshot:])
    # the snapshot is the whole KB: both ends hold the same Sebs
    kb = sender.codec.kb
    again = KbUpdate.from_bytes(KbUpdate.snapshot(kb).to_bytes()).apply(kb)
    assert np.array_equal(again.fine.active, kb.fine.active) and np.allclose(again.fine.sebs[again.fine.active],
                                                                             kb.fine.sebs[kb.fine.active], atol=1e-2)
