"""netsem from Python: your codec (or ours) over an emulated network, in a few lines.

    import netsem
    report = netsem.simulate("photo.png", codec="cnn-sem", netem="loss random 10%", seed=1)
    report.psnr_db, report.ssim, report.datagrams_received        # what `--json` prints

    chain = netsem.Chain(codec=my_codec, partition="spatial", netem="loss gemodel 1% 10% 70% 0.1%",
                         stages=[my_stage], seed=3)
    chain.simulate(image)                  # virtual clock, no sockets: fast, deterministic
    chain.send(image, pcap="run.pcapng")   # the same over real UDP sockets on 127.0.0.1
    chain.run(["a.png", "b.png"])          # a sequence of frames: SessionResult(reports, summary)

`image` is a path (or `skimage:NAME`), an (H, W, 3) uint8 array, or a `LoadedImage`. `codec`
is a name `netsem models` lists, `module:attribute`, or any object with `name`,
`partitions`, `to_frame(image, payload_budget)` and `from_frame(frame)` (see
`netsem.codecs.base.Codec`; `netsem.TorchCodec` wraps torch modules). `stages` are emulator
stages after the PHY (objects with `name` and `process(datagram, time)`, or "NAME key=value"
of registered ones); `loss_model` replaces netem's loss clause (an object with `lost()`, or
"NAME key=value"). For the same seed, `simulate` and `send` give the same report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from netsem.codecs.base import Codec
from netsem.codecs.channel_skip import expected_loss_of
from netsem.pipeline import DEFAULT_CODEC, DEFAULT_EXPECTED_LOSS
from netsem.pipeline.images import LoadedImage, load_images
from netsem.pipeline.report import Report
from netsem.pipeline.session import Pacing, SessionOptions, SessionResult
from packetizers.wire import DEFAULT_MTU

Image = str | np.ndarray | LoadedImage


@dataclass(frozen=True)
class Chain:
    """A codec, a partition and an emulated network, ready to carry images."""

    codec: str | Codec = DEFAULT_CODEC
    partition: str | None = None  # default: the codec's first (channel for latents, segment for jpeg)
    netem: str = ""  # tc netem words
    phy: str = ""  # PHY stage spec, e.g. "awgn snr 6dB ldpc 1/2 qpsk"
    stages: tuple = ()
    loss_model: object = None
    seed: int = 0
    interleave: bool = True
    mtu: int = DEFAULT_MTU
    weights: str | None = None  # a trained variant of a learned codec
    jpeg_quality: int = 75
    frame_timeout: float = 0.25
    pacing: Pacing = field(default_factory=Pacing)
    # per image, the imputing codec and channels left out with the most PSNR within `bpp` bits per pixel
    # on the wire, for a link expected to lose `expected_loss` percent, or a list of such percents, each as
    # likely (`--bpp`, `--expect-loss`); None: `codec`
    bpp: float | None = None
    expected_loss: float | Sequence[float] = DEFAULT_EXPECTED_LOSS
    skip: int = 0  # channels the imputing -ec codecs leave out (`--skip-channels`)
    refine: int = 0  # encoder-side latent refinement steps (`--refine`)

    def options(self) -> SessionOptions:
        from netsem.pipeline.frames import load_codec

        if self.bpp is not None and (self.codec != DEFAULT_CODEC or self.weights or self.skip or self.bpp <= 0):
            raise ValueError("bpp (> 0) chooses the imputing codec and the channels it leaves out itself: give it "
                             "without codec, weights and skip")
        partition = self.partition
        if partition is None:
            partition = load_codec(self.codec, weights=self.weights, jpeg_quality=self.jpeg_quality).partitions[0]
        return SessionOptions(codec=self.codec, weights=self.weights, partition=partition, interleave=self.interleave,
                              netem=self.netem, phy=self.phy, seed=self.seed, mtu=self.mtu,
                              frame_timeout=self.frame_timeout, jpeg_quality=self.jpeg_quality,
                              stages=tuple(self.stages), loss_model=self.loss_model, pacing=self.pacing, bpp=self.bpp,
                              expected_loss=expected_loss_of(self.expected_loss), skip=self.skip,
                              refine=self.refine)

    def simulate(self, image: Image) -> Report:
        """One image on the virtual clock."""
        return self.run([image], transport="virtual").reports[0]

    def send(self, image: Image, pcap: str | None = None) -> Report:
        """One image over real UDP sockets through the in-process emulator."""
        return self.run([image], transport="udp", pcap=pcap).reports[0]

    def run(self, images: list[Image], transport: str = "virtual", pcap: str | None = None) -> SessionResult:
        """A sequence of images as consecutive frames of one stream."""
        loaded = [as_loaded(image) for image in images]
        if transport == "virtual":
            from netsem.pipeline.simulate import run_simulate

            return run_simulate(self.options(), loaded)
        if transport != "udp":
            raise ValueError(f"transport is 'virtual' or 'udp', not {transport!r}")
        from netsem.pipeline.send import run_send

        return run_send(self.options(), pcap=pcap, images=loaded)


def as_loaded(image: Image) -> LoadedImage:
    if isinstance(image, LoadedImage):
        return image
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"an image array is (H, W, 3) uint8, not {image.shape} {image.dtype}")
        return LoadedImage(np.ascontiguousarray(image), f"array {image.shape[1]}x{image.shape[0]}")
    (loaded, *more) = load_images((image,))
    if more:
        raise ValueError(f"{image} holds {1 + len(more)} images: use Chain.run for a sequence")
    return loaded


def simulate(image: Image, **chain) -> Report:
    """`Chain(**chain).simulate(image)`."""
    return Chain(**chain).simulate(image)


def send(image: Image, pcap: str | None = None, **chain) -> Report:
    """`Chain(**chain).send(image, pcap)`."""
    return Chain(**chain).send(image, pcap)
