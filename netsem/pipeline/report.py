"""The quality report of one transmitted image: a table for people, JSON for scripts."""

from __future__ import annotations

import json
import math
import platform
from dataclasses import asdict, dataclass, field

import numpy as np


def versions() -> dict[str, str]:
    import construct
    import scapy
    import skimage
    import trio

    import netsem

    found = {
        "netsem": netsem.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "trio": trio.__version__,
        "construct": construct.__version__,
        "scapy": scapy.__version__,
        "scikit-image": skimage.__version__,
    }
    try:
        import torch

        found["torch"] = torch.__version__
    except ImportError:
        pass
    return found


@dataclass
class Report:
    codec: str
    partition: str
    interleave: bool
    netem: str
    phy: str
    seed: int
    image: str
    image_size: tuple[int, int]
    psnr_db: float
    ssim: float
    lossless_psnr_db: float
    datagrams_sent: int
    datagrams_received: int
    units_total: int
    units_received: int
    bytes_on_wire: int
    bpp: float
    encode_s: float
    network_s: float
    decode_s: float
    total_s: float
    transport: str  # "udp" (real sockets) or "virtual" (simulate)
    jpeg_quality: int | None = None  # jpeg only
    receiver: dict = field(default_factory=dict)  # reassembler counters
    link: dict = field(default_factory=dict)  # emulator counters
    versions: dict = field(default_factory=versions)

    def to_json(self) -> str:
        def finite(value):
            return None if isinstance(value, float) and math.isinf(value) else value

        return json.dumps({k: finite(v) for k, v in asdict(self).items()}, indent=None, sort_keys=False)

    def rows(self) -> list[tuple[str, str]]:
        def db(value: float) -> str:
            return "identical (inf)" if math.isinf(value) else f"{value:.2f} dB"

        return [
            ("codec", f"{self.codec}{'' if self.jpeg_quality is None else f' quality {self.jpeg_quality}'}  "
                      f"({self.partition} partition, interleave {'on' if self.interleave else 'off'})"),
            ("image", f"{self.image}  {self.image_size[1]}x{self.image_size[0]}"),
            ("network", f"{self.transport}  netem: {self.netem or '(none)'}  phy: {self.phy or '(none)'}  seed {self.seed}"),
            ("PSNR", f"{db(self.psnr_db)}   (lossless {db(self.lossless_psnr_db)})"),
            ("SSIM", f"{self.ssim:.4f}"),
            ("datagrams", f"{self.datagrams_received} / {self.datagrams_sent} received"),
            ("units", f"{self.units_received} / {self.units_total} received"),
            ("on the wire", f"{self.bytes_on_wire} bytes, {self.bpp:.3f} bits per pixel"),
            ("time", f"encode {self.encode_s*1e3:.0f} ms, network {self.network_s*1e3:.0f} ms, "
                     f"decode {self.decode_s*1e3:.0f} ms, total {self.total_s*1e3:.0f} ms"),
        ]
