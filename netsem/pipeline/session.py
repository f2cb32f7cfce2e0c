"""What `send` and `simulate` share: the sender's half (load, encode, packetize, pace) and
the receiver's half (decode, measure, report). Only the transport between them differs.

A session sends one image or a sequence of them as consecutive frames of one stream; frame
ids count up from a start derived from the seed (so reruns send the same bytes), or from a
random start when talking to a long-running receiver (`send --to`).
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import compress

import numpy as np

from emulator.correlation import component_rng
from emulator.grammar import parse_netem
from emulator.link import ETHERNET_IPV4_UDP_HEADER_BYTES, Link
from emulator.loss import LossModel, create_loss_model, parse_loss_model_option
from emulator.stages import Stage, StageOutcome, create_stage, parse_stage_option
from netsem.codecs.base import Codec, Frame
from netsem.codecs.channel_skip import ExpectedLoss, curves, loss_words, lowest_rate, shortlist
from netsem.metrics import psnr_db, ssim
from netsem.pipeline import DEFAULT_CODEC, DEFAULT_EXPECTED_LOSS
from netsem.pipeline.frames import check_partition, decode_received, frame_elements, load_codec, outgoing_frame
from netsem.pipeline.images import LoadedImage, load_one, save_image
from netsem.pipeline.report import Report
from packetizers.kinds import PartitionKind
from packetizers.packetizer import Packetizer
from packetizers.reassembler import Frame as Reassembled
from packetizers.reassembler import Reassembler, ReassemblerLimits
from packetizers.wire import DEFAULT_MTU

# `--bpp` on a lossy link: the best REHEARSED of the shortlisted codecs (by PSNR measured on the image less the
# fit's loss) are decoded under REHEARSALS seeded patterns of lost datagrams at each expected loss
REHEARSED = 3
REHEARSALS = 4
REHEARSAL_SEED = 0x7E4EA125  # not the session's seed: the same loss numbers whatever link the session runs


@dataclass(frozen=True)
class Pacing:
    """When a sender lets each datagram go: at most `rate` bytes per second on the wire
    (payload + Ethernet/IP/UDP headers, as netem's `rate` counts), and at least `gap`
    seconds apart. Without pacing a frame leaves as one burst."""

    rate: float | None = None  # bytes per second
    gap: float | None = None  # seconds

    def offsets(self, sizes: list[int]) -> list[float]:
        """Seconds after the start at which each datagram of `sizes` bytes may leave."""
        times, clock = [], 0.0
        for index, size in enumerate(sizes):
            if index and self.gap:
                clock = max(clock, times[-1] + self.gap)
            times.append(clock)
            if self.rate:
                clock += (size + ETHERNET_IPV4_UDP_HEADER_BYTES) / self.rate
        return times


@dataclass(frozen=True)
class SessionOptions:
    """Everything a session's result depends on. `codec` is a name (or `module:attribute`)
    or a codec object; `stages` are extra emulator stages after the PHY (objects, or
    "NAME key=value ..." of registered ones); `loss_model` replaces netem's loss (an object
    with `lost()`, or "NAME key=value ..." of a registered one)."""

    image: str | None = None
    codec: str | Codec = DEFAULT_CODEC
    weights: str | None = None  # a trained variant of a learned codec (its config comes from the file)
    partition: str | None = None  # default: the codec's first (channel for a latent, segment for a stream)
    interleave: bool = True
    netem: str = ""
    phy: str = ""  # PHY stage spec (netsem/phy/spec.py); empty: no physical layer
    seed: int = 0
    mtu: int = DEFAULT_MTU
    frame_timeout: float = 0.25
    out: str | None = None
    jpeg_quality: int = 75  # jpeg only
    stream_id: int = 0
    first_frame_id: int | None = None  # None: derived from the seed
    pacing: Pacing = Pacing()
    deadline: float | None = None  # receiver: datagrams later than this after a frame's first are lost
    stages: tuple[Stage | str, ...] = ()
    loss_model: LossModel | str | None = None
    reference: bool = True  # also decode with nothing lost, to report the codec's own (lossless) PSNR
    # per image, the imputing codec and channels not sent that give it the most PSNR within this
    # many bits per pixel on the wire (`_prepare_for_bpp`; the least rate when none fits); None: `codec`
    bpp: float | None = None
    refine: int = 0  # iterations of encoder-side latent refinement (cnn codecs and their -ec forms)
    skip: int = 0  # channels not sent (the imputing -ec codecs; `netsem.codecs.channel_skip`)
    # percent of datagrams lost `bpp` chooses for, or several, each as likely (`channel_skip.Curve.loss_penalty`)
    expected_loss: ExpectedLoss = DEFAULT_EXPECTED_LOSS

    def frame_id(self, index: int) -> int:
        """The id of the session's `index`-th frame."""
        start = self.first_frame_id
        if start is None:
            start = zlib.crc32(f"netsem frame ids {self.seed}".encode())
        return (start + index) % 2**32

    def reassembler_limits(self, outgoing: list[Outgoing]) -> ReassemblerLimits:
        """The receiver's limits for the session's own frames: large enough for every frame
        it sends (a 12-megapixel photograph included), all delivered whatever arrived."""
        defaults = ReassemblerLimits()
        elements = max(item.elements for item in outgoing)
        pixels = max(item.image.shape[0] * item.image.shape[1] for item in outgoing)
        frame_bytes = max(defaults.max_frame_bytes, 16 * elements)
        return ReassemblerLimits(
            max_frames_in_flight=max(defaults.max_frames_in_flight, len(outgoing)),
            max_frame_elements=max(defaults.max_frame_elements, elements),
            max_frame_bytes=frame_bytes, max_total_bytes=max(defaults.max_total_bytes, 2 * frame_bytes),
            max_image_pixels=max(defaults.max_image_pixels, pixels),
            frame_timeout=self.frame_timeout, frame_deadline=self.deadline, min_share=0.0,
        )


