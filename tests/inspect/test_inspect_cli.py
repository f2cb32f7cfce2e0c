"""`netsem inspect` names exactly the datagrams and units a capture lost."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from emulator.capture_reader import read_capture
from netsem.inspect.capture import read_packets
from netsem.inspect.cli import inspect
from netsem.inspect.report import inspect_capture
from netsem.inspect.summary import format_ranges, missing_ranges, ranges_of


def test_lost_units_match_the_packetizer_plan(known_capture):
    inspection = inspect_capture(known_capture.path)
    frames = {frame["frame_id"]: frame for frame in inspection.frames}
    assert set(frames) == set(known_capture.lost_units)
    for frame_id, lost in known_capture.lost_units.items():
        frame = frames[frame_id]
        assert frame["units_lost_list"] == format_ranges(ranges_of(lost))
        assert frame["units_lost"] == len(lost)
        assert frame["units_received"] == known_capture.unit_counts[frame_id] - len(lost)
        assert frame["datagrams_expected"] == known_capture.datagram_counts[frame_id]


def test_a_byte_stream_frame_counts_the_bytes_of_its_lost_segments(known_capture):
    frame = next(f for f in inspect_capture(known_capture.path).frames if f["layout"] == "bytes")
    lengths = known_capture.segment_lengths[frame["frame_id"]]
    lost = known_capture.lost_units[frame["frame_id"]]
    assert lost and frame["unit_name"] == "segments"
    assert frame["elements_lost"] == sum(lengths[unit] for unit in lost)


def test_every_packet_is_accounted_for(known_capture):
    inspection = inspect_capture(known_capture.path)
    assert len(inspection.datagrams) == len(known_capture.netsem)
    assert len(inspection.malformed) == known_capture.malformed_packets
    assert inspection.packets == len(known_capture.netsem) + known_capture.other_packets + known_capture.malformed_packets
    assert sum(inspection.skipped.values()) == known_capture.other_packets + known_capture.malformed_packets
    rows = {row["packet"]: row for row in inspection.datagrams}
    for captured in known_capture.netsem:
        assert rows[captured.packet_number]["comment"] == captured.comment
        assert rows[captured.packet_number]["received"] == captured.delivered


def test_plain_output_names_lost_units_compactly(known_capture):
    result = CliRunner().invoke(inspect, [str(known_capture.path)])
    assert result.exit_code == 0, result.output
    assert "channels lost: 2, 9-10, 15" in result.output
    assert "channels lost: 0-1 (partial: 0 4/5 slices, 1 4/5 slices)" in result.output
    assert "blocks lost: none" in result.output
    assert "corrupted bit 517" in result.output and "dropped: gemodel bad state" in result.output


def test_json_output(known_capture):
    result = CliRunner().invoke(inspect, [str(known_capture.path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["netsem_datagrams"] == len(known_capture.netsem)
    assert report["skipped"] == {"not_netsem": 2, "not_udp": 1, "too_short": 1, "trailing_bytes": 1}
    bad = [row for row in report["datagrams"] if row["crc"] == "bad"]
    assert [row["comment"] for row in bad] == ["corrupted bit 517"]


def test_dst_port_counts_only_the_receivers_datagrams(known_capture):
    inspection = inspect_capture(known_capture.path, dst_port=1)
    assert all(frame["datagrams_received"] == 0 for frame in inspection.frames)


def test_not_a_capture_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "not.pcapng"
    path.write_bytes(b"hello")
    result = CliRunner().invoke(inspect, [str(path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == f"netsem inspect: error: {path}: not a pcap or pcapng file (it starts with 68656c6c)\n"


def test_a_truncated_capture_reports_what_it_read_then_exits_2(known_capture, tmp_path):
    data = known_capture.path.read_bytes()
    path = tmp_path / "cut.pcapng"
    path.write_bytes(data[: len(data) - 100])  # inside the last packet's block
    total = sum(1 for _ in read_capture(known_capture.path))
    result = CliRunner().invoke(inspect, [str(path)])
    assert result.exit_code == 2
    assert result.stdout.splitlines()[-1].startswith(f"{total - 1} packets, ")  # the report of what was read
    (line,) = result.stderr.splitlines()
    assert re.fullmatch(rf"netsem inspect: error: {re.escape(str(path))}: file ends \d+ bytes into "
                        rf"a block of type 0x6 at byte \d+ \(read {total - 1} packets\)", line), line
    result = CliRunner().invoke(inspect, [str(path), "--json"])
    assert result.exit_code == 2 and json.loads(result.stdout)["packets"] == total - 1
    assert "Traceback" not in result.output


def test_a_capture_with_a_corrupt_block_length_exits_2(known_capture, tmp_path):
    data = bytearray(known_capture.path.read_bytes())
    records = list(read_capture(known_capture.path))
    shb_length = int.from_bytes(data[4:8], "little")  # scapy writes little-endian
    data[shb_length + 4] ^= 0x10  # the first interface block's length
    path = tmp_path / "corrupt.pcapng"
    path.write_bytes(bytes(data))
    result = CliRunner().invoke(inspect, [str(path)])
    assert records and result.exit_code == 2
    assert result.stderr.endswith(f"at byte {shb_length} (read 0 packets)\n")


def test_packets_carry_the_interface_they_were_captured_on(tmp_path):
    from emulator.pcap import EGRESS, INGRESS, CaptureWriter

    path = tmp_path / "emulator.pcapng"
    with CaptureWriter(path) as capture:
        capture.write(b"in", 1_700_000_000_000_000_001, ("10.0.0.1", 1), ("10.0.0.2", 2), "queued", INGRESS)
        capture.write(b"out", 1_700_000_000_500_000_000, ("10.0.0.2", 3), ("10.0.0.3", 4), "sent", EGRESS)
    packets = list(read_packets(path))
    assert [(p.interface, p.dport, p.udp_payload, p.comment) for p in packets] == [
        ("ingress", 2, b"in", "queued"), ("egress", 4, b"out", "sent")]
    assert packets[1].time == 1_700_000_000.5


def test_ranges():
    assert missing_ranges([0, 1, 5, 9], 12) == [(2, 4), (6, 8), (10, 11)]
    assert missing_ranges([], 2**32) == [(0, 2**32 - 1)]
    assert format_ranges(ranges_of([3, 17, 40, 41, 42])) == "3, 17, 40-42"
