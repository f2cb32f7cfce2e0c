#!/usr/bin/env python3
"""Train a netsem codec without installing the package: same options as `netsem train`.

    python tools/train_codec.py cnn-sem --photos runs/photos --device cuda --steps 12000
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from netsem.codecs.cli import train  # noqa: E402

if __name__ == "__main__":
    train(prog_name="train_codec")