@dataclass
class Outgoing:
    """The sender's half of one frame, ready to be transmitted."""

    options: SessionOptions
    image: np.ndarray
    label: str
    codec: Codec
    frame: Frame  # what the codec made of the image, with its wire ids
    datagrams: list[bytes]
    frame_id: int
    timings: dict[str, float]  # load, encode, packetize (seconds)
    notes: tuple[str, ...] = ()
    cache: EncodingCache | None = None

    @property
    def encode_s(self) -> float:
        return self.timings["encode"] + self.timings["packetize"]

    @property
    def bpp(self) -> float:
        """Bits per pixel of the frame's datagrams on the wire."""
        return sum(map(len, self.datagrams)) * 8 / (self.image.shape[0] * self.image.shape[1])

    @property
    def elements(self) -> int:
        """Latent elements, or bytes of a stream."""
        return frame_elements(self.frame)


class TimedStage:
    """A Link stage that also counts the seconds its work takes, so reports can name them."""

    def __init__(self, stage) -> None:
        self.stage = stage
        self.name = stage.name
        self.seconds = 0.0

    def process(self, datagram: bytes, time_to_send: float) -> StageOutcome:
        started = time.perf_counter()
        try:
            return self.stage.process(datagram, time_to_send)
        finally:
            self.seconds += time.perf_counter() - started


def build_link(options: SessionOptions) -> Link:
    """The emulated path of a session: netem's chain (its loss replaced by `loss_model` if
    one is given), then the PHY stage and the extra stages. Named stages and loss models
    draw from generators derived from the seed, like netem's own."""
    stages: list[Stage] = []
    if options.phy:
        from netsem.phy import phy_stage

        stages.append(TimedStage(phy_stage(options.phy, options.seed)))
    for stage in options.stages:
        if isinstance(stage, str):
            name, settings = parse_stage_option(stage)
            stage = create_stage(name, settings, component_rng(options.seed, "forward", f"stage/{name}"))
        stages.append(TimedStage(stage))
    loss = options.loss_model
    if isinstance(loss, str):
        name, settings = parse_loss_model_option(loss)
        loss = create_loss_model(name, settings, component_rng(options.seed, "forward", f"loss/{name}"))
    return Link(parse_netem(options.netem), seed=options.seed, stages=stages, loss_model=loss)


def stage_seconds(link: Link) -> float:
    """Seconds the link's timed stages (the PHY) worked."""
    return sum(getattr(stage, "seconds", 0.0) for stage in link.stages)


