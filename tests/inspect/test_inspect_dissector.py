"""The Lua dissector, run by real tshark, against our construct parser.

Needs the `tshark` binary (Debian's package, installed by the test set-up); these tests are
skipped only when it is absent. The field-table check needs no tshark.
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from packetizers.wire import DEFAULT_PORT
from packetizers.wire import FIELD_NAMES, crc_ok, parse_with_construct

REPO = Path(__file__).resolve().parents[2]
LUA = REPO / "tools" / "wireshark" / "netsem.lua"
TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(
    TSHARK is None, reason="tshark is not installed: apt-get install -y tshark (the CI set-up does)"
)
VARIABLE_FIELDS = ("unit_id", "unit_offset", "unit_length", "payload", "crc32", "crc32_computed", "crc_status")
COLUMNS = ["frame.number", "udp.dstport", "frame.comment"] + [f"netsem.{name}" for name in FIELD_NAMES + VARIABLE_FIELDS]


# tshark runs with an empty home of its own: a netsem.lua installed in the real personal plugins
# folder (a second "netsem" protocol) or the user's preferences must not change what is tested.
_CLEAN_HOME = tempfile.TemporaryDirectory(prefix="netsem-tshark-home-")


def tshark_env(home: str | Path | None = None) -> dict[str, str]:
    """The environment for a tshark subprocess whose home (plugins, preferences) is `home`."""
    home = str(home or _CLEAN_HOME.name)
    return {**os.environ, "HOME": home, "XDG_CONFIG_HOME": os.path.join(home, ".config")}


def _load_generator():
    spec = importlib.util.spec_from_file_location("netsem_lua_generator", REPO / "tools" / "wireshark" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tshark(*args: str) -> str:
    result = subprocess.run(
        [TSHARK, "-X", f"lua_script:{LUA}", *args], capture_output=True, text=True, timeout=60, check=False,
        env=tshark_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "Lua: Error" not in result.stderr, result.stderr
    return result.stdout


def tshark_rows(capture_path: Path, display_filter: str = "netsem") -> dict[int, dict[str, str]]:
    """Packet number -> {column: value} for the packets the filter keeps."""
    fields = [arg for column in COLUMNS for arg in ("-e", column)]
    output = tshark("-r", str(capture_path), "-Y", display_filter, "-T", "fields", "-E", "separator=/t", *fields)
    rows = {}
    for line in output.splitlines():
        row = dict(zip(COLUMNS, line.split("\t")))
        rows[int(row["frame.number"])] = row
    return rows


def test_lua_field_section_equals_the_generator_output():
    generator = _load_generator()
    assert generator.render(LUA.read_text()) == LUA.read_text(), "run python tools/wireshark/generate.py"


def test_lua_field_table_lists_every_header_field_in_order():
    section = _load_generator().field_section()
    names = [line.split('name = "')[1].split('"')[0] for line in section.splitlines() if "offset = " in line]
    assert tuple(names) == FIELD_NAMES


@needs_tshark
def test_default_port_is_claimed_by_no_builtin_dissector():
    decodes = subprocess.run(
        [TSHARK, "-G", "decodes"], capture_output=True, text=True, check=True, env=tshark_env()
    ).stdout
    assert f"udp.port\t{DEFAULT_PORT}\t" not in decodes


@needs_tshark
def test_tshark_fields_equal_the_construct_parse_for_every_datagram(known_capture):
    rows = tshark_rows(known_capture.path)
    for captured in known_capture.netsem:
        row = rows[captured.packet_number]
        parsed = parse_with_construct(captured.datagram)
        for name in FIELD_NAMES:
            expected, shown = parsed.header[name], row[f"netsem.{name}"]
            if name == "magic":
                assert shown == expected.decode("ascii")
            elif name == "scale":
                assert math.isclose(float(shown), expected, rel_tol=1e-6), (name, shown, expected)
            else:
                assert int(shown, 0) == expected, (captured.packet_number, name, shown, expected)
        assert [int(x) for x in row["netsem.unit_id"].split(",")] == list(parsed.unit_ids)
        if parsed.unit_spans is None:
            assert row["netsem.unit_offset"] == row["netsem.unit_length"] == ""
        else:
            assert [int(x) for x in row["netsem.unit_offset"].split(",")] == [s.offset for s in parsed.unit_spans]
            assert [int(x) for x in row["netsem.unit_length"].split(",")] == [s.length for s in parsed.unit_spans]
        assert bytes.fromhex(row["netsem.payload"]) == parsed.payload
        assert int(row["netsem.crc32"], 16) == parsed.crc32
        assert row["netsem.crc_status"] == ("good" if crc_ok(captured.datagram) else "bad")
        assert row["frame.comment"] == captured.comment
    corrupted = [c for c in known_capture.netsem if c.comment.startswith("corrupted")]
    assert corrupted and all(rows[c.packet_number]["netsem.crc_status"] == "bad" for c in corrupted)


@needs_tshark
def test_only_netsem_packets_are_decoded_and_malformed_ones_are_flagged(known_capture):
    rows = tshark_rows(known_capture.path)
    expected = {c.packet_number for c in known_capture.netsem}
    assert expected <= set(rows)
    assert len(set(rows) - expected) == known_capture.malformed_packets
    flagged = tshark_rows(known_capture.path, "netsem.too_short || netsem.bad_length")
    assert len(flagged) == known_capture.malformed_packets


@needs_tshark
def test_heuristic_decodes_netsem_on_a_non_default_port(known_capture):
    other = [c for c in known_capture.netsem if c.dport != DEFAULT_PORT]
    assert other, "the capture must hold datagrams on another port"
    rows = tshark_rows(known_capture.path, f"netsem && udp.dstport != {DEFAULT_PORT}")
    assert set(rows) == {c.packet_number for c in other}


@needs_tshark
def test_comments_and_crc_status_filter(known_capture):
    bad = tshark_rows(known_capture.path, 'netsem.crc_status == "bad" && frame.comment contains "corrupted"')
    assert set(bad) == {c.packet_number for c in known_capture.netsem if c.comment.startswith("corrupted")}
    dropped = tshark_rows(known_capture.path, 'frame.comment contains "dropped"')
    assert set(dropped) == {c.packet_number for c in known_capture.netsem if c.comment.startswith("dropped")}
