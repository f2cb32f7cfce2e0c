"""`netsem multicast` end to end (as click runs it) and its one-line errors."""

import json

from click.testing import CliRunner

from netsem.multiuser.cli import multicast


def run(*args):
    return CliRunner().invoke(multicast, list(args), catch_exceptions=False)


def test_multicast_json_over_udp():
    result = run("--model", "c0.2", "--groups", "2", "--size", "64", "--user-netem", "3=loss random 20%", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["users"] == 10 and len(report["per_user"]) == 10
    assert all(u["decoded"] for u in report["per_user"])
    assert report["bytes_saved_by_multicast"] == 4 * report["multicast_common_bytes"]
    assert report["per_user"][3]["netem"] == "loss random 20%"


def test_misuse_is_one_line():
    for args, words in ((["--size", "48"], "multiple of 32"), (["--join", "3=9"], "--join"),
                        (["--user-phy", "3=mimo 2x2 snr 4"], "single-antenna"), (["--netem", "loss banana"], "loss"),
                        (["--model", "/nonexistent.safetensors"], "--model")):
        result = run(*args)
        assert result.exit_code == 2 and words in result.output.splitlines()[-1], (args, result.output)


def test_pcap_holds_what_the_sender_sent(tmp_path):
    from scapy.layers.inet import IP, UDP
    from scapy.utils import rdpcap

    from packetizers.kinds import stream_kind
    from packetizers.wire import peek_header

    capture = tmp_path / "mu.pcapng"
    result = run("--size", "32", "--transport", "offline", "--pcap", str(capture), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.splitlines()[-1])
    sent = [(p[IP].dst, bytes(p[UDP].payload)) for p in rdpcap(str(capture))]
    kinds = [stream_kind(peek_header(payload).stream_id) for _, payload in sent]
    common = sum(len(d) for (_, d), (kind, _) in zip(sent, kinds) if kind == "common")
    private = sum(len(d) for (_, d), (kind, _) in zip(sent, kinds) if kind == "private")
    assert (common, private) == (report["multicast_common_bytes"], report["private_bytes"])
    assert {dst for (dst, _), (kind, _) in zip(sent, kinds) if kind == "common"} == {"239.255.77.1", "239.255.77.2"}