class EncodingCache:
    """Encodings (and lossless decodes) reused across the runs of a sweep: the codec is
    deterministic, so only the network part needs repeating."""

    def __init__(self) -> None:
        self._entries: dict[tuple, tuple[LoadedImage, Frame, float, float]] = {}
        self.lossless: dict[tuple, np.ndarray] = {}

    def encode(self, image_path: str | None, codec: Codec, mtu: int) -> tuple[LoadedImage, Frame, float, float]:
        """The image, the codec's frame of it, and the seconds loading and encoding took."""
        key = codec_key(image_path, codec, mtu)
        if key not in self._entries:
            started = time.perf_counter()
            image = load_one(image_path)
            loaded_at = time.perf_counter()
            frame = outgoing_frame(codec, image.pixels, mtu=mtu)
            self._entries[key] = (image, frame, loaded_at - started, time.perf_counter() - loaded_at)
        return self._entries[key]


def codec_key(image: object, codec: Codec, mtu: int) -> tuple:
    """What an encoding depends on: the image, the codec object (the registry builds one per
    name, weights and parameters, e.g. jpeg's quality) and the MTU (a stream's segments fit it)."""
    return (image, id(codec), mtu)


def prepare(options: SessionOptions, cache: EncodingCache | None = None, *, loaded: LoadedImage | None = None,
            index: int = 0) -> Outgoing:
    """Frame `index` of the session: `loaded` if given, else `options.image`."""
    if options.bpp is not None:
        return _prepare_for_bpp(options, cache, loaded=loaded, index=index)
    started = time.perf_counter()
    codec = load_codec(options.codec, weights=options.weights, jpeg_quality=options.jpeg_quality,
                       refine=options.refine, skip=options.skip)
    if options.partition is None:
        options = replace(options, partition=codec.partitions[0])
    check_partition(codec, options.partition)
    codec_s = time.perf_counter() - started
    if loaded is None:
        image, frame, load_s, encode_s = (cache or EncodingCache()).encode(options.image, codec, options.mtu)
    else:
        started = time.perf_counter()
        image, frame, load_s = loaded, outgoing_frame(codec, loaded.pixels, mtu=options.mtu), loaded.load_s
        encode_s = time.perf_counter() - started
    return _packetized(options, codec, image, frame, index, {"load": codec_s + load_s, "encode": encode_s}, cache)


def _packetized(options: SessionOptions, codec: Codec, image: LoadedImage, frame: Frame, index: int,
                timings: dict[str, float], cache: EncodingCache | None) -> Outgoing:
    """The frame cut into its datagrams: the Outgoing of frame ``index``."""
    started = time.perf_counter()
    packetizer = Packetizer(PartitionKind.named(options.partition), interleave=options.interleave,
                            seed=options.seed, mtu=options.mtu)
    frame = replace(frame, stream_id=options.stream_id)
    frame_id = options.frame_id(index)
    datagrams = packetizer.packetize(frame, frame_id=frame_id)
    timings = {**timings, "packetize": time.perf_counter() - started}
    return Outgoing(options, image.pixels, image.label, codec, frame, datagrams, frame_id, timings, image.notes,
                    cache)


