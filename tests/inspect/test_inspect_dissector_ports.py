"""netsem datagrams on UDP ports other Wireshark dissectors claim, decoded by real tshark with
no options; the other traffic on those ports decodes as it does without the script.

Wireshark tries port dissectors before heuristics, so without the port guard of `netsem.lua`
a netsem datagram on the README's emulator port 47000 shows as "HCrt [Malformed Packet]".
Needs the `tshark` binary; skipped when it is absent.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcapng

from packetizers.frames import LatentFrame, StreamFrame
from packetizers.packetizer import Packetizer
from packetizers.wire import FIELD_NAMES, Layout, PartitionKind, peek_header, rewrite_header

_spec = importlib.util.spec_from_file_location("dissector_tests", Path(__file__).with_name("test_inspect_dissector.py"))
dissector_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dissector_tests)
LUA, TSHARK, needs_tshark, tshark_env = (
    dissector_tests.LUA, dissector_tests.TSHARK, dissector_tests.needs_tshark, dissector_tests.tshark_env,
)

EPHEMERAL = 40000  # claimed by no dissector (checked below)
CLAIMED = {47000: "hcrt", 53: "dns", 5060: "sip", 4789: "vxlan", 2152: "gtp", 161: "snmp"}
# (source port, destination port) of the netsem datagrams: claimed ports as either, or both
NETSEM_PORTS = [
    (EPHEMERAL, 47000), (47000, EPHEMERAL), (EPHEMERAL, 53), (53, EPHEMERAL), (EPHEMERAL, 5060),
    (5060, EPHEMERAL), (4789, EPHEMERAL), (EPHEMERAL, 2152), (53, 47000), (47000, 5060), (EPHEMERAL, 443),
]
COLUMNS = ["frame.number", "udp.srcport", "udp.dstport", "frame.protocols", "_ws.col.Protocol", "_ws.col.Info",
           "_ws.malformed", "netsem.frame_id", "netsem.crc_status"]


@dataclass
class PortsCapture:
    path: Path
    netsem: dict[int, int]  # packet number -> frame id
    others: dict[int, str]  # packet number -> the protocol column Wireshark shows without the script


def _netsem_datagrams() -> list[bytes]:
    """One datagram per entry of NETSEM_PORTS, each of its own frame; every third a byte stream
    (its header declares unit spans too)."""
    rng = np.random.default_rng(47)
    datagrams = []
    for index in range(len(NETSEM_PORTS)):
        frame_id = 1000 + index
        if index % 3 == 2:
            stream = StreamFrame.cut(rng.integers(0, 256, 900, dtype=np.uint8).tobytes(), (0, 30, 400),
                                 codec_params=(75, 8), codec_id=10, image_size=(16, 16))
            datagrams.append(Packetizer(seed=3, mtu=1200).packetize(stream, frame_id)[0])
        else:
            latent = LatentFrame(rng.integers(0, 64, (8, 8, 8)), Layout.CHW, 6, False, scale=0.5, codec_id=3)
            datagrams.append(Packetizer(PartitionKind.CHANNEL, seed=index, mtu=300).packetize(latent, frame_id)[0])
    return datagrams


def _udp(sport: int, dport: int, payload) -> Ether:
    return Ether(bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=sport, dport=dport) / payload))


def _other_packets(datagram: bytes) -> list[tuple[Ether, str]]:
    """Traffic that is not netsem on the claimed ports, with the protocol each must stay."""
    sip = (b"OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:40000;branch=z9hG4bK776a\r\n"
           b"Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=19283\r\n"
           b"Call-ID: a84b4c76e66710\r\nCSeq: 63104 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    stun = bytes.fromhex("000100002112a442") + bytes(range(12))  # a binding request: STUN's heuristic finds it
    query = DNS(id=7, rd=1, qd=DNSQR(qname="example.com"))
    answer = DNS(id=7, qr=1, qd=DNSQR(qname="example.com"), an=DNSRR(rrname="example.com", rdata="192.0.2.1"))
    wrong_version = rewrite_header(datagram, version=2)
    read = bytes.fromhex("23ff0180") + (0x12345678).to_bytes(4, "little")  # type, tag, ADL 1 (last), address
    write = bytes.fromhex("13ff0180") + bytes(4) + (0xDEADBEEF).to_bytes(4, "little")  # ... address, data
    return [
        (_udp(EPHEMERAL, 53, query), "DNS"),
        (_udp(53, EPHEMERAL, answer), "DNS"),
        # HCrt read and write requests: no netsem magic
        (_udp(EPHEMERAL, 47000, Raw(read)), "HCrt"),
        (_udp(47000, EPHEMERAL, Raw(write)), "HCrt"),
        # almost netsem: the magic, but not the version, or not the length the header declares
        (_udp(EPHEMERAL, 47000, Raw(wrong_version)), "HCrt"),
        (_udp(EPHEMERAL, 47000, Raw(datagram[:-1])), "HCrt"),
        (_udp(EPHEMERAL, 47000, Raw(datagram + b"tail")), "HCrt"),
        (_udp(EPHEMERAL, 5060, Raw(sip)), "SIP"),
        # SNMP's dissector rejects this: UDP goes on to the heuristics, with the guard as without it
        (_udp(EPHEMERAL, 161, Raw(stun)), "STUN"),
    ]


def build_ports_capture(path: Path) -> PortsCapture:
    datagrams = _netsem_datagrams()
    packets, netsem, others = [], {}, {}
    for (sport, dport), datagram in zip(NETSEM_PORTS, datagrams):
        packets.append(_udp(sport, dport, Raw(datagram)))
        netsem[len(packets)] = peek_header(datagram).frame_id
    for packet, protocol in _other_packets(datagrams[0]):
        packets.append(packet)
        others[len(packets)] = protocol
    for number, packet in enumerate(packets, start=1):
        packet.time = 1_700_000_000 + number / 1000
    wrpcapng(str(path), packets)
    return PortsCapture(path, netsem, others)


@pytest.fixture(scope="module")
def ports_capture(tmp_path_factory) -> PortsCapture:
    return build_ports_capture(tmp_path_factory.mktemp("ports") / "ports.pcapng")


@pytest.fixture(scope="module")
def plugin_home(tmp_path_factory) -> Path:
    """A home whose personal plugins folder holds netsem.lua: Wireshark loads it with no -X."""
    home = tmp_path_factory.mktemp("home")
    plugins = home / ".local" / "lib" / "wireshark" / "plugins"
    plugins.mkdir(parents=True)
    shutil.copy(LUA, plugins / "netsem.lua")
    return home


def run_tshark(*args: str, script: bool = True, home: Path | None = None) -> str:
    command = [TSHARK, *(["-X", f"lua_script:{LUA}"] if script else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env=tshark_env(home))
    assert result.returncode == 0, result.stderr
    assert "Lua: Error" not in result.stderr, result.stderr
    return result.stdout


def rows(capture: Path, *options: str, script: bool = True, home: Path | None = None) -> dict[int, dict[str, str]]:
    """Packet number -> {column: value}; without the script (and no plugin) netsem's columns are empty."""
    loaded = script or home is not None
    fields = [arg for column in COLUMNS if loaded or not column.startswith("netsem.") for arg in ("-e", column)]
    output = run_tshark("-r", str(capture), *options, "-T", "fields", "-E", "separator=/t", *fields,
                        script=script, home=home)
    table = {}
    for line in output.splitlines():
        row = dict.fromkeys(COLUMNS, "") | dict(zip(fields[1::2], line.split("\t")))
        table[int(row["frame.number"])] = row
    return table


