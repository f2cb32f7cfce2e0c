"""The separate-process workflow the README teaches: `recv`, `emulate` and several `send --to`.

Real processes, real sockets: every datagram of every frame must arrive (no netem loss is
configured), the emulator's counters must agree with what arrived, and captures must record
each packet at the time it was read or sent.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from processes import REPO, Program, free_port  # noqa: E402


def netsem_send(*args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "netsem", "send", *args, "--json"], cwd=REPO,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def emulator_port(program: Program) -> int:
    return int(re.search(r"listening on [\d.]+:(\d+)", program.stderr_lines[-1]).group(1))


@pytest.mark.timeout(300)
def test_three_senders_through_emulate_reach_recv_whole(tmp_path):
    wide = tmp_path / "astronaut-1280x800.png"
    Image.fromarray(data.astronaut()).resize((1280, 800)).save(wide)
    recv_port = free_port()
    recv = Program("recv", "--listen", f"127.0.0.1:{recv_port}", "--out", str(tmp_path / "frames"), "--json")
    emulate = Program("emulate", "--listen", "127.0.0.1:0", "--forward", f"127.0.0.1:{recv_port}",
                      "--stats", str(tmp_path / "stats.json"), "--", "delay", "20ms")
    target = f"127.0.0.1:{emulator_port(emulate)}"
    try:
        sent = [netsem_send(str(wide), "--to", target),
                netsem_send("skimage:coffee", "--codec", "raw", "--to", target),  # 672 datagrams in one burst
                netsem_send("skimage:chelsea", "--codec", "jpeg", "--to", target)]
        reports = [recv.report_where(60, frame_id=item["frame_id"]) for item in sent]
    finally:
        emulate_code, _, emulate_stderr = emulate.stop(signal.SIGINT)
        recv.stop(signal.SIGINT)
    for item, report in zip(sent, reports):
        assert report["complete"] and report["datagrams_received"] == item["datagrams_sent"], json.dumps(report)
        assert "error" not in report and Path(report["image"]).exists()
    assert len({report["image"] for report in reports}) == 3
    total = sum(item["datagrams_sent"] for item in sent)
    assert sent[1]["datagrams_sent"] == 672 and total > 700  # raw's one burst, and the other two frames
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["forward"]["received"] == stats["forward"]["sent"] == total
    assert stats["proxy"]["kernel_dropped"] == 0 and stats["proxy"]["clients"] == 3
    assert emulate_code == 130 and f"received {total}, sent {total}, dropped 0" in emulate_stderr


@pytest.mark.timeout(240)
def test_capturing_does_not_change_the_delay_and_stamps_true_times(tmp_path):
    from bench_delay import capture_excess_ms, measure

    capture = tmp_path / "em.pcapng"
    plain, captured = measure(1000, 1000.0, "20ms", None), measure(1000, 1000.0, "20ms", capture)
    assert plain.size == captured.size == 1000
    medians = np.median(plain), np.median(captured)
    # tolerances for a loaded CI machine; tools/bench_delay.py prints the figures themselves
    assert all(0.020 <= median < 0.023 for median in medians), medians
    assert abs(medians[1] - medians[0]) < 0.002, medians
    excess = capture_excess_ms(capture)
    assert excess.size == 1000
    assert excess.min() > -0.1  # never sent before its time (the comment rounds to 0.1 ms)
    assert np.median(excess) < 1.0, f"median {np.median(excess):.3f} ms later than the comment says"
