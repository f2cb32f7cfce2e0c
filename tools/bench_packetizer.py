"""Packetize + reassemble throughput, in MB/s of latent, next to a numpy copy of the same array.

    python tools/bench_packetizer.py [--shape 48,32,48] [--bits 6] [--partition channel] [--mtu 1200]
                                     [--engine numpy|compiled|both]

The round trip ends with the frame's latent and received mask, as a decoder gets them. It is
measured for each engine (packetizers/engine.py: numpy, what a cold `netsem send` uses, and
the numba-compiled kernels that `netsem recv` switches on), in the same run, on one core, with
the ratio to a numpy copy (this machine is noisy: only ratios and same-run numbers mean
anything). The latent is counted at its in-memory size (one byte per element up to 8 bits,
two up to 16).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from packetizers import bitpack, engine
from packetizers.frames import LatentFrame
from packetizers.kinds import LATENT_PARTITION_WORDS
from packetizers.packetizer import Packetizer
from packetizers.reassembler import Reassembler
from packetizers.wire import Layout, PartitionKind


def best_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="48,32,48", help="chw latent shape (default: a 768x512 image at 16x)")
    parser.add_argument("--bits", type=int, default=6)
    parser.add_argument("--partition", choices=LATENT_PARTITION_WORDS, default="channel")
    parser.add_argument("--interleave", choices=["on", "off"], default="on")
    parser.add_argument("--mtu", type=int, default=1200)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--engine", choices=["numpy", "compiled", "both"], default="both")
    args = parser.parse_args()

    shape = tuple(int(d) for d in args.shape.split(","))
    dtype = bitpack.element_dtype(args.bits, signed=False)
    latent = np.random.default_rng(0).integers(0, 1 << args.bits, size=shape).astype(dtype)
    frame = LatentFrame(latent, Layout.CHW, args.bits, False)
    packetizer = Packetizer(PartitionKind[args.partition.upper()], interleave=args.interleave == "on", mtu=args.mtu)
    datagrams = packetizer.packetize(frame, 0)

    def round_trip() -> None:
        reassembler = Reassembler()
        reassembler.receive_many(packetizer.packetize(frame, 0), 0.0)  # as the receivers' socket loops do
        (result,) = reassembler.poll(0.0)
        assert result.complete
        result.latent, result.received  # what a decoder is given: the frame's values and mask

    megabytes = latent.nbytes / 1e6
    copy_s = best_seconds(lambda: latent.copy(), args.repeats * 10)
    print(f"latent {shape} {args.bits}-bit, {latent.nbytes} bytes in memory, {len(datagrams)} datagrams "
          f"of <= {args.mtu} bytes ({args.partition}, interleave {args.interleave})")
    print(f"numpy copy              {megabytes / copy_s:9.1f} MB/s")
    for name in ("numpy", "compiled") if args.engine == "both" else (args.engine,):
        if not engine.use_compiled(name == "compiled") and name == "compiled":
            print("compiled engine: numba is not installed")
            continue
        round_trip()  # the first frame of a plan builds and caches it
        netsem_s = best_seconds(round_trip, args.repeats)
        packetize_s = best_seconds(lambda: packetizer.packetize(frame, 0), args.repeats)
        print(f"{name} engine")
        print(f"  packetize only          {megabytes / packetize_s:9.1f} MB/s  "
              f"({len(datagrams) / packetize_s:,.0f} datagrams/s)")
        print(f"  packetize + reassemble  {megabytes / netsem_s:9.1f} MB/s  ({len(datagrams) / netsem_s:,.0f} "
              f"datagrams/s, {netsem_s / len(datagrams) * 1e6:.2f} us per datagram, to the latent and its mask)")
        print(f"  ratio (round trip / numpy copy) = {copy_s / netsem_s:.4f}")

if __name__ == "__main__":
    main()
