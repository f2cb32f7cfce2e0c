"""Throughput of the PHY stage: 1200-byte datagrams through the digital chain.

    .venv/bin/python tools/bench_phy.py [--spec "mimo 2x2 rayleigh snr 6dB ldpc 1/2 qpsk"] [--count 64]

Prints datagrams/s for the full chain (process_batch and one-at-a-time process), the same
chain without LDPC decoding (encode, QAM, channel, detection, demapping, CRC), their ratio,
and the time a 768x512 image's worth of datagrams (100) takes through `process`; then the
full chain with each decoder of `--compare` (default: bp, the reference), in the same run,
so that the ratio holds on a busy machine where absolute numbers do not.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from netsem.phy.digital import DigitalPhy
from netsem.phy.spec import parse_phy_spec
from netsem.phy.stage import PhyStage


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="mimo 2x2 rayleigh snr 6dB ldpc 1/2 qpsk precoder svd detector lmmse")
    ap.add_argument("--count", type=int, default=64)
    ap.add_argument("--size", type=int, default=1200)
    ap.add_argument("--compare", default="bp", help="comma-separated decoders to time as well ('' for none)")
    args = ap.parse_args()
    spec = parse_phy_spec(args.spec)
    rng = np.random.default_rng(0)
    data = [bytes(rng.integers(0, 256, args.size, dtype=np.uint8)) for _ in range(args.count)]

    def timed(fn) -> float:
        fn(data[:2])  # build the codes (cached) before timing
        start = time.perf_counter()
        fn(data)
        return time.perf_counter() - start

    full = PhyStage(spec, 1)
    t_batch = timed(lambda d: full.process_batch(d, [0.0] * len(d)))
    delivered = full.stats["delivered"] / max(1, full.stats["datagrams"])
    one = PhyStage(spec, 1)
    t_one = timed(lambda d: [one.process(x, 0.0) for x in d])
    nodec = DigitalPhy(spec, np.random.default_rng(1), skip_decoding=True)
    t_nodec = timed(nodec.run)
    image = PhyStage(spec, 2)
    image.process(data[0], 0.0)
    start = time.perf_counter()
    for i in range(100):
        image.process(data[i % len(data)], 0.0)
    t_image = time.perf_counter() - start

    n = args.count
    print(f"spec: {spec.describe()}")
    print(f"{n} datagrams of {args.size} bytes, delivered {delivered:.0%}")
    print(f"full chain, process_batch : {n / t_batch:8.1f} datagrams/s")
    print(f"full chain, process       : {n / t_one:8.1f} datagrams/s")
    print(f"without LDPC decoding     : {n / t_nodec:8.1f} datagrams/s")
    print(f"ratio (no-decode / full)  : {t_batch / t_nodec:8.1f}x")
    print(f"100 datagrams (a 768x512 image) through process: {t_image:.2f} s")
    for decoder in filter(None, args.compare.split(",")):
        other = PhyStage(dataclasses.replace(spec, decoder=decoder), 1)
        t_other = timed(lambda d, stage=other: stage.process_batch(d, [0.0] * len(d)))
        print(f"decoder {decoder:8s} process_batch: {n / t_other:8.1f} datagrams/s "
              f"({spec.decoder} {t_other / t_batch:.1f}x faster)")


if __name__ == "__main__":
    main()
