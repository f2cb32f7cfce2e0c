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