def _prepare_for_bpp(options: SessionOptions, cache: EncodingCache | None, *, loaded: LoadedImage | None,
                     index: int) -> Outgoing:
    """`prepare` with the imputing codec and the channels left out that give this image the most
    PSNR within `options.bpp` bits per pixel on the wire. The fitted curves shortlist the codecs
    (`channel_skip.shortlist`, their rates scaled by what the default codec takes on this image);
    each is encoded once, the fewest channels left out whose datagrams fit are found on its own
    bytes, and that frame is decoded and measured against the image, plus the PSNR the fit lost at
    `expected_loss` with as many left out; on a lossy link the best few are rehearsed
    (`_choose_for_bpp`). With `refine`, the chosen codec is refined, one more
    channel left out while the refined frame takes more. Nothing fits: the least rate fitted, with
    a note."""
    started = time.perf_counter()
    encoded: dict[str, Outgoing] = {}

    def all_sent(name: str) -> Outgoing:
        if name not in encoded:
            encoded[name] = prepare(replace(options, codec=name, bpp=None, partition=None, refine=0, skip=0), cache,
                                    loaded=loaded, index=index)
        return encoded[name]

    def leaving_out(name: str, skip: int) -> Outgoing:
        base = all_sent(name)
        return _packetized(replace(base.options, skip=skip), base.codec, LoadedImage(base.image, base.label,
                           base.notes), base.codec.leaving_out(base.frame, skip), index, base.timings, cache)

    def fits(item: Outgoing) -> bool:
        return item.bpp <= options.bpp

    name, skip, measured_note = _choose_for_bpp(options, all_sent, leaving_out, fits)
    item = leaving_out(name, skip)
    item = replace(item, codec=item.codec.skipping(skip))
    spent = sum(base.timings["encode"] for base in encoded.values())
    if options.refine:  # refinement usually takes bytes off, not always: then one more channel left out
        for more in range(skip, len(item.codec.drop_order)):
            item = prepare(replace(options, codec=name, bpp=None, partition=None, skip=more), cache, loaded=loaded,
                           index=index)
            spent += item.timings["encode"]
            if fits(item):
                break
        measured_note = measured_note and f"{measured_note}; the first then refined with {more} not sent"
    notes = (*item.notes, *filter(None, [measured_note])) if fits(item) else (
        *item.notes, f"--bpp {options.bpp:g}: even the least rate ({name}, {skip} channels not sent) takes "
                     f"{item.bpp:.3f} bpp")
    choosing = time.perf_counter() - started - spent
    return replace(item, timings={**item.timings, "encode": spent + max(0.0, choosing)}, notes=notes)


def _choose_for_bpp(options: SessionOptions, all_sent: Callable[[str], Outgoing],
                    leaving_out: Callable[[str, int], Outgoing], fits: Callable[[Outgoing], bool]) -> tuple:
    """(codec name, channels left out, a note) for `_prepare_for_bpp`: each shortlisted codec cut to fit
    and measured on the image, less what the fit lost at `expected_loss`; on a lossy link the best
    `REHEARSED` of those are then rehearsed (`rehearsed_psnr`) and the best rehearsed is sent."""
    scale = all_sent(DEFAULT_CODEC).bpp / curves()[DEFAULT_CODEC].bpp[0]
    measured = []
    for name in shortlist(options.bpp, scale, options.expected_loss):
        channels = len(all_sent(name).codec.drop_order)
        if not fits(leaving_out(name, channels - 1)):
            continue
        low, high = 0, channels - 1  # bytes fall as channels are left out: the fewest that fit
        while low < high:
            middle = (low + high) // 2
            low, high = (low, middle) if fits(leaving_out(name, middle)) else (middle + 1, high)
        item = leaving_out(name, low)
        lossless = psnr_db(item.image, item.codec.skipping(low).from_frame(item.frame))
        penalty = curves()[name].loss_penalty(low, options.expected_loss)
        measured.append((lossless + penalty, name, low, item, lossless))
    if not measured:
        return (*lowest_rate(), "")
    measured.sort(key=lambda entry: entry[:3], reverse=True)
    losses = [float(loss) for loss in np.atleast_1d(options.expected_loss)]

    def listed(scored) -> str:
        return ", ".join(f"{name} with {skip} channel{'s' * (skip != 1)} not sent {score:.2f} dB"
                         for score, name, skip, *_ in scored)

    if not any(losses):
        return (*measured[0][1:3], f"--bpp {options.bpp:g} measured on this image: {listed(measured)}")
    shortlisted = (f"measured on this image less the fit's loss at {loss_words(options.expected_loss)}: "
                   f"{listed(measured)}")
    rehearsed = sorted(((float(np.mean([rehearsed_psnr(item, loss) if loss else lossless for loss in losses])),
                         name, low) for _, name, low, item, lossless in measured[:REHEARSED]), reverse=True)
    note = (f"--bpp {options.bpp:g} rehearsed on this image, its datagrams lost at {loss_words(options.expected_loss)} "
            f"({REHEARSALS} seeded patterns): {listed(rehearsed)}; {shortlisted}")
    return (*rehearsed[0][1:], note)


