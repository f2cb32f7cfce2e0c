"""tshark with the Lua dissector names the users' and the air's datagrams."""

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcapng

from netsem.semnoma.config import AirSpec
from netsem.semnoma.network import slot_order, user_datagrams
from netsem.semnoma.air import SuperpositionStage
from packetizers.wire import DEFAULT_PORT
from tests.inspect.test_inspect_dissector import needs_tshark, tshark


@needs_tshark
def test_tshark_shows_users_and_superposed_signal(tmp_path, small_model, pair):
    air = AirSpec(seed=1)
    sent = slot_order([user_datagrams(small_model, image, k, 4, air, mtu=400) for k, image in enumerate(pair)])
    stage = SuperpositionStage(air)
    air_out = [o.datagram for o in (stage.process(d, 0.0) for d in sent) if o.datagram]
    packets = [Ether() / IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=40000, dport=DEFAULT_PORT) / d
               for d in sent + air_out]
    wrpcapng(str(tmp_path / "noma.pcapng"), packets)
    info = tshark("-r", str(tmp_path / "noma.pcapng"), "-T", "fields", "-e", "_ws.col.Info").splitlines()
    assert len(info) == len(sent) + len(air_out) and len(air_out) == len(sent) // 2
    assert all(line.startswith(f"private u{k % 2} Frame 4 ") for k, line in enumerate(info[:len(sent)]))
    assert all(line.startswith("superposed x2 Frame 4 ") for line in info[len(sent):])