def seen_without_guard(row: dict[str, str]) -> tuple[str, ...]:
    """What a packet shows, less the guard's own layer name in frame.protocols."""
    return (row["frame.protocols"].replace(":netsem_ports", ""), row["_ws.col.Protocol"], row["_ws.col.Info"],
            row["_ws.malformed"])


def assert_netsem_decoded(table: dict[int, dict[str, str]], capture: PortsCapture) -> None:
    for number, frame_id in capture.netsem.items():
        row = table[number]
        assert row["netsem.frame_id"] == str(frame_id), row
        assert row["netsem.crc_status"] == "good", row
        assert row["_ws.malformed"] == "", row
        assert row["_ws.col.Protocol"] == "NETSEM", row
        assert row["frame.protocols"].endswith(":netsem"), row


@needs_tshark
def test_the_test_ports_are_claimed_as_expected():
    decodes = subprocess.run([TSHARK, "-G", "decodes"], capture_output=True, text=True, check=True,
                             env=tshark_env()).stdout
    claimed = {int(port): name for table, port, name in (line.split("\t") for line in decodes.splitlines())
               if table == "udp.port"}
    assert {port: claimed.get(port) for port in CLAIMED} == CLAIMED
    assert EPHEMERAL not in claimed and 443 not in claimed  # 443 is QUIC's by heuristic only


