"""`netsem send`: one image through codec, packetizer, real UDP on 127.0.0.1, reassembler."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import trio

from netsem.codecs.registry import get_codec
from netsem.codecs.base import CodecError
from netsem.pipeline.frames import encoded_from_frame, latent_frame
from netsem.pipeline.images import load_image, save_image
from netsem.pipeline.metrics import psnr_db, ssim
from netsem.pipeline.report import Report
from netsem.pipeline.udp import receive_frames, send_datagrams, udp_socket
from packetizers.packetizer import Packetizer
from packetizers.reassembler import Frame, Reassembler, ReassemblerLimits
from packetizers.wire import DEFAULT_MTU, PartitionKind

PARTITIONS = {"channel": PartitionKind.CHANNEL, "token": PartitionKind.TOKEN, "spatial": PartitionKind.SPATIAL}


@dataclass(frozen=True)
class SendOptions:
    image: str | None = None
    codec: str = "raw"
    partition: str = "channel"
    interleave: bool = True
    seed: int = 0
    mtu: int = DEFAULT_MTU
    frame_timeout: float = 0.25
    out: str | None = None


async def _transmit(datagrams: list[bytes], limits: ReassemblerLimits) -> tuple[Frame, dict]:
    reassembler = Reassembler(limits)
    with udp_socket() as receiver, udp_socket() as sender:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_datagrams, sender, datagrams, receiver.getsockname())
            (frame,) = await receive_frames(receiver, reassembler)
    return frame, reassembler.stats()


def run_send(options: SendOptions) -> Report:
    image, label = load_image(options.image)
    codec = get_codec(options.codec)
    if options.partition not in codec.partitions:
        raise CodecError(f"codec {options.codec} does not support the {options.partition} partition "
                         f"(it supports: {', '.join(codec.partitions)})")
    packetizer = Packetizer(PARTITIONS[options.partition], interleave=options.interleave,
                            seed=options.seed, mtu=options.mtu)
    started = time.perf_counter()
    encoded = codec.encode(image)
    datagrams = packetizer.packetize(latent_frame(encoded, codec.codec_id), frame_id=0)
    encoded_at = time.perf_counter()
    frame, receiver_stats = trio.run(_transmit, datagrams, ReassemblerLimits(frame_timeout=options.frame_timeout))
    received_at = time.perf_counter()
    received_latent, mask = encoded_from_frame(frame)
    reconstruction = codec.decode(received_latent, mask)
    decoded_at = time.perf_counter()
    lossless = codec.decode(encoded, np.ones(encoded.latent.shape, dtype=bool))
    if options.out:
        save_image(reconstruction, options.out)
    wire_bytes = sum(map(len, datagrams))
    return Report(
        codec=options.codec, partition=options.partition, interleave=options.interleave, netem="",
        seed=options.seed, image=label, image_size=image.shape[:2],
        psnr_db=psnr_db(image, reconstruction), ssim=ssim(image, reconstruction),
        lossless_psnr_db=psnr_db(image, lossless),
        datagrams_sent=len(datagrams), datagrams_received=frame.datagrams_received,
        units_total=frame.header.unit_count, units_received=int(frame.unit_received.sum()),
        bytes_on_wire=wire_bytes, bpp=wire_bytes * 8 / (image.shape[0] * image.shape[1]),
        encode_s=encoded_at - started, network_s=received_at - encoded_at, decode_s=decoded_at - received_at,
        total_s=decoded_at - started, transport="udp", receiver=receiver_stats,
    )
