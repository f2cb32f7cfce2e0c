"""The README's own-codec example runs as written, and `examples/own_codec.py` says the same."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    section = REPO.joinpath("README.md").read_text().split("## Bring your own codec", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs_as_written():
    result = subprocess.run([sys.executable, "-c", readme_example()], capture_output=True, text=True, timeout=300,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr
    psnr, ssim, received, bpp = (float(value) for value in result.stdout.split())
    assert 0 < psnr < 60 and 0 < received and 1 < bpp < 5  # untrained networks: any picture, real packets


def test_the_example_file_and_the_command_line_agree():
    code = REPO.joinpath("examples", "own_codec.py").read_text()
    for line in ("netsem.TorchCodec(\"my-codec\", encoder, decoder, bit_width=6, clip=3.0, multiple=4)",
                 "nn.Conv2d(3, 32, 5, 2, 2), nn.PReLU(), nn.Conv2d(32, 8, 5, 2, 2)"):
        assert line in code and line in readme_example()
    result = subprocess.run([sys.executable, "-m", "netsem", "simulate", "skimage:chelsea", "--codec",
                             "examples.own_codec:codec", "--json"], capture_output=True, text=True, timeout=300,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert '"codec": "my-codec"' in result.stdout
