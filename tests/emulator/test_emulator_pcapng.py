"""Our pcapng writer and capture reader: round trips, scapy and tshark agree, damage is reported.

The reader must give every good packet of a damaged file and then raise CaptureError, never
another exception and never a silent stop; the writer's files must open in scapy and real
tshark with the same nanosecond timestamps, comments, interfaces and payloads.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1Q, Ether, Loopback
from scapy.packet import Raw
from scapy.utils import rdpcap, wrpcap, wrpcapng

from emulator.capture_reader import CaptureError, NotACapture, UdpDatagram, decode_udp, read_capture
from emulator.fate import ARRIVAL, DEPARTURE, Fate
from emulator.pcap import EGRESS, INGRESS, CaptureWriter
from emulator.pcapng import FLUSH_BYTES, PcapngWriter

REPO = Path(__file__).resolve().parents[2]
MAC = "02:00:00:00:00:01"
T0 = 1_700_000_000_123_456_789  # ns since the epoch: every digit matters

# (payload, time_ns, src, dst, comment, interface): both IP versions, every payload and comment
# length modulo 4 (block padding), an empty comment, non-ASCII text
RECORDS = [
    (b"", T0, ("10.0.0.1", 5000), ("10.0.0.2", 47474), "sent", 1),
    (b"a", T0 + 1, ("::1", 40000), ("::1", 47474), "dropped: gemodel bad state", 0),
    (b"ab", T0 + 999, ("192.168.1.20", 65535), ("10.0.0.2", 0), "", 0),
    (b"abc", T0 + 10**9, ("2001:db8::1", 1), ("fe80::2", 2), "délai 23.4 ms", 1),
    (bytes(range(256)) * 5, T0 + 123_456_789_012, ("127.0.0.1", 40000), ("127.0.0.1", 47474), "corrupted bit 517", 1),
    (b"\xff" * 1201, T0 + 3, ("::ffff:127.0.0.1", 9), ("2001:db8::ffff", 7), "x", 0),
]


def write_records(path: Path, records=RECORDS) -> Path:
    with PcapngWriter(path, interfaces=("ingress", "egress")) as writer:
        for record in records:
            writer.write(*record)
    return path


def read_all(path: Path) -> tuple[list, CaptureError | None]:
    """The records before any damage, and the CaptureError (None when the file is whole)."""
    records = []
    try:
        for record in read_capture(path):
            records.append(record)
    except CaptureError as error:
        return records, error
    return records, None


def ones_complement_checksum(data: bytes) -> int:
    """RFC 1071, word by word: the independent reference for the writer's fast sums."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def test_round_trip_is_exact(tmp_path):
    records, error = read_all(write_records(tmp_path / "t.pcapng"))
    assert error is None and len(records) == len(RECORDS)
    for number, (record, (payload, time_ns, src, dst, comment, interface)) in enumerate(zip(records, RECORDS), 1):
        assert record.number == number and record.time_ns == time_ns
        assert record.interface == interface and record.interface_name == ("ingress", "egress")[interface]
        assert record.comments == ((comment,) if comment else ())
        assert record.link_type == 1
        udp = decode_udp(record.link_type, record.data)
        assert (udp.sport, udp.dport, udp.payload) == (src[1], dst[1], payload)
        assert (udp.src, udp.dst) == (_canonical(src[0]), _canonical(dst[0]))


def _canonical(address: str) -> str:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return socket.inet_ntop(family, socket.inet_pton(family, address))


