"""One run of a sweep, as a Dask worker executes it: prepare, transmit (virtual clock, or real
sockets on the worker's own loopback), decode, measure, and return the row.

A run that delivers nothing is a row that says so (`delivered` false, metrics empty), not an
error. A worker keeps the encodings of its most recent images: the codecs are deterministic,
so a run's numbers do not depend on which runs the worker did before. A run at a rate target
sends what `--bpp` chose for its image (`sender_options`): the codec and the channels left out are
its row's `codec` and `skip_channels`.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np

from netsem.codecs.channel_skip import ExpectedLoss
from netsem.pipeline import DEFAULT_CODEC, DEFAULT_EXPECTED_LOSS
from netsem.pipeline.frames import CLASSIC_CODECS, decode_received, load_codec
from netsem.pipeline.report import versions
from netsem.pipeline.session import EncodingCache, Outgoing, SessionOptions, Transmission, finish, prepare
from netsem.pipeline.sweep import SweepTask, configured_loss

CACHED_IMAGES = 4  # a worker gets its runs roughly in grid order, which is by image

# A row's columns, in order; a results file adds the versions as version_NAME columns.
CONFIG_COLUMNS = ("key", "image", "codec", "partition", "interleave", "mtu", "netem", "preset", "loss_model",
                  "loss_percent", "phy", "snr_db", "seed", "jpeg_setting", "jpeg_quality", "refine", "skip_channels",
                  "bpp_target", "expect_loss", "transport")
OUTCOME_COLUMNS = ("delivered", "note", "psnr_db", "ssim", "lossless_psnr_db", "delta_psnr_db", "datagrams_sent",
                   "datagrams_received", "datagram_loss", "units_total", "units_received", "units_partial",
                   "unit_loss", "bytes_on_wire", "bpp", "image_size")

_caches: OrderedDict[str, EncodingCache] = OrderedDict()
# (image, target, refine, MTU, seed, interleave, expected loss) -> (codec, channels left out) that `--bpp` chose: the
# choice measures several codecs on the image, which every impairment of the same run would repeat
_bpp_choices: dict[tuple, tuple[str, int]] = {}


def encoding_cache(image: str) -> EncodingCache:
    """This process's encodings of `image` (and their lossless decodes)."""
    if image not in _caches:
        _caches[image] = EncodingCache()
        while len(_caches) > CACHED_IMAGES:
            _caches.popitem(last=False)
    _caches.move_to_end(image)
    return _caches[image]


def one_compute_thread() -> None:
    """Every run encodes and decodes on one thread, of torch and of numpy's BLAS: a worker
    runs one task at a time on one core, where more threads would only compete with the other
    workers, and `netsem report`'s re-runs use the same count as the workers did (both
    engines' sums depend on the thread count in their last bits, enough to move a pixel).
    Called once a codec is loaded, before any of its work."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    global _blas_limit
    if _blas_limit is None:
        from threadpoolctl import threadpool_limits

        _blas_limit = threadpool_limits(limits=1, user_api="blas")  # kept: the limit lasts while it lives


_blas_limit = None


def wire_bytes(options: SessionOptions, cache: EncodingCache) -> int:
    return sum(map(len, prepare(options, cache).datagrams))


def bpp_choice_key(options: SessionOptions) -> tuple:
    """What `--bpp`'s choice depends on: the image, target, refinement, expected loss, and the MTU,
    seed and interleaving (they decide how units share datagrams, so the bytes on the wire)."""
    return (options.image, options.bpp, options.refine, options.mtu, options.seed, options.interleave,
            options.expected_loss)


def bpp_choice(options: SessionOptions) -> tuple[str, int]:
    """(codec, channels left out) that `--bpp` chooses for the image with `options`, chosen once
    per process: every run of the target then encodes the same way, whichever ran first."""
    key = bpp_choice_key(options)
    if key not in _bpp_choices:
        load_codec(DEFAULT_CODEC)  # torch loaded, so that one_compute_thread limits it
        one_compute_thread()
        chosen = prepare(replace(options, partition=None), encoding_cache(options.image))
        _bpp_choices[key] = (chosen.options.codec, chosen.options.skip)
    return _bpp_choices[key]


def sender_options(options: SessionOptions, choice: tuple[str, int] | None = None) -> SessionOptions:
    """`options` with a rate target replaced by what `--bpp` chooses for the image with them
    (`choice`, when made already)."""
    if options.bpp is None:
        return options
    codec, skip = choice or bpp_choice(options)
    return replace(options, codec=codec, skip=skip, bpp=None, partition=None)


def match_options(image: str, codec: str, mtu: int, refine: int = 0, skip: int = 0, bpp: float | None = None,
                  expected_loss: ExpectedLoss = DEFAULT_EXPECTED_LOSS) -> SessionOptions:
    """The sending a classic codec is matched to (`matched_quality`): seed 0's, interleaved."""
    return SessionOptions(image=image, codec=codec, mtu=mtu, refine=refine, skip=skip, bpp=bpp,
                          expected_loss=expected_loss)


