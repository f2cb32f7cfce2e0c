"""Wall time of `netsem send` on a 768x512 photograph: whole processes, and the session's phases.

    python tools/bench_send.py [IMAGE] [--codec NAME] [--netem 'loss random 20%'] [--runs 5]

The image is resized (Lanczos) to 768x512 so the figure compares across photographs. Runs the
CLI as a user does, `--runs` times each, as fresh processes (imports, weights, first encode
cold), with and without the lossless-reference decode, and prints the medians; then the
session's own timings (the report's named phases, which add up to its total) from one
in-process run after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image


def whole_process(args: list[str], runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "netsem", "send", *args, "--json"], check=True, capture_output=True)
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", nargs="?", help="photograph (default: scikit-image's astronaut)")
    parser.add_argument("--codec", default=None, help="default: netsem's default codec")
    parser.add_argument("--partition", default=None, help="default: the codec's first")
    parser.add_argument("--netem", default="loss random 20%")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from netsem.pipeline.images import load_one
    from netsem.pipeline.send import run_send
    from netsem.pipeline.session import SessionOptions

    loaded = load_one(args.image)
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "photo-768x512.png")
        Image.fromarray(loaded.pixels).resize((768, 512), Image.LANCZOS).save(path)
        common = [path, "--netem", args.netem]
        common += ["--codec", args.codec] if args.codec else []
        common += ["--partition", args.partition] if args.partition else []
        full = whole_process(common, args.runs)
        light = whole_process([*common, "--no-reference"], args.runs)
        options = SessionOptions(image=path, partition=args.partition, netem=args.netem,
                                 **({"codec": args.codec} if args.codec else {}))
        run_send(options)  # warm-up: weights loaded, caches built
        (report,) = run_send(options).reports
    print(f"{loaded.label} resized to 768x512, codec {report.codec}, {report.partition} partition, "
          f"netem '{args.netem}'")
    print(f"  whole process, median of {args.runs}: {statistics.median(full):.2f} s "
          f"(min {min(full):.2f}, max {max(full):.2f})")
    print(f"  whole process with --no-reference:  {statistics.median(light):.2f} s "
          f"(min {min(light):.2f}, max {max(light):.2f})")
    print("  warm session: " + ", ".join(f"{name} {s * 1e3:.0f} ms" for name, s in report.timings.items())
          + f" = {report.total_s * 1e3:.0f} ms")
    print(f"  {report.datagrams_received}/{report.datagrams_sent} datagrams, PSNR {report.psnr_db:.2f} dB")
    print(json.dumps({"whole_median_s": statistics.median(full), "no_reference_median_s": statistics.median(light)}))


if __name__ == "__main__":
    main()