@needs_tshark
def test_without_the_guard_netsem_on_47000_is_hcrt(ports_capture):
    """The defect: port dissectors come before heuristics."""
    plain = rows(ports_capture.path, script=False)
    number = NETSEM_PORTS.index((EPHEMERAL, 47000)) + 1
    assert plain[number]["_ws.col.Protocol"] == "HCrt"
    assert plain[number]["_ws.malformed"] != ""


@needs_tshark
def test_netsem_decodes_on_claimed_ports_with_no_options(ports_capture):
    table = rows(ports_capture.path)
    assert_netsem_decoded(table, ports_capture)
    assert set(rows(ports_capture.path, "-Y", "netsem")) == set(ports_capture.netsem)
    assert rows(ports_capture.path, "-Y", "_ws.lua.error") == {}  # no Lua error while dissecting


@needs_tshark
def test_other_traffic_on_claimed_ports_decodes_as_without_the_script(ports_capture):
    plain = rows(ports_capture.path, script=False)
    guarded = rows(ports_capture.path)
    for number, protocol in ports_capture.others.items():
        assert plain[number]["_ws.col.Protocol"] == protocol, plain[number]
        assert seen_without_guard(guarded[number]) == seen_without_guard(plain[number])
        assert guarded[number]["netsem.frame_id"] == "", guarded[number]
    dns = run_tshark("-r", str(ports_capture.path), "-Y", "dns", "-T", "fields", "-e", "dns.qry.name")
    assert dns.split() == ["example.com", "example.com"]


@needs_tshark
def test_the_personal_plugin_decodes_with_no_x_option(ports_capture, plugin_home):
    table = rows(ports_capture.path, script=False, home=plugin_home)
    assert_netsem_decoded(table, ports_capture)
    plain = rows(ports_capture.path, script=False)
    for number in ports_capture.others:
        assert seen_without_guard(table[number]) == seen_without_guard(plain[number])
    frame_id = next(iter(ports_capture.netsem.values()))
    kept = rows(ports_capture.path, "-Y", f"netsem.frame_id == {frame_id}", script=False, home=plugin_home)
    assert list(kept) == [next(iter(ports_capture.netsem))]


@needs_tshark
def test_the_personal_plugin_lists_its_fields(plugin_home):
    fields = run_tshark("-G", "fields", script=False, home=plugin_home)
    names = {line.split("\t")[2] for line in fields.splitlines() if line.startswith("F\t")}
    assert {f"netsem.{name}" for name in FIELD_NAMES} <= names
    assert {"netsem.unit_id", "netsem.payload", "netsem.crc_status"} <= names


@needs_tshark
def test_disabling_netsem_gives_the_ports_back(ports_capture):
    """With the netsem protocol disabled, the guard hands netsem datagrams to the port's dissector."""
    plain = rows(ports_capture.path, script=False)
    disabled = rows(ports_capture.path, "--disable-protocol", "netsem")
    assert rows(ports_capture.path, "--disable-protocol", "netsem", "-Y", "_ws.lua.error") == {}
    for number, row in plain.items():
        assert disabled[number]["_ws.col.Protocol"] == row["_ws.col.Protocol"], (row, disabled[number])
        assert disabled[number]["netsem.frame_id"] == ""


@needs_tshark
def test_the_guard_costs_little_at_start_up(tmp_path):
    """Loading the script, port scan included, in CPU time (measured ~7 ms; tshark itself ~180 ms)."""
    timed = tmp_path / "timed.lua"
    timed.write_text(
        f'local start = os.clock()\ndofile("{LUA}")\n'
        'print(string.format("netsem.lua loaded in %.1f ms", (os.clock() - start) * 1000))\n'
    )
    one = tmp_path / "one.pcapng"
    wrpcapng(str(one), [_udp(EPHEMERAL, 9, Raw(b"x"))])
    result = subprocess.run([TSHARK, "-X", f"lua_script:{timed}", "-r", str(one)], capture_output=True, text=True,
                            timeout=60, check=True, env=tshark_env())
    line = next(line for line in result.stdout.splitlines() if line.startswith("netsem.lua loaded"))
    print(line)
    assert float(line.split()[-2]) < 100
