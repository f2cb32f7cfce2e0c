"""netem-compatible impairment emulator: grammar, models, sans-I/O link, offline driver.

This package never imports `netsem`, `packetizers`, scapy or torch. The trio proxy
(`emulator.proxy`) with its per-flow rules (`emulator.rules`), the capture writer and reader
(`emulator.pcap`, `emulator.pcapng`, `emulator.capture_reader`, plain `struct` on the pcapng
block format), the event log and its replay (`emulator.eventlog`), traces (`emulator.traces`),
presets (`emulator.presets`) and the commands (`emulator.cli`: emulate, `emulator.presets_cli`:
presets, `emulator.trace_cli`: trace) are imported on demand; the names below are the light core.
"""

from emulator.fate import Fate, LinkCounters
from emulator.grammar import NetemSpec, NetemSpecError, parse_netem
from emulator.link import Link
from emulator.offline import OfflineResult, run_offline
from emulator.stages import Stage, StageOutcome, register_stage

__all__ = [
    "Fate", "Link", "LinkCounters", "NetemSpec", "NetemSpecError", "OfflineResult", "Stage",
    "StageOutcome", "parse_netem", "register_stage", "run_offline",
]