def rehearsed_psnr(item: Outgoing, loss: float, patterns: int = REHEARSALS) -> float:
    """Mean PSNR of ``item`` as a receiver decodes it when each of its datagrams is lost with
    probability ``loss`` percent, over ``patterns`` seeded patterns (at least one datagram arrives).
    The fit's curves average other photographs; this is the image's own fragility (a photograph
    whose few sent channels carry most of it loses more). Pattern i draws the same numbers for
    every candidate (common random numbers: candidates differ by their codec, not by their luck)."""
    limits = item.options.reassembler_limits([item])
    psnrs = []
    for pattern in range(patterns):
        draws = np.random.default_rng([REHEARSAL_SEED, pattern]).random(len(item.datagrams))
        arrives = draws >= loss / 100
        arrives[np.argmax(draws)] = True
        reassembler = Reassembler(limits)
        reassembler.receive_many(list(compress(item.datagrams, arrives)), 0.0)
        (frame,) = reassembler.poll(float("inf"))
        psnrs.append(psnr_db(item.image, decode_received(item.codec, frame)))
    return float(np.mean(psnrs))


def prepare_all(options: SessionOptions, images: list[LoadedImage] | None) -> list[Outgoing]:
    """Every frame of a session (one per image; `options.image` alone when None)."""
    if not images:
        return [prepare(options)]
    return [prepare(options, loaded=image, index=index) for index, image in enumerate(images)]


def send_schedule(outgoing: list[Outgoing]) -> list[tuple[float, bytes]]:
    """(offset in seconds, datagram) of every datagram of the session, frames in order."""
    datagrams = [datagram for item in outgoing for datagram in item.datagrams]
    offsets = outgoing[0].options.pacing.offsets([len(d) for d in datagrams])
    return list(zip(offsets, datagrams))


@dataclass
class Transmission:
    """What a transport returns: the frames as received (None for one that never arrived),
    counters, and how long the network part took."""

    frames: list[Reassembled | None]
    receiver: dict
    link: dict
    network_s: float  # wall seconds
    phy_s: float = 0.0  # of which the PHY stage worked
    network_virtual_s: float | None = None  # simulate: seconds on the virtual clock
    extra: dict = field(default_factory=dict)


def match_frames(outgoing: list[Outgoing], frames: list[Reassembled]) -> list[Reassembled | None]:
    """The delivered frames in the order they were sent, None where one never arrived."""
    by_id = {frame.header.frame_id: frame for frame in frames}
    return [by_id.get(item.frame_id) for item in outgoing]


def finish(outgoing: Outgoing, frame: Reassembled, *, transport: str, receiver: dict, link: dict, network_s: float,
           phy_s: float = 0.0, network_virtual_s: float | None = None, started: float | None = None) -> Report:
    """The quality report of one frame. Its `timings` add up to `total_s`: with `started`
    (perf_counter at the session's start) the wall time since then, the rest named 'other'."""
    options, image, codec = outgoing.options, outgoing.image, outgoing.codec
    clock = time.perf_counter()
    reconstruction = decode_received(codec, frame)
    decode_s = time.perf_counter() - clock
    clock = time.perf_counter()
    lossless = None
    if options.reference:
        # a frame that arrived whole decodes to the reference itself (codecs are deterministic)
        lossless = reconstruction if frame.complete else _lossless_decode(outgoing)
    reference_s = time.perf_counter() - clock
    clock = time.perf_counter()
    psnr, similarity = psnr_db(image, reconstruction), ssim(image, reconstruction)
    lossless_psnr = None if lossless is None else (psnr if lossless is reconstruction else psnr_db(image, lossless))
    metrics_s = time.perf_counter() - clock
    if options.out:
        save_image(reconstruction, options.out)
    timings = {**outgoing.timings, "network": max(0.0, network_s - phy_s), "phy": phy_s, "decode": decode_s,
               "reference decode": reference_s, "metrics": metrics_s}
    if not phy_s:
        del timings["phy"]
    if not options.reference:
        del timings["reference decode"]
    total = sum(timings.values())
    if started is not None:
        timings["other"] = max(0.0, time.perf_counter() - started - total)
        total = sum(timings.values())
    wire_bytes = sum(map(len, outgoing.datagrams))
    unit_received = frame.unit_received
    return Report(
        codec=codec.name, partition=options.partition, interleave=options.interleave, netem=options.netem,
        phy=options.phy, seed=options.seed, image=outgoing.label, image_size=image.shape[:2],
        psnr_db=psnr, ssim=similarity, lossless_psnr_db=lossless_psnr,
        datagrams_sent=len(outgoing.datagrams), datagrams_received=frame.datagrams_received,
        units_total=frame.header.unit_count, units_received=int(unit_received.sum()),
        units_partial=frame.units_partial,
        bytes_on_wire=wire_bytes, bpp=wire_bytes * 8 / (image.shape[0] * image.shape[1]),
        encode_s=outgoing.encode_s, network_s=network_s, decode_s=decode_s, total_s=total, transport=transport,
        network_virtual_s=network_virtual_s, timings=timings, stream_id=options.stream_id,
        frame_id=outgoing.frame_id, notes=list(outgoing.notes),
        jpeg_quality=getattr(codec, "quality", None), refine=options.refine, skip_channels=getattr(codec, "skip", 0),
        receiver=receiver, link=link,
    )