def matched_quality(classic: str, image: str, codec: str, mtu: int, refine: int = 0, skip: int = 0,
                    bpp: float | None = None, expected_loss: ExpectedLoss = DEFAULT_EXPECTED_LOSS,
                    choice: tuple[str, int] | None = None) -> int:
    """The highest quality of the `classic` codec (`CLASSIC_CODECS`) whose datagrams take no more
    bytes on the wire than `codec`'s (latent refined `refine` steps, `skip` channels not sent; or
    what `--bpp` chooses at target `bpp` for `expected_loss` percent lost, `choice` when made
    already) for the same image, sent in its first partition (channel for a latent, segment for a
    stream; headers, unit tables and CRCs counted on both sides; seed 0's interleaving); 1 if none
    fits."""
    options = sender_options(match_options(image, codec, mtu, refine, skip, bpp, expected_loss), choice)
    codec = load_codec(options.codec, refine=options.refine, skip=options.skip)
    one_compute_thread()
    cache = encoding_cache(image)
    budget = wire_bytes(replace(options, partition=codec.partitions[0]), cache)
    low, high, best = 1, 95, 1
    while low <= high:
        quality = (low + high) // 2
        options = SessionOptions(image=image, codec=classic, partition="segment", jpeg_quality=quality, mtu=mtu)
        if wire_bytes(options, cache) <= budget:
            best, low = quality, quality + 1
        else:
            high = quality - 1
    return best


def session_options(task: SweepTask, jpeg_quality: int | None) -> SessionOptions:
    return SessionOptions(image=task.image, codec=task.codec, partition=task.partition, interleave=task.interleave,
                          netem=task.netem, phy=task.phy_spec, seed=task.seed, mtu=task.mtu,
                          jpeg_quality=jpeg_quality or 75, refine=0 if task.codec in CLASSIC_CODECS else task.refine,
                          skip=0 if task.codec in CLASSIC_CODECS else task.skip,
                          bpp=None if task.codec in CLASSIC_CODECS else task.bpp,
                          expected_loss=task.expected_loss_percent)


def transmit(task: SweepTask, jpeg_quality: int | None,
             choice: tuple[str, int] | None = None) -> tuple[Outgoing, Transmission | str]:
    """The run's frame as sent (at a rate target, `choice` when made already), and the
    transmission, or why nothing was delivered."""
    from netsem.pipeline.send import transmit_udp
    from netsem.pipeline.simulate import NothingDelivered, transmit_virtual
    from netsem.pipeline.udp import NothingArrived

    options = sender_options(session_options(task, jpeg_quality), choice)
    load_codec(options.codec, jpeg_quality=options.jpeg_quality, refine=options.refine, skip=options.skip)
    one_compute_thread()
    outgoing = prepare(options, encoding_cache(task.image))
    try:
        sent = (transmit_udp if task.transport == "udp" else transmit_virtual)([outgoing])
    except (NothingDelivered, NothingArrived) as error:
        return outgoing, str(error)
    if sent.frames[0] is None:
        return outgoing, "no datagram of this frame arrived"
    return outgoing, sent


