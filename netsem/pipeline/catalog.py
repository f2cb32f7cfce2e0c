"""`netsem models`: every codec netsem knows, where it comes from, and what it costs on the wire."""

from __future__ import annotations

import click
import numpy as np

SIZE = (512, 768)  # (H, W) the table describes


def sent_frame(codec, size: tuple[int, int]):
    """What the codec sends for an image of `size`: from its declared latent shape when it
    has one (no encoder run), else what it makes of a grey image."""
    from netsem.pipeline.frames import payload_budget
    from packetizers.frames import LatentFrame
    from packetizers.wire import DEFAULT_MTU

    shape = getattr(codec, "latent_shape", None)
    if callable(shape) and getattr(codec, "layout", None) in ("chw", "nd") and hasattr(codec, "bit_width"):
        grid = codec.latent_grid(*size) if codec.layout == "nd" else (0, 0)
        return LatentFrame(np.zeros(shape(*size), np.int16), codec.layout, codec.bit_width, True, image_size=size,
                           token_grid=grid)
    return codec.to_frame(np.full((*size, 3), 128, np.uint8), payload_budget(DEFAULT_MTU))


def wire_bits_per_pixel(frame) -> float:
    """Bits per pixel of the datagrams (headers, unit tables, CRCs counted) carrying `frame`:
    a latent in the channel partition, a stream in its segments, at the default MTU."""
    from packetizers.kinds import PartitionKind
    from packetizers.packetizer import Packetizer

    partition = PartitionKind.CHANNEL if hasattr(frame, "latent") else PartitionKind.SEGMENT
    height, width = frame.image_size
    return sum(map(len, Packetizer(partition).packetize(frame, 0))) * 8 / (height * width)


def describe(entry) -> tuple[str, ...]:
    """The table row of one registered codec (built to measure it: a codec that fails to load
    says why instead)."""
    from netsem.codecs.base import CodecError
    from netsem.codecs.registry import get_codec

    try:
        codec = get_codec(entry.name)
        # a byte-stream codec's size depends on the image: encoding a grey one (1-2 s for an -ec codec) tells nothing
        frame = None if tuple(codec.partitions) == ("segment",) else sent_frame(codec, SIZE)
    except CodecError as error:
        return (entry.name, str(entry.codec_id), entry.origin, "-", "-", "-", "-", "-", f"cannot load: {error}")
    except Exception as error:  # noqa: BLE001 — a plug-in's failure is its row, not the listing's end
        return (entry.name, str(entry.codec_id), entry.origin, "-", "-", "-", "-", "-",
                f"fails: {type(error).__name__}: {error}")
    params = getattr(codec, "num_parameters", None)
    if hasattr(frame, "latent"):
        latent, bpp = "x".join(map(str, frame.latent.shape)), f"{frame.bits_per_pixel:.3f}"
    else:
        latent, bpp = "byte stream", "by content"
    wire = f"{wire_bits_per_pixel(frame):.3f}" if hasattr(frame, "latent") else "by content"
    weights = getattr(codec, "weights_path", None)
    return (entry.name, str(entry.codec_id), entry.origin, "-" if params is None else f"{params:,}", latent,
            bpp, wire, ", ".join(codec.partitions), weights.name if weights is not None else "-")


@click.command()
def models() -> None:
    """List every codec netsem knows (built-ins, installed plug-ins): its wire id, where it
    comes from, parameters, latent and bits per pixel for a 768x512 image (of the latent, and
    of its datagrams in its first partition at the default MTU), partitions, weights."""
    from rich.console import Console
    from rich.table import Table

    from netsem.codecs.registry import entries

    table = Table(title="netsem codecs (latent and bits/pixel for a 768x512 image)")
    for column in ("name", "id", "origin", "params", "latent", "bpp", "bpp wire", "partitions", "weights"):
        table.add_column(column)
    for entry in entries():
        table.add_row(*describe(entry))
    Console(width=200).print(table)
