"""Wall time of `netsem send` on a 768x512 photograph, codec included, with its breakdown.

    python tools/bench_send.py [IMAGE] [--codec cnn-sem] [--netem 'loss random 10%'] [--repeats 3]

Runs the same session as the CLI (real UDP sockets on 127.0.0.1 through the in-process
emulator) `--repeats` times after one warm-up and prints each stage's best time. The image
is resized (Lanczos) to 768x512 so the figure compares across photographs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", nargs="?", help="photograph (default: scikit-image's astronaut)")
    parser.add_argument("--codec", default="cnn-sem")
    parser.add_argument("--partition", default="channel")
    parser.add_argument("--netem", default="loss random 10%")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from netsem.pipeline.images import load_image
    from netsem.pipeline.send import run_send
    from netsem.pipeline.session import SessionOptions

    pixels, label = load_image(args.image)
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "photo-768x512.png")
        Image.fromarray(pixels).resize((768, 512), Image.LANCZOS).save(path)
        options = SessionOptions(image=path, codec=args.codec, partition=args.partition, netem=args.netem)
        run_send(options)  # warm-up: weights loaded, caches built
        reports = [run_send(options) for _ in range(args.repeats)]
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "netsem", "send", path, "--codec", args.codec,
                        "--partition", args.partition, "--netem", args.netem, "--json"],
                       check=True, capture_output=True)
        cold_cli = time.perf_counter() - started
    print(f"{label} resized to 768x512, codec {args.codec}, {args.partition} partition, netem '{args.netem}'")
    for field in ("encode_s", "network_s", "decode_s", "total_s"):
        print(f"  {field:<10} best {min(getattr(r, field) for r in reports) * 1e3:7.1f} ms   "
              f"mean {sum(getattr(r, field) for r in reports) / len(reports) * 1e3:7.1f} ms")
    print(f"  datagrams {reports[0].datagrams_sent}, PSNR {reports[0].psnr_db:.2f} dB")
    print(f"  whole CLI process, cold (imports, weights, lossless reference decode): {cold_cli:.2f} s")


if __name__ == "__main__":
    main()
