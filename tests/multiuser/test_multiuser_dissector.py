"""The Wireshark dissector on seed 000's streams: real tshark reads a capture of one
transmission (common datagrams to each group's multicast address, private ones unicast) and
names every datagram's stream kind and user / group index as `netsem.stream_kind` /
`netsem.stream_index`, and in the Info column, exactly as `stream_kind` reads the header."""

from __future__ import annotations

import numpy as np
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcapng

from netsem.multiuser.session import plan_transmission
from netsem.multiuser.streams import stream_kind
from netsem.multiuser.transport import multicast_address
from packetizers.wire import DEFAULT_PORT, peek_header
from tests.inspect.test_inspect_dissector import needs_tshark, tshark


@needs_tshark
def test_tshark_names_common_and_private_streams(tmp_path):
    rng = np.random.default_rng(3)
    groups = np.array([[0, 2, 4], [1, 3, 5]])
    tx = plan_transmission(rng.normal(size=(2, 2 * 100)), rng.normal(size=(6, 2 * 300)), groups, tiles=1,
                           image_size=(32, 32), kb_version=0x1234, frame_id=9, mtu=400, seed=1)
    sent = [(multicast_address(g), d) for g, ds in tx.common.items() for d in ds]
    sent += [(f"127.0.0.{k + 2}", d) for k, ds in tx.private.items() for d in ds]
    packets = [Ether() / IP(src="127.0.0.1", dst=dst) / UDP(sport=40000, dport=DEFAULT_PORT) / d for dst, d in sent]
    capture = tmp_path / "multicast.pcapng"
    wrpcapng(str(capture), packets)

    out = tshark("-r", str(capture), "-T", "fields", "-E", "separator=/t", "-e", "netsem.stream_id",
                 "-e", "netsem.stream_kind", "-e", "netsem.stream_index", "-e", "_ws.col.Info")
    rows = [line.split("\t") for line in out.splitlines()]
    assert len(rows) == len(sent) > 2 * 2 + 6
    for (_, datagram), (stream_id, kind, index, info) in zip(sent, rows):
        name, number = stream_kind(peek_header(datagram).stream_id)
        assert int(stream_id) == peek_header(datagram).stream_id
        assert (int(kind), int(index)) == ({"private": 1, "common": 2}[name], number)
        assert info.startswith(f"{name} {'g' if name == 'common' else 'u'}{number} Frame 9 ")
    # a filter a user would type: one group's common stream
    only = tshark("-r", str(capture), "-Y", "netsem.stream_kind == 2 && netsem.stream_index == 1", "-T", "fields",
                  "-e", "ip.dst")
    assert only.split() == [multicast_address(1)] * len(tx.common[1])


def test_inspect_names_the_streams(tmp_path):
    """`netsem inspect` on the same kind of capture: one frame per stream, named."""
    from click.testing import CliRunner

    from netsem.inspect.cli import inspect

    rng = np.random.default_rng(4)
    tx = plan_transmission(rng.normal(size=(1, 200)), rng.normal(size=(2, 600)), np.array([[0, 1]]), tiles=1,
                           image_size=(32, 32), kb_version=1, frame_id=3, mtu=400, seed=2)
    packets = [Ether() / IP(src="127.0.0.1", dst=multicast_address(0)) / UDP(sport=40000, dport=DEFAULT_PORT) / d
               for d in tx.common[0]]
    packets += [Ether() / IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=40000, dport=DEFAULT_PORT) / d
                for ds in tx.private.values() for d in ds]
    wrpcapng(str(tmp_path / "c.pcapng"), packets)
    result = CliRunner().invoke(inspect, [str(tmp_path / "c.pcapng")])
    assert result.exit_code == 0, result.output
    frame_lines = [line for line in result.output.splitlines() if " 3 " in line and "nd/token" in line]
    assert sorted(line.split()[0:2] for line in frame_lines) == [["common", "g0"], ["private", "u0"], ["private", "u1"]]