def run_task(task: SweepTask, key: str, jpeg_quality: int | None = None,
             choice: tuple[str, int] | None = None) -> dict:
    """The results row of one run (`jpeg_quality`: a classic codec's, matched or asked; `choice`:
    at a rate target, `bpp_choice`'s when made already), with the versions of the process
    that made it (a worker's, on a cluster)."""
    outgoing, sent = transmit(task, jpeg_quality, choice)
    row = make_row(task, key, outgoing, sent)
    return {**row, **{f"version_{name}": value for name, value in versions().items()}}


def make_row(task: SweepTask, key: str, outgoing: Outgoing, sent: Transmission | str) -> dict:
    loss_model, loss_percent = configured_loss(task.netem)
    height, width = outgoing.image.shape[:2]
    sent_count, wire = len(outgoing.datagrams), sum(map(len, outgoing.datagrams))
    row = {
        "key": key, "image": task.image, "codec": outgoing.options.codec, "partition": task.partition,
        "interleave": task.interleave, "mtu": task.mtu, "netem": task.netem, "preset": task.preset,
        "loss_model": loss_model,
        "loss_percent": loss_percent, "phy": task.phy, "snr_db": task.snr_db, "seed": task.seed,
        "jpeg_setting": task.jpeg, "jpeg_quality": getattr(outgoing.codec, "quality", None),
        "refine": task.refine, "skip_channels": task.skip if task.bpp is None else outgoing.options.skip,
        "bpp_target": task.bpp, "expect_loss": task.expect_loss, "transport": task.transport,
        "delivered": not isinstance(sent, str), "note": sent if isinstance(sent, str) else "",
        "datagrams_sent": sent_count, "datagrams_received": 0, "datagram_loss": 1.0,
        "bytes_on_wire": wire, "bpp": wire * 8 / (height * width), "image_size": f"{width}x{height}",
    }
    if isinstance(sent, str):
        return {column: row.get(column) for column in CONFIG_COLUMNS + OUTCOME_COLUMNS}
    report = finish(outgoing, sent.frames[0], transport=task.transport, receiver=sent.receiver, link=sent.link,
                    network_s=sent.network_s)
    same = report.psnr_db == report.lossless_psnr_db  # also both infinite: identical images
    row.update(
        psnr_db=report.psnr_db, ssim=report.ssim, lossless_psnr_db=report.lossless_psnr_db,
        delta_psnr_db=0.0 if same else report.psnr_db - report.lossless_psnr_db,
        datagrams_received=report.datagrams_received, datagram_loss=1 - report.datagrams_received / sent_count,
        units_total=report.units_total, units_received=report.units_received, units_partial=report.units_partial,
        unit_loss=1 - report.units_received / report.units_total,
    )
    return {column: row.get(column) for column in CONFIG_COLUMNS + OUTCOME_COLUMNS}


@dataclass
class Reconstruction:
    """One run again, with its pictures: what `netsem report` shows side by side."""

    original: np.ndarray
    lossless: np.ndarray  # the codec with nothing lost
    received: np.ndarray | None  # None when nothing was delivered
    row: dict


def reconstruct(task: SweepTask, key: str, jpeg_quality: int | None) -> Reconstruction:
    outgoing, sent = transmit(task, jpeg_quality)
    lossless = outgoing.codec.from_frame(outgoing.frame)
    received = None if isinstance(sent, str) else decode_received(outgoing.codec, sent.frames[0])
    return Reconstruction(outgoing.image, lossless, received, make_row(task, key, outgoing, sent))


def task_from_row(row: dict) -> SweepTask:
    """The run a results row (as `read_results` gives it) came from: at a rate target, the
    default codec's (the row names the one chosen)."""
    chosen = row.get("bpp_target") is not None and row["codec"] not in CLASSIC_CODECS
    return SweepTask(image=row["image"], codec=DEFAULT_CODEC if chosen else row["codec"], partition=row["partition"],
                     interleave=row["interleave"], mtu=int(row["mtu"]), netem=row["netem"], preset=row["preset"],
                     phy=row["phy"], snr_db=row["snr_db"], seed=int(row["seed"]), jpeg=row["jpeg_setting"],
                     transport=row["transport"], refine=int(row.get("refine") or 0),
                     skip=0 if chosen else int(row.get("skip_channels") or 0), bpp=row.get("bpp_target"),
                     expect_loss=row.get("expect_loss") or "")
