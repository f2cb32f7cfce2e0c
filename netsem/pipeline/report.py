"""The quality report of one transmitted image: a table for people, JSON for scripts."""

from __future__ import annotations

import json
import math
import platform
from dataclasses import asdict, dataclass, field



def versions() -> dict[str, str]:
    """The versions that produced a result, read from the installed distributions (so that
    recording them imports nothing: a run without a learned codec never loads torch)."""
    from importlib.metadata import PackageNotFoundError, version

    import netsem

    found = {"netsem": netsem.__version__, "python": platform.python_version()}
    for distribution in ("numpy", "trio", "construct", "scapy", "scikit-image", "torch"):
        try:
            found[distribution] = version(distribution)
        except PackageNotFoundError:
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
    lossless_psnr_db: float | None  # None when the reference decode was not asked for
    datagrams_sent: int
    datagrams_received: int
    units_total: int
    units_received: int  # complete units
    bytes_on_wire: int
    bpp: float
    encode_s: float
    network_s: float
    decode_s: float
    total_s: float
    transport: str  # "udp" (real sockets) or "virtual" (simulate)
    jpeg_quality: int | None = None  # jpeg only
    refine: int = 0  # iterations of encoder-side latent refinement
    skip_channels: int = 0  # channels the codec left out (the receiver imputes them)
    units_partial: int = 0  # units of which some, not all, elements arrived
    network_virtual_s: float | None = None  # simulate: the network's seconds on the virtual clock
    timings: dict = field(default_factory=dict)  # named wall-clock phases; they add up to total_s
    stream_id: int = 0
    frame_id: int = 0
    notes: list = field(default_factory=list)  # conversions of the input, said once
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
            ("codec", f"{self.codec}{'' if self.jpeg_quality is None else f' quality {self.jpeg_quality}'}"
                      f"{f', latent refined ({self.refine} steps)' if self.refine else ''}"
                      f"{f', {self.skip_channels} channels not sent' if self.skip_channels else ''}  "
                      f"({self.partition} partition, interleave {'on' if self.interleave else 'off'})"),
            ("image", f"{self.image}  {self.image_size[1]}x{self.image_size[0]}"),
            ("network", f"{self.transport}  netem: {self.netem or '(none)'}  phy: {self.phy or '(none)'}  seed {self.seed}"),
            ("PSNR", db(self.psnr_db) + ("" if self.lossless_psnr_db is None
                                         else f"   (lossless {db(self.lossless_psnr_db)})")),
            ("SSIM", f"{self.ssim:.4f}"),
            ("datagrams", f"{self.datagrams_received} / {self.datagrams_sent} received"),
            ("units", f"{self.units_received} / {self.units_total} received whole"
                      + (f", {self.units_partial} in part" if self.units_partial else "")),
            ("on the wire", f"{self.bytes_on_wire} bytes, {self.bpp:.3f} bits per pixel"),
            ("time", ", ".join(f"{name} {seconds * 1e3:.0f} ms" for name, seconds in self.timings.items())
                     + f" = total {self.total_s * 1e3:.0f} ms"
                     + ("" if self.network_virtual_s is None else
                        f" (network on the virtual clock: {self.network_virtual_s * 1e3:.0f} ms)")),
        ]
