"""What `send` and `simulate` share: the sender's half (encode, packetize) and the
receiver's half (decode, measure, report). Only the transport between them differs."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from emulator.grammar import parse_netem
from emulator.link import Link
from netsem.codecs.jpeg import JpegCodec
from netsem.pipeline import DEFAULT_CODEC
from netsem.pipeline.frames import (
    AnyCodec,
    Encoded,
    check_partition,
    decode_lossless,
    decode_received,
    encode,
    load_codec,
    outgoing_frame,
)
from netsem.pipeline.images import load_image, save_image
from netsem.pipeline.metrics import psnr_db, ssim
from netsem.pipeline.report import Report
from packetizers.packetizer import Packetizer
from packetizers.reassembler import Frame, ReassemblerLimits
from packetizers.wire import DEFAULT_MTU, PartitionKind

PARTITIONS = {"channel": PartitionKind.CHANNEL, "token": PartitionKind.TOKEN, "spatial": PartitionKind.SPATIAL,
              "segment": PartitionKind.SEGMENT}


@dataclass(frozen=True)
class SessionOptions:
    image: str | None = None
    codec: str = DEFAULT_CODEC
    partition: str = "channel"
    interleave: bool = True
    netem: str = ""
    phy: str = ""  # PHY stage spec (netsem/phy/spec.py); empty: no physical layer
    seed: int = 0
    mtu: int = DEFAULT_MTU
    frame_timeout: float = 0.25
    out: str | None = None
    jpeg_quality: int = 75  # jpeg only

    def reassembler_limits(self) -> ReassemblerLimits:
        return ReassemblerLimits(frame_timeout=self.frame_timeout)


@dataclass
class Outgoing:
    """The sender's half of a session, ready to be transmitted."""

    options: SessionOptions
    image: np.ndarray
    label: str
    codec: AnyCodec
    encoded: Encoded
    datagrams: list[bytes]
    encode_s: float  # encode + packetize
    cache: EncodingCache | None = None


def build_link(options: SessionOptions) -> Link:
    """The emulated path of a session: netem's chain, then the PHY stage if one is asked for."""
    stages = []
    if options.phy:
        from netsem.phy import phy_stage

        stages.append(phy_stage(options.phy, options.seed))
    return Link(parse_netem(options.netem), seed=options.seed, stages=stages)


class EncodingCache:
    """Encodings (and lossless decodes) reused across the runs of a sweep: the codec is
    deterministic, so only the network part needs repeating."""

    def __init__(self) -> None:
        self._entries: dict[tuple, tuple[np.ndarray, str, Encoded, float]] = {}
        self.lossless: dict[tuple, np.ndarray] = {}

    def encode(self, image_path: str | None, codec: AnyCodec, mtu: int) -> tuple[np.ndarray, str, Encoded, float]:
        key = codec_key(image_path, codec, mtu)
        if key not in self._entries:
            image, label = load_image(image_path)
            started = time.perf_counter()
            encoded = encode(codec, image, mtu)
            self._entries[key] = (image, label, encoded, time.perf_counter() - started)
        return self._entries[key]


def codec_key(image_path: str | None, codec: AnyCodec, mtu: int) -> tuple:
    """What an encoding depends on (jpeg: its quality, and the MTU its segments fit)."""
    if isinstance(codec, JpegCodec):
        return (image_path, codec.name, codec.quality, mtu)
    return (image_path, codec.name)


def prepare(options: SessionOptions, cache: EncodingCache | None = None) -> Outgoing:
    codec = load_codec(options.codec, options.jpeg_quality)
    check_partition(options.codec, codec, options.partition)
    packetizer = Packetizer(PARTITIONS[options.partition], interleave=options.interleave,
                            seed=options.seed, mtu=options.mtu)
    image, label, encoded, encode_s = (cache or EncodingCache()).encode(options.image, codec, options.mtu)
    started = time.perf_counter()
    datagrams = packetizer.packetize(outgoing_frame(codec, encoded), frame_id=0)
    packetize_s = time.perf_counter() - started
    return Outgoing(options, image, label, codec, encoded, datagrams, encode_s + packetize_s, cache)


def finish(outgoing: Outgoing, frame: Frame, *, network_s: float, transport: str,
           receiver: dict, link: dict) -> Report:
    options, image, codec = outgoing.options, outgoing.image, outgoing.codec
    decode_started = time.perf_counter()
    reconstruction = decode_received(codec, frame)
    decode_s = time.perf_counter() - decode_started
    lossless = _lossless_decode(outgoing)
    if options.out:
        save_image(reconstruction, options.out)
    wire_bytes = sum(map(len, outgoing.datagrams))
    return Report(
        codec=options.codec, partition=options.partition, interleave=options.interleave, netem=options.netem,
        phy=options.phy,
        seed=options.seed, image=outgoing.label, image_size=image.shape[:2],
        psnr_db=psnr_db(image, reconstruction), ssim=ssim(image, reconstruction),
        lossless_psnr_db=psnr_db(image, lossless),
        datagrams_sent=len(outgoing.datagrams), datagrams_received=frame.datagrams_received,
        units_total=frame.header.unit_count, units_received=int(frame.unit_received.sum()),
        bytes_on_wire=wire_bytes, bpp=wire_bytes * 8 / (image.shape[0] * image.shape[1]),
        encode_s=outgoing.encode_s, network_s=network_s, decode_s=decode_s,
        total_s=outgoing.encode_s + network_s + decode_s, transport=transport,
        jpeg_quality=getattr(codec, "quality", None),
        receiver=receiver, link=link,
    )


def _lossless_decode(outgoing: Outgoing) -> np.ndarray:
    key = codec_key(outgoing.options.image, outgoing.codec, outgoing.options.mtu)
    store = outgoing.cache.lossless if outgoing.cache is not None else {}
    if key not in store:
        store[key] = decode_lossless(outgoing.codec, outgoing.encoded)
    return store[key]