def lost_report(outgoing: Outgoing, *, transport: str, receiver: dict, link: dict) -> dict:
    """A frame of a sequence of which no datagram arrived."""
    return {"image": outgoing.label, "frame_id": outgoing.frame_id, "datagrams_sent": len(outgoing.datagrams),
            "datagrams_received": 0, "error": "no datagram of this frame arrived", "transport": transport,
            "receiver": receiver, "link": link}


def _lossless_decode(outgoing: Outgoing) -> np.ndarray:
    key = codec_key(outgoing.options.image, outgoing.codec, outgoing.options.mtu)
    store = outgoing.cache.lossless if outgoing.cache is not None else {}
    if key not in store:
        store[key] = outgoing.codec.from_frame(outgoing.frame)  # the reference: nothing lost
    return store[key]


def summarize(reports: list[Report | dict], *, network_s: float, total_s: float) -> dict:
    """The summary of a sequence: means over the frames that arrived, and the session's wall time."""
    arrived = [r for r in reports if isinstance(r, Report)]

    def mean(values: list[float]) -> float | None:
        finite = [v for v in values if math.isfinite(v)]
        return sum(finite) / len(finite) if finite else None

    return {
        "frames": len(reports), "frames_received": len(arrived),
        "psnr_db_mean": mean([r.psnr_db for r in arrived]), "ssim_mean": mean([r.ssim for r in arrived]),
        "datagrams_sent": sum(r.datagrams_sent if isinstance(r, Report) else r["datagrams_sent"] for r in reports),
        "datagrams_received": sum(r.datagrams_received if isinstance(r, Report) else 0 for r in reports),
        "network_s": network_s, "total_s": total_s,
    }


@dataclass
class SessionResult:
    reports: list[Report | dict]  # per frame, in the order sent (a dict for a frame that never arrived)
    summary: dict  # the whole session: counts, means, wall time


def run_session(options: SessionOptions, images: list[LoadedImage] | None,
                transmit: Callable[[list[Outgoing]], Transmission], transport: str) -> SessionResult:
    """Load and encode every frame, transmit them as one stream, decode and measure each.

    One frame's report has timings that add up to the session's wall time (from loading the
    codec to the report); a sequence's summary has the session's wall time."""
    started = time.perf_counter()
    outgoing = prepare_all(options, images)
    sent = transmit(outgoing)
    counters = {"transport": transport, "receiver": sent.receiver, "link": sent.link}
    reports: list[Report | dict] = []
    for index, (item, frame) in enumerate(zip(outgoing, sent.frames)):
        if frame is None:
            reports.append(lost_report(item, **counters))
            continue
        if options.out and len(outgoing) > 1:
            item.options = replace(item.options, out=numbered(options.out, index))
        reports.append(finish(item, frame, **counters, network_s=sent.network_s, phy_s=sent.phy_s,
                              network_virtual_s=sent.network_virtual_s,
                              started=started if len(outgoing) == 1 else None))
    return SessionResult(reports, summarize(reports, network_s=sent.network_s,
                                            total_s=time.perf_counter() - started))


def numbered(path: str, index: int) -> str:
    """'recon.png' -> 'recon-0003.png': one output file per frame of a sequence."""
    stem, dot, suffix = path.rpartition(".")
    return f"{stem}-{index:04d}.{suffix}" if dot and "/" not in suffix else f"{path}-{index:04d}"