def test_headers_have_correct_lengths_and_checksums(tmp_path):
    for record, (payload, *_rest) in zip(read_all(write_records(tmp_path / "t.pcapng"))[0], RECORDS):
        frame = record.data
        assert frame[:12] == bytes.fromhex("020000000001") * 2
        if frame[12:14] == b"\x08\x00":
            ip = frame[14:34]
            assert int.from_bytes(ip[2:4], "big") == 28 + len(payload)
            assert ones_complement_checksum(ip) == 0  # a correct header sums to 0xFFFF
            assert int.from_bytes(frame[38:40], "big") == 8 + len(payload) and frame[40:42] == b"\x00\x00"
        else:
            assert frame[12:14] == b"\x86\xdd"
            ip, udp = frame[14:54], frame[54:]
            assert int.from_bytes(ip[4:6], "big") == len(udp) == 8 + len(payload)
            pseudo = ip[8:40] + struct.pack(">IxxxB", len(udp), 17)
            assert udp[6:8] != b"\x00\x00" and ones_complement_checksum(pseudo + udp) == 0


@given(st.binary(max_size=3000), st.sampled_from(["10.1.2.3", "::1", "2001:db8::7"]), st.integers(0, 65535))
def test_checksums_hold_for_any_payload(payload, host, port):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "c.pcapng"
        write_records(path, [(payload, 5, (host, port), (host, 65535 - port), "", 0)])
        (record,), error = read_all(path)
    assert error is None and decode_udp(1, record.data).payload == payload
    frame = record.data
    if ":" in host:
        udp = frame[54:]
        assert ones_complement_checksum(frame[22:54] + struct.pack(">IxxxB", len(udp), 17) + udp) == 0
    else:
        assert ones_complement_checksum(frame[14:34]) == 0


def test_a_zero_sum_gives_the_ipv6_checksum_0xffff_never_0(tmp_path):
    """0 in a UDP checksum means "none", which IPv6 forbids: a sum of zero is sent as 0xFFFF."""
    src, dst = ("2001:db8::1", 1000), ("2001:db8::2", 2000)
    udp_header = struct.pack(">HHHH", src[1], dst[1], 10, 0)
    pseudo = socket.inet_pton(socket.AF_INET6, src[0]) + socket.inet_pton(socket.AF_INET6, dst[0]) + struct.pack(">IxxxB", 10, 17)
    partial = ~ones_complement_checksum(pseudo + udp_header) & 0xFFFF
    payload = (0xFFFF - partial).to_bytes(2, "big")  # completes the ones' complement sum to 0xFFFF
    (record,), _ = read_all(write_records(tmp_path / "z.pcapng", [(payload, T0, src, dst, "", 0)]))
    assert record.data[60:62] == b"\xff\xff"
    assert ones_complement_checksum(pseudo + record.data[54:]) == 0


def test_a_mixed_pair_maps_ipv4_into_ipv6(tmp_path):
    """The proxy names a 0.0.0.0 placeholder client before any has sent; its socket may be IPv6."""
    records, _ = read_all(write_records(tmp_path / "m.pcapng", [(b"m", T0, ("::1", 47000), ("0.0.0.0", 0), "", 0)]))
    assert decode_udp(1, records[0].data) == UdpDatagram("::1", 47000, "::ffff:0.0.0.0", 0, b"m")


