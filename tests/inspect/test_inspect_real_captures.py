"""tshark + the Lua dissector on captures written by `netsem send --pcap` and `netsem emulate --pcap`.

Every netsem datagram in the capture, corrupted ones included, must show in tshark exactly the
fields our construct parser reads, with the right CRC status and the emulator's fate comment.
"""

from __future__ import annotations

import importlib.util
import math
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
from scapy.layers.inet import UDP
from scapy.utils import rdpcap

from emulator.grammar import parse_netem
from emulator.link import Link
from emulator.offline import run_offline
from packetizers.frames import LatentFrame
from packetizers.packetizer import Packetizer
from packetizers.wire import FIELD_NAMES, MAGIC, Layout, PartitionKind, crc_ok, parse_with_construct

_spec = importlib.util.spec_from_file_location("dissector_tests", Path(__file__).with_name("test_inspect_dissector.py"))
dissector_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dissector_tests)
needs_tshark, tshark_rows = dissector_tests.needs_tshark, dissector_tests.tshark_rows
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from processes import receive_count, wait_drained  # noqa: E402


def check_capture_against_construct(path: Path) -> tuple[int, int]:
    """Compare every netsem datagram of the capture; returns (datagrams compared, CRC-bad ones)."""
    packets = rdpcap(str(path))
    rows = tshark_rows(path, "udp")
    compared = bad = 0
    for number, packet in enumerate(packets, start=1):
        datagram = bytes(packet[UDP].payload)
        if not datagram.startswith(MAGIC):
            continue
        row = rows[number]
        parsed = parse_with_construct(datagram)
        for name in FIELD_NAMES:
            expected, shown = parsed.header[name], row[f"netsem.{name}"]
            if name == "magic":
                assert shown == expected.decode("ascii")
            elif name == "scale":
                assert math.isclose(float(shown), expected, rel_tol=1e-6)
            else:
                assert int(shown, 0) == expected, (number, name, shown, expected)
        assert bytes.fromhex(row["netsem.payload"]) == parsed.payload
        assert row["netsem.crc_status"] == ("good" if crc_ok(datagram) else "bad")
        assert row["frame.comment"] == packet.comment.decode()
        compared += 1
        bad += not crc_ok(datagram)
    return compared, bad


@needs_tshark
def test_netsem_send_capture_decodes_field_for_field(tmp_path):
    capture = tmp_path / "send.pcapng"
    result = subprocess.run(
        [sys.executable, "-m", "netsem", "send", "--codec", "raw", "--netem", "loss random 10% corrupt 5%",
         "--seed", "4", "--pcap", str(capture), "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    compared, bad = check_capture_against_construct(capture)
    assert compared > 500 and bad > 0
    print(f"send --pcap: {compared} datagrams compared with tshark, {bad} with a bad CRC")


@needs_tshark
def test_netsem_emulate_capture_decodes_field_for_field(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    capture = tmp_path / "emulate.pcapng"
    words = ["loss", "gemodel", "5%", "30%", "corrupt", "10%", "delay", "2ms"]
    latent = np.random.default_rng(0).integers(-8, 8, size=(32, 24, 32))
    frame = LatentFrame(latent, Layout.CHW, 4, True, scale=0.5, codec_id=2, image_size=(384, 512))
    datagrams = Packetizer(PartitionKind.SPATIAL, mtu=400).packetize(frame, 3)
    # seeded: the offline link says how many datagrams leave the emulator, so the test waits for
    # exactly those (every departure then has its capture record) instead of a fixed time
    offline = run_offline(Link(parse_netem(words), seed=2), [(i * 1e-4, d) for i, d in enumerate(datagrams)])
    process = subprocess.Popen(
        [sys.executable, "-m", "netsem", "emulate", "--listen", f"127.0.0.1:{port}",
         "--forward", f"127.0.0.1:{sink.getsockname()[1]}", "--seed", "2", "--pcap", str(capture), "--", *words],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert "listening" in process.stderr.readline()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for datagram in datagrams:
                sender.sendto(datagram, ("127.0.0.1", port))
        received = receive_count(sink, len(offline.deliveries), 30, "the sink")
        wait_drained(port, 30)  # every arrival read (and recorded), a lost tail included
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)
        sink.close()
    assert len(received) == len(offline.deliveries)
    compared, bad = check_capture_against_construct(capture)
    assert compared == len(datagrams) + len(received)  # every arrival and every departure
    assert compared > 50 and bad > 0
