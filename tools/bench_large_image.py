"""Time and peak memory of a learned codec and the metrics on a 12-megapixel photograph.

    .venv/bin/python tools/bench_large_image.py                    # cnn-sem, 4000x3000
    .venv/bin/python tools/bench_large_image.py --codec swin --size 6000x4000
    .venv/bin/python tools/bench_large_image.py --engine torch     # the cnn in torch, to compare
    .venv/bin/python tools/bench_large_image.py --save big.png     # then: /usr/bin/time -v netsem send big.png

The photograph is a 2x2 mosaic of scikit-image's bundled photographs, each resized with
Pillow (Lanczos) to a quarter of the size.  Each phase reports wall and CPU seconds and its
peak resident memory: on Linux the kernel's high-water mark is reset before every phase
(/proc/self/clear_refs), elsewhere the process's peak so far is printed.  ``--tile-latents``
and ``--tile-above`` override the codec's tiling (``--tile-above 1e12``: untiled).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netsem.codecs.learned import LearnedCodec  # noqa: E402
from netsem.codecs.registry import LEARNED  # noqa: E402
from netsem.metrics import psnr_db, ssim  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def mosaic(width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8: the bundled photographs in a 2x2 grid."""
    out = np.empty((height, width, 3), np.uint8)
    hh, hw = height // 2, width // 2
    cells = [(0, 0, hh, hw), (0, hw, hh, width - hw), (hh, 0, height - hh, hw), (hh, hw, height - hh, width - hw)]
    for name, (top, left, h, w) in zip(PHOTOS, cells):
        photo = Image.fromarray(np.ascontiguousarray(getattr(skimage.data, name)()[:, :, :3]))
        out[top : top + h, left : left + w] = np.asarray(photo.resize((w, h), Image.LANCZOS))
    return out


def rss_mb(field: str) -> float:
    """VmRSS or VmHWM of this process in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(label: str, fn):
    exact = reset_peak()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = rss_mb("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    note = "" if exact else " (process peak so far)"
    print(f"{label:10s} {wall:7.2f} s wall {cpu:7.2f} s cpu   peak RSS {peak:7.0f} MB{note}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codec", default="cnn-sem", choices=sorted(LEARNED))
    parser.add_argument("--size", default="4000x3000", help="WIDTHxHEIGHT")
    parser.add_argument("--tile-latents", type=int, default=None)
    parser.add_argument("--tile-above", type=float, default=None, help="pixels")
    parser.add_argument("--engine", default="auto", choices=["auto", "numpy", "torch"],
                        help="what runs the network (auto: numpy for cnn, torch for swin)")
    parser.add_argument("--save", default=None, help="also write the photograph here (PNG)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    spec = LEARNED[args.codec]
    overrides = {}
    if args.tile_latents is not None:
        overrides["tile_latents"] = args.tile_latents
    if args.tile_above is not None:
        overrides["tile_above_pixels"] = int(args.tile_above)
    codec = LearnedCodec(spec.name, spec.weights, engine=args.engine, **overrides)
    image = mosaic(width, height)
    if args.save:
        Image.fromarray(image).save(args.save)
    print(f"{args.codec} on a {width}x{height} photograph ({width * height / 1e6:.1f} Mpixel), "
          f"{codec.engine} engine, tiles of {codec.tile_latents} latent positions above "
          f"{codec.tile_above_pixels} pixels; "
          f"RSS before: {rss_mb('VmRSS'):.0f} MB")
    encoded = measure("encode", lambda: codec.to_frame(image))
    decoded = measure("decode", lambda: codec.from_frame(encoded))
    psnr = measure("psnr", lambda: psnr_db(image, decoded))
    structural = measure("ssim", lambda: ssim(image, decoded))
    print(f"PSNR {psnr:.3f} dB, SSIM {structural:.4f}")


if __name__ == "__main__":
    main()
