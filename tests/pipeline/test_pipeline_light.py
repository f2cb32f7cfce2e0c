"""Light paths stay light: importing netsem, its error types and registry, `--help`, `emulate`,
`inspect` and every CLI error path never import torch (the one import that costs a second)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

PROBE = """
import sys
from netsem.cli import main
sys.argv = ["netsem", *{args!r}]
try:
    main()
except SystemExit:
    pass
print("TORCH" if "torch" in sys.modules else "LIGHT", file=sys.stderr)
"""


def test_importing_the_package_its_errors_and_registry_needs_no_torch():
    code = ("import sys, netsem, netsem.codecs, netsem.api; from netsem.codecs import CodecError, codec_names; "
            "from netsem import LatentFrame, register_codec, Chain; codec_names(); "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.parametrize("args", [
    ["--help"], ["send", "--help"], ["emulate", "--help"], ["inspect", "--help"], ["models", "--help"],
    ["send", "--codec", "no-such-codec"], ["send", "--netem", "delay soon"], ["send", "--phy", "snr lots"],
    ["send", "--stage", "nothing-registered"], ["simulate", "--partition", "nowhere"],
    ["recv", "--listen", "nonsense", "--out", "/tmp/x"], ["send", "/no/such/photo.png", "--codec", "raw"],
    ["emulate", "--listen", "0", "--forward", "127.0.0.1:9", "--", "bogus"],
])
def test_help_emulate_inspect_and_cli_errors_import_no_torch(args):
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True,
                            timeout=60)
    seconds = time.monotonic() - started
    assert result.stderr.strip().splitlines()[-1] == "LIGHT", result.stderr
    assert "Traceback" not in result.stderr
    print(f"{' '.join(args)}: {seconds:.2f} s")


def test_a_send_never_loads_numba_and_a_receiver_switches_the_compiled_packetizer_on(tmp_path):
    """The packetizer's compiled engine is for long-running receivers: importing numba would cost
    a cold `netsem send` ~0.3 s (packetizers/engine.py)."""
    code = PROBE.format(args=["send", "--codec", "raw", "--netem", "loss random 10%", "--no-reference"]).replace(
        '"TORCH" if "torch" in sys.modules else "LIGHT"', '"NUMBA" if "numba" in sys.modules else "NO NUMBA"')
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "PSNR" in result.stdout and result.stderr.strip().endswith("NO NUMBA"), result.stderr

    import trio

    from netsem.pipeline.recv import serve_receiver
    from packetizers import engine

    async def receive_briefly():
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_receiver, ("127.0.0.1", 0), tmp_path)
            nursery.cancel_scope.cancel()

    assert engine.compiled is None
    trio.run(receive_briefly)
    assert engine.compiled is not None
