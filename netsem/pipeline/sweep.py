"""`netsem sweep`: codecs x partitions x interleaving x netem specs x seeds x images.

Every run is one `simulate` (virtual clock, the default) or `send` (real sockets) session;
encodings are computed once per (image, codec). Each result row carries the full
configuration and the versions that produced it, so a results file explains itself.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from netsem.pipeline.report import versions
from netsem.pipeline.send import transmit_udp
from netsem.pipeline.frames import load_codec
from packetizers.kinds import PartitionKind
from netsem.pipeline.session import EncodingCache, SessionOptions, finish, prepare
from netsem.pipeline.simulate import transmit_virtual

_RANDOM_LOSS = re.compile(r"^\s*loss\s+(?:random\s+)?([0-9.]+)%?\s*$")


@dataclass(frozen=True)
class SweepGrid:
    images: tuple[str | None, ...]
    codecs: tuple[str, ...]
    partitions: tuple[str, ...]
    interleave: tuple[bool, ...]
    netem: tuple[str, ...]
    seeds: tuple[int, ...]
    mtu: int = 1200
    transport: str = "virtual"  # or "udp"
    jpeg_quality: int = 75
    jpeg_match: str | None = None  # a codec: jpeg takes, per image, the best quality within its bytes on the wire

    def codec_partitions(self) -> list[tuple[str, str]]:
        """(codec, partition) pairs: a byte-stream codec (jpeg) is always cut where its format
        allows, so it runs once per other setting whatever latent partitions are asked for;
        a latent codec in each asked partition it supports."""
        pairs = []
        segment = PartitionKind.SEGMENT.word
        for codec in self.codecs:
            supported = load_codec(codec).partitions
            if segment in supported:
                pairs.append((codec, segment))
            else:
                pairs += [(codec, p) for p in self.partitions if p in supported]
        return pairs

    def runs(self) -> Iterator[SessionOptions]:
        for image, (codec, partition), interleave, netem, seed in itertools.product(
            self.images, self.codec_partitions(), self.interleave, self.netem, self.seeds
        ):
            yield SessionOptions(image=image, codec=codec, partition=partition, interleave=interleave,
                                 netem=netem, seed=seed, mtu=self.mtu, jpeg_quality=self.jpeg_quality)

    def __len__(self) -> int:
        return (len(self.images) * len(self.codec_partitions()) * len(self.interleave)
                * len(self.netem) * len(self.seeds))


def configured_loss_percent(netem: str) -> float | None:
    """P of a plain Bernoulli spec ('loss random P%', '' = 0), else None."""
    if not netem.strip():
        return 0.0
    match = _RANDOM_LOSS.match(netem)
    return float(match.group(1)) if match else None


def wire_bytes(options: SessionOptions, cache: EncodingCache) -> int:
    return sum(map(len, prepare(options, cache).datagrams))


def matched_jpeg_quality(image: str | None, codec: str, mtu: int, cache: EncodingCache) -> int:
    """The highest jpeg quality whose datagrams take no more bytes on the wire than `codec`'s
    for the same image, sent in its default (channel) partition (headers, unit tables and CRCs
    counted on both sides); 1 if none fits."""
    budget = wire_bytes(SessionOptions(image=image, codec=codec, mtu=mtu), cache)
    low, high, best = 1, 95, 1
    while low <= high:
        quality = (low + high) // 2
        jpeg = SessionOptions(image=image, codec="jpeg", partition="segment", jpeg_quality=quality, mtu=mtu)
        if wire_bytes(jpeg, cache) <= budget:
            best, low = quality, quality + 1
        else:
            high = quality - 1
    return best


def run_sweep(grid: SweepGrid, on_row: Callable[[dict], None] | None = None) -> list[dict]:
    cache = EncodingCache()
    transmit = transmit_udp if grid.transport == "udp" else transmit_virtual
    rows = []
    matched: dict[str | None, int] = {}
    for options in grid.runs():
        if options.codec == "jpeg" and grid.jpeg_match:
            if options.image not in matched:
                matched[options.image] = matched_jpeg_quality(options.image, grid.jpeg_match, grid.mtu, cache)
            options = replace(options, jpeg_quality=matched[options.image])
        outgoing = prepare(options, cache)
        sent = transmit([outgoing])
        report = finish(outgoing, sent.frames[0], transport=grid.transport, receiver=sent.receiver, link=sent.link,
                        network_s=sent.network_s)
        row = {key: value for key, value in asdict(report).items()
               if key not in ("receiver", "link", "versions", "encode_s", "network_s", "decode_s", "total_s",
                              "timings", "notes", "network_virtual_s", "stream_id", "frame_id")}
        row["image_size"] = "x".join(map(str, report.image_size[::-1]))
        row["mtu"] = options.mtu
        row["loss_percent"] = configured_loss_percent(options.netem)
        row["datagram_loss"] = 1 - report.datagrams_received / report.datagrams_sent
        row["unit_loss"] = 1 - report.units_received / report.units_total
        row["delta_psnr_db"] = report.psnr_db - report.lossless_psnr_db
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def write_results(rows: list[dict], path: Path, grid: SweepGrid) -> None:
    """CSV (one row per run, versions as columns) or JSON (config, versions, rows)."""
    found = versions()
    if path.suffix == ".json":
        config = {**asdict(grid), "images": [image or "skimage:astronaut" for image in grid.images]}
        path.write_text(json.dumps({"config": config, "versions": found, "rows": rows}, indent=1, default=str))
        return
    with path.open("w", newline="") as handle:
        columns = list(rows[0]) + [f"version_{name}" for name in found]
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, **{f"version_{name}": value for name, value in found.items()}})


def read_results(path: Path) -> list[dict]:
    if path.suffix == ".json":
        return json.loads(path.read_text())["rows"]
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key, value in row.items():
            if key in ("codec", "partition", "netem", "image", "image_size", "transport") or key.startswith("version_"):
                continue
            if value in ("True", "False"):
                row[key] = value == "True"
            elif value == "":
                row[key] = None
            else:
                row[key] = float(value)
    return rows