def test_scapy_reads_our_file(tmp_path):
    packets = rdpcap(str(write_records(tmp_path / "t.pcapng")))
    assert len(packets) == len(RECORDS)
    for packet, (payload, time_ns, src, dst, comment, interface) in zip(packets, RECORDS):
        assert int(packet.time * 10**9) == time_ns
        assert packet.comments == ([comment.encode()] if comment else None)
        assert packet.sniffed_on == ("ingress", "egress")[interface]
        assert bytes(packet[UDP].payload) == payload and packet[UDP].dport == dst[1]
        # the same frame built by scapy, lengths and checksums computed by scapy
        if ":" in src[0]:
            headers = IPv6(src=src[0], dst=dst[0]) / UDP(sport=src[1], dport=dst[1])
        else:
            headers = IP(src=src[0], dst=dst[0], id=0) / UDP(sport=src[1], dport=dst[1], chksum=0)
        assert bytes(Ether(src=MAC, dst=MAC) / headers / Raw(payload)) == bytes(packet)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_reads_our_file_to_the_nanosecond(tmp_path):
    path = write_records(tmp_path / "t.pcapng")
    fields = ["frame.time_epoch", "frame.comment", "frame.interface_name", "udp.payload", "_ws.malformed",
              "ip.checksum.status", "udp.checksum.status", "_ws.expert.severity"]
    result = subprocess.run(
        ["tshark", "-r", str(path), "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
         "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", *(f"-e{f}" for f in fields)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    rows = [dict(zip(fields, line.split("\t"))) for line in result.stdout.splitlines()]
    assert len(rows) == len(RECORDS)
    good, not_present = "1", "3"  # Wireshark's checksum status values
    for row, (payload, time_ns, src, _dst, comment, interface) in zip(rows, RECORDS):
        assert Decimal(row["frame.time_epoch"]) * 10**9 == time_ns
        assert row["frame.comment"] == comment
        assert row["frame.interface_name"] == ("ingress", "egress")[interface]
        assert bytes.fromhex(row["udp.payload"]) == payload
        assert row["_ws.malformed"] == ""
        if ":" in src[0]:
            assert row["udp.checksum.status"] == good
        else:
            assert (row["ip.checksum.status"], row["udp.checksum.status"]) == (good, not_present)
        severities = [int(s) for s in row["_ws.expert.severity"].split(",") if s]
        assert all(s < 0x600000 for s in severities), row  # nothing at warning or error level


def test_writer_flushes_on_size_and_on_flush(tmp_path):
    path = tmp_path / "big.pcapng"
    with PcapngWriter(path) as writer:
        writer.write(b"x", T0, ("10.0.0.1", 1), ("10.0.0.2", 2))
        assert path.stat().st_size == 0  # buffered
        writer.flush()
        flushed = path.stat().st_size
        assert flushed > 0
        for i in range(FLUSH_BYTES // 1200 + 10):
            writer.write(bytes(1200), T0 + i, ("10.0.0.1", 1), ("10.0.0.2", 2), "sent")
        assert path.stat().st_size > flushed  # written without a flush: memory stays bounded
    assert len(read_all(path)[0]) == FLUSH_BYTES // 1200 + 11


def test_writer_rejects_what_it_cannot_write(tmp_path):
    with PcapngWriter(tmp_path / "r.pcapng", interfaces=("only",)) as writer:
        with pytest.raises(ValueError, match="interface 1"):
            writer.write(b"x", T0, ("10.0.0.1", 1), ("10.0.0.2", 2), interface=1)
        with pytest.raises(ValueError, match="does not fit"):
            writer.write(bytes(65508), T0, ("10.0.0.1", 1), ("10.0.0.2", 2))
        writer.write(bytes(65507), T0, ("10.0.0.1", 1), ("10.0.0.2", 2))  # the largest IPv4 UDP payload
    (record,), error = read_all(tmp_path / "r.pcapng")
    assert error is None and len(decode_udp(1, record.data).payload) == 65507


def test_capture_writer_puts_arrivals_on_ingress_and_departures_on_egress(tmp_path):
    path = tmp_path / "fates.pcapng"
    fates = [Fate(500_000_000, 0, 0, ARRIVAL, b"one", send_ns=500_000_000),
             Fate(520_000_001, 0, 0, DEPARTURE, b"one", send_ns=520_000_001, arrived_ns=500_000_000),
             Fate(750_000_000, 1, 0, ARRIVAL, b"two", cause="loss random")]
    outer, inner = (("10.0.0.1", 5000), ("10.0.0.2", 47000)), (("10.0.0.2", 6000), ("10.0.0.3", 47474))
    with CaptureWriter(path, clock_offset=1_700_000_000.0) as capture:
        capture.write_fates(fates, arrival=outer, departure=inner)
        capture.write(b"three", T0, *inner, "sent", EGRESS)
        capture.write(b"four", T0, *outer, comment="queued", interface=INGRESS)
    records, error = read_all(path)
    assert error is None
    assert [r.interface_name for r in records] == ["ingress", "egress", "ingress", "egress", "ingress"]
    assert [r.time_ns for r in records] == [1_700_000_000_500_000_000, 1_700_000_000_520_000_001,
                                             1_700_000_000_750_000_000, T0, T0]
    assert [r.comments for r in records] == [("queued",), ("delayed 20.0 ms",), ("dropped: loss random",),
                                             ("sent",), ("queued",)]
    udp = [decode_udp(r.link_type, r.data) for r in records]
    assert [(u.dport, u.payload) for u in udp] == [(47000, b"one"), (47474, b"one"), (47000, b"two"),
                                                   (47474, b"three"), (47000, b"four")]


def _block_starts(data: bytes) -> list[int]:
    """Offsets of the blocks of one of our (big-endian) files, and its length."""
    starts, position = [], 0
    while position < len(data):
        starts.append(position)
        position += int.from_bytes(data[position + 4:position + 8], "big")
    return starts + [len(data)]


def test_a_capture_cut_anywhere_gives_the_packets_before_the_cut_then_an_error(tmp_path):
    data = write_records(tmp_path / "whole.pcapng").read_bytes()
    whole, _ = read_all(tmp_path / "whole.pcapng")
    starts = _block_starts(data)
    packet_ends = starts[-len(RECORDS):]  # the last blocks are the packets; each ends where the next starts
    cut_path = tmp_path / "cut.pcapng"
    for cut in range(len(data)):
        cut_path.write_bytes(data[:cut])
        records, error = read_all(cut_path)
        expected = sum(end <= cut for end in packet_ends)
        assert records == whole[:expected], cut
        if cut in starts:
            assert error is None or (cut == 0 and isinstance(error, NotACapture)), cut  # a block boundary looks whole
        else:
            assert error is not None and error.packets == expected, cut
            assert error.offset == max(s for s in starts if s <= cut), cut
            assert str(error) == f"{error.problem} at byte {error.offset}, after {expected} packets"


@pytest.mark.parametrize("trailing", [False, True], ids=["leading length", "trailing length"])
def test_a_flipped_bit_in_any_block_length_is_reported_at_that_block(tmp_path, trailing):
    data = write_records(tmp_path / "whole.pcapng").read_bytes()
    whole, _ = read_all(tmp_path / "whole.pcapng")
    starts = _block_starts(data)
    damaged_path = tmp_path / "damaged.pcapng"
    for index, (start, end) in enumerate(zip(starts, starts[1:])):
        field = end - 4 if trailing else start + 4
        for bit in range(32):
            damaged = bytearray(data)
            damaged[field + bit // 8] ^= 0x80 >> (bit % 8)
            damaged_path.write_bytes(damaged)
            records, error = read_all(damaged_path)
            packets_before = max(0, index - (len(starts) - 1 - len(RECORDS)))
            assert error is not None and error.offset == start, (index, bit)
            assert records == whole[:packets_before] and error.packets == packets_before, (index, bit)


def test_bad_magics_and_versions(tmp_path):
    data = write_records(tmp_path / "whole.pcapng").read_bytes()
    path = tmp_path / "bad.pcapng"
    for position, problem in ((0, "not a pcap or pcapng file"), (8, "bad byte-order magic"), (12, "pcapng version")):
        damaged = bytearray(data)
        damaged[position] ^= 0x01
        path.write_bytes(damaged)
        records, error = read_all(path)
        assert records == [] and error.problem.startswith(problem) and error.offset == 0
    path.write_bytes(b"")
    assert isinstance(read_all(path)[1], NotACapture)


def _small_capture() -> bytes:
    with tempfile.TemporaryDirectory() as directory:
        return write_records(Path(directory) / "s.pcapng", RECORDS[:4]).read_bytes()


_SMALL_CAPTURE = _small_capture()


@given(st.data())
def test_random_damage_gives_records_or_a_capture_error_and_decoding_never_raises(data):
    whole = _SMALL_CAPTURE
    damaged = bytearray(whole)
    for _ in range(data.draw(st.integers(1, 8))):
        damaged[data.draw(st.integers(0, len(whole) - 1))] = data.draw(st.integers(0, 255))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "d.pcapng"
        path.write_bytes(bytes(damaged[: data.draw(st.integers(0, len(whole)))]))
        records, _error = read_all(path)  # anything but a CaptureError would propagate and fail
    for record in records:
        decode_udp(record.link_type, record.data)


def _scapy_frames() -> list:
    return [
        Ether(src=MAC, dst=MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1111, dport=47474) / Raw(b"over ethernet"),
        Ether(src=MAC, dst=MAC) / Dot1Q(vlan=7) / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2) / Raw(b"vlan v6"),
        # padded to Ethernet's 60 bytes, as a NIC does: IP's and UDP's lengths say where the datagram ends
        Ether(bytes(Ether(src=MAC, dst=MAC) / IP() / UDP(sport=3, dport=4) / Raw(b"x")).ljust(60, b"\x00")),
        Ether(src=MAC, dst=MAC) / IP() / Raw(b"not udp"),
    ]


@pytest.mark.parametrize("nano", [False, True], ids=["microseconds", "nanoseconds"])
def test_classic_pcap_written_by_scapy(tmp_path, nano):
    path = tmp_path / "scapy.pcap"
    frames = _scapy_frames()
    for i, frame in enumerate(frames):
        frame.time = Decimal("1700000000.123456789") + i
    wrpcap(str(path), frames, nano=nano)
    records, error = read_all(path)
    assert error is None and [r.number for r in records] == [1, 2, 3, 4]
    expected_times = [int(p.time * 10**9) for p in rdpcap(str(path))]
    assert [r.time_ns for r in records] == expected_times
    assert expected_times[0] == (1_700_000_000_123_456_789 if nano else 1_700_000_000_123_457_000)  # scapy rounds to the µs
    assert all(r.interface == 0 and r.interface_name is None and r.comments == () for r in records)
    udp = [decode_udp(r.link_type, r.data) for r in records]
    assert udp[0] == UdpDatagram("10.0.0.1", 1111, "10.0.0.2", 47474, b"over ethernet")
    assert udp[1] == UdpDatagram("2001:db8::1", 1, "2001:db8::2", 2, b"vlan v6")
    assert udp[2].payload == b"x" and len(records[2].data) == 60
    assert udp[3] is None


def test_pcapng_written_by_scapy_little_endian(tmp_path):
    path = tmp_path / "scapy.pcapng"
    frames = _scapy_frames()
    for i, frame in enumerate(frames):
        frame.time = 1_700_000_000.25 + i
        frame.comments = [b"first", b"second"] if i == 1 else None
    wrpcapng(str(path), frames)
    records, error = read_all(path)
    assert error is None and len(records) == 4
    assert [r.time_ns for r in records] == [int(p.time * 10**9) for p in rdpcap(str(path))]
    assert records[1].comments == ("first", "second")
    assert decode_udp(1, records[1].data).payload == b"vlan v6"


def _classic(order: str, magic: int, link_type: int, packets: list[tuple[int, int, bytes]]) -> bytes:
    data = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, link_type)
    for seconds, fraction, frame in packets:
        data += struct.pack(order + "IIII", seconds, fraction, len(frame), len(frame)) + frame
    return data


def test_classic_pcap_both_byte_orders_and_resolutions(tmp_path):
    frame = bytes(IP(src="1.2.3.4", dst="5.6.7.8") / UDP(sport=9, dport=10) / Raw(b"raw ip"))
    path = tmp_path / "c.pcap"
    for order in "<>":
        for magic, fraction, time_ns in ((0xA1B2C3D4, 654321, 1_700_000_000_654_321_000),
                                         (0xA1B23C4D, 987654321, 1_700_000_000_987_654_321)):
            path.write_bytes(_classic(order, magic, 101, [(1_700_000_000, fraction, frame)] * 2))
            records, error = read_all(path)
            assert error is None and [r.time_ns for r in records] == [time_ns] * 2
            assert decode_udp(records[0].link_type, records[0].data).payload == b"raw ip"
            path.write_bytes(_classic(order, magic, 101, [(1, 2, frame)])[:-1])  # cut inside the record
            records, error = read_all(path)
            assert records == [] and error.offset == 24 and error.packets == 0
    path.write_bytes(_classic("<", 0xA1B2C3D4, 1, []) + struct.pack("<IIII", 0, 0, 1 << 30, len(frame)) + frame)
    assert read_all(path)[1].problem == f"bad record length {1 << 30}"


def _option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + bytes(-len(value) % 4)


def _pcapng_block(order: str, block_type: int, body: bytes) -> bytes:
    return struct.pack(order + "II", block_type, len(body) + 12) + body + struct.pack(order + "I", len(body) + 12)


def _section(order: str) -> bytes:
    return _pcapng_block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def _idb(order: str, link_type: int, options: bytes = b"", snap_length: int = 0) -> bytes:
    return _pcapng_block(order, 1, struct.pack(order + "HHI", link_type, 0, snap_length) + options)


def _epb(order: str, interface: int, units: int, frame: bytes, options: bytes = b"") -> bytes:
    body = struct.pack(order + "5I", interface, units >> 32, units & 0xFFFFFFFF, len(frame), len(frame))
    return _pcapng_block(order, 6, body + frame + bytes(-len(frame) % 4) + options)


def test_pcapng_resolutions_offsets_old_blocks_and_sections(tmp_path):
    ip = bytes(IP(src="1.2.3.4", dst="5.6.7.8") / UDP(sport=9, dport=10) / Raw(b"payload"))
    sll2 = struct.pack(">HHIHBB8s", 0x0800, 0, 1, 1, 0, 6, bytes(8)) + ip
    data = (
        _section(">")
        + _idb(">", 101, _option(">", 2, b"binary") + _option(">", 9, bytes([0x80 | 20]))
               + _option(">", 14, struct.pack(">q", 1_700_000_000)))  # 2^-20 s units, dated by the offset
        + _idb(">", 228)  # no name, no resolution: microseconds
        + _epb(">", 0, 3 << 19, ip)  # 1.5 s
        + _pcapng_block(">", 0x0BAD, b"a custom block, skipped.")
        + _epb(">", 1, 1_700_000_000_000_001, ip, _option(">", 1, b"a") + _option(">", 1, b"b") + bytes(4))
        + _section("<")  # a second section, little-endian: interfaces start again
        + _idb("<", 276, _option("<", 2, b"cooked") + _option("<", 9, bytes([12])), snap_length=30)  # picoseconds
        + _epb("<", 0, 5_000_000_001_999, sll2)
        + _pcapng_block("<", 2, struct.pack("<HH4I", 0, 0, 0, 5_000_000, len(sll2), len(sll2)) + sll2
                        + bytes(-len(sll2) % 4))  # the obsolete Packet Block
        + _pcapng_block("<", 3, struct.pack("<I", len(sll2)) + sll2 + bytes(-len(sll2) % 4))  # Simple Packet Block
    )
    path = tmp_path / "variants.pcapng"
    path.write_bytes(data)
    records, error = read_all(path)
    assert error is None
    assert [r.time_ns for r in records] == [1_700_000_001_500_000_000, 1_700_000_000_000_001_000,
                                            5_000_000_001, 5_000, None]  # picoseconds rounded down
    assert [(r.interface, r.interface_name, r.link_type) for r in records] == [
        (0, "binary", 101), (1, None, 228), (0, "cooked", 276), (0, "cooked", 276), (0, "cooked", 276)]
    assert records[1].comments == ("a", "b")
    assert [decode_udp(r.link_type, r.data).payload for r in records[:4]] == [b"payload"] * 4
    assert len(records[4].data) == 30  # the snap length bounds a Simple Packet Block
    path.write_bytes(_section(">") + _epb(">", 0, 0, ip))
    assert read_all(path)[1].problem == "a packet of interface 0, but the section describes 0"
    path.write_bytes(_section(">") + _idb(">", 1) + _epb(">", 0, 0, ip, struct.pack(">HH", 1, 200)))
    assert read_all(path)[1].problem == "option 1 of 200 bytes overruns its block"


def test_decoder_link_types_and_ip_details():
    ip = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5, dport=6) / Raw(b"data")
    v6 = IPv6(src="::1", dst="::2") / UDP(sport=7, dport=8) / Raw(b"six")
    expected4, expected6 = UdpDatagram("10.0.0.1", 5, "10.0.0.2", 6, b"data"), UdpDatagram("::1", 7, "::2", 8, b"six")
    assert decode_udp(1, bytes(Ether(src=MAC, dst=MAC) / Dot1Q() / Dot1Q() / ip)) == expected4  # QinQ
    assert decode_udp(101, bytes(ip)) == expected4 and decode_udp(101, bytes(v6)) == expected6
    assert decode_udp(228, bytes(ip)) == expected4 and decode_udp(228, bytes(v6)) is None
    assert decode_udp(229, bytes(v6)) == expected6 and decode_udp(229, bytes(ip)) is None
    assert decode_udp(113, bytes(CookedLinux() / ip)) == expected4
    assert decode_udp(276, bytes(CookedLinuxV2() / v6)) == expected6
    assert decode_udp(0, bytes(Loopback(type=2) / ip)) == expected4  # host byte order, either one
    assert decode_udp(0, struct.pack(">I", 30) + bytes(v6)) == expected6
    assert decode_udp(0, struct.pack("<I", 10) + bytes(v6)) == expected6
    assert decode_udp(1, bytes(Ether(src=MAC, dst=MAC) / IP(options=b"\x01\x01\x01\x00") / UDP(sport=5, dport=6) / Raw(b"opt"))).payload == b"opt"
    hop_by_hop = IPv6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment(offset=0, m=1) / UDP(sport=1, dport=2) / Raw(b"frag0")
    assert decode_udp(101, bytes(hop_by_hop)).payload == b"frag0"
    assert decode_udp(101, bytes(IPv6() / IPv6ExtHdrFragment(offset=4) / Raw(b"later fragment payload"))) is None
    assert decode_udp(101, bytes(IP(flags=0, frag=4, proto=17) / Raw(b"later fragment payload"))) is None
    whole = bytes(ip)
    assert decode_udp(101, whole[:-2]).payload == b"da"  # captured short of what UDP declares
    assert decode_udp(101, whole + b"trailer").payload == b"data"  # padding after what IP declares
    assert decode_udp(147, whole) is None  # a link type we do not decode


@pytest.mark.parametrize("link_type", [0, 1, 101, 113, 228, 229, 276, 9999])
@given(st.binary(max_size=120))
def test_decoder_never_raises(link_type, data):
    decode_udp(link_type, data)
    for prefix in (b"\x45", b"\x60", b"\x02\x00\x00\x00\x45", bytes(12) + b"\x08\x00\x45"):
        decode_udp(link_type, prefix + data)


def test_emulator_and_reader_import_no_scapy():
    code = ("import sys, emulator.pcap, emulator.pcapng, emulator.capture_reader, emulator.proxy;"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('scapy', 'torch', 'netsem')]; print(bad); sys.exit(bool(bad))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
