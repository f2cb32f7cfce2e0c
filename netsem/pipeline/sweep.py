"""`netsem sweep`'s grid: images x codecs (and rate targets) x partitions x interleaving x MTU x
netem specs (or named presets) x PHY specs at each SNR x seeds, and the runs it names.

A `SweepTask` is one run (a configuration, an image and a seed); its key hashes everything the
run's numbers depend on, the versions included, so a results file can say which runs it already
holds (`sweep_results`) whoever ran them (`sweep_runner`, `sweep_tasks`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from emulator.grammar import FourStateLoss, GilbertElliottLoss, NetemSpec, RandomLoss, parse_netem
from netsem.codecs.channel_skip import ExpectedLoss, drop_orders, expected_loss_of
from netsem.codecs.registry import refinable
from netsem.pipeline import DEFAULT_CODEC, DEFAULT_EXPECTED_LOSS
from netsem.pipeline.frames import CLASSIC_CODECS, load_codec
from netsem.pipeline.images import BUNDLED_PREFIX, DEFAULT_IMAGE
from packetizers.kinds import PartitionKind
from packetizers.wire import DEFAULT_MTU

DEFAULT_IMAGE_NAME = BUNDLED_PREFIX + DEFAULT_IMAGE
# The SNR and the loss grids of the command line may continue a step with '...': '0,2,...,20'.
ELLIPSIS = "..."
MAX_LIST_LENGTH = 10_000  # values one '...' may expand to: a typo should not fill the memory
# `--jpeg-quality match:bpp`: a classic codec matches the bytes that each `--bpp` target's run sent
BPP_MATCH = "bpp"
# `--expect-loss configured`: each `--bpp` choice is made for the loss its run is configured with
EXPECT_CONFIGURED = "configured"


@dataclass(frozen=True)
class SweepTask:
    """One run of a sweep. `netem` is the words that run, `preset` the name they came from (or
    ''); `phy` is the PHY spec without its SNR, which is `snr_db`; `jpeg` is '' but for a
    classic codec (`CLASSIC_CODECS`), whose quality it is: 'Q' or 'match:CODEC' (per image, the best
    quality within CODEC's bytes on the wire)."""

    image: str
    codec: str
    partition: str
    interleave: bool
    mtu: int
    netem: str
    preset: str
    phy: str
    snr_db: float | None
    seed: int
    jpeg: str
    transport: str  # "virtual" or "udp"
    # iterations of encoder-side latent refinement of a cnn codec; for a classic codec matched to
    # one, that codec's (whose bytes it matches); 0 for the others
    refine: int = 0
    skip: int = 0  # channels not sent, the same way (the imputing -ec codecs; a classic codec matched to one)
    # a rate target in bits per pixel on the wire: the run sends what `--bpp` chooses for its image among the
    # default codec's rate points (`codec` is the default's); a classic codec matched to it matches those bytes
    bpp: float | None = None
    # the loss that choice is made for: a percent ('10', `SweepGrid`'s default; '' in files written before it
    # was: none), several each as likely ('10,40'), or EXPECT_CONFIGURED (the run's own configured loss,
    # `expected_loss_percent`); a classic codec matched to the choice, the same
    expect_loss: str = ""

    @property
    def phy_spec(self) -> str:
        """The spec the PHY stage is built from ('' for none)."""
        return with_snr(self.phy, self.snr_db) if self.phy else ""

    @property
    def expected_loss_percent(self) -> ExpectedLoss:
        """The loss in percent (or several) the `--bpp` choice of this run is made for."""
        if self.expect_loss == EXPECT_CONFIGURED:
            return configured_loss(self.netem)[1] or 0.0
        return expected_loss_of([float(loss) for loss in (self.expect_loss or "0").split(",")])

    @property
    def jpeg_match(self) -> str | None:
        """The codec whose bytes a classic codec matches: at a rate target (`match:bpp`), the default
        codec's, whose rate points `--bpp` chooses among; None when not matched."""
        if not self.jpeg.startswith("match:"):
            return None
        return matched_codec(self.jpeg.removeprefix("match:"))

    def key(self, image_digest: str, versions: dict[str, str]) -> str:
        """What a row of the results is looked up by: a hash of the configuration, the image's
        content and the versions, so a changed file or library makes the run new again."""
        text = json.dumps({"task": asdict(self), "image": image_digest, "versions": versions}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class SweepGrid:
    images: tuple[str | None, ...]
    codecs: tuple[str, ...]
    partitions: tuple[str, ...]
    interleave: tuple[bool, ...]
    netem: tuple[str, ...]
    seeds: tuple[int, ...]
    presets: tuple[str, ...] = ()  # named impairments (`netsem presets`), after the netem specs
    mtus: tuple[int, ...] = (DEFAULT_MTU,)
    phy: tuple[str, ...] = ()  # PHY specs; with `snrs`, written without their SNR
    snrs: tuple[float, ...] = ()
    transport: str = "virtual"  # or "udp"
    jpeg_quality: int = 75
    # a codec: the classic codecs (`CLASSIC_CODECS`) take, per image, the best quality within its bytes on the wire
    jpeg_match: str | None = None
    refine: int = 0  # the cnn codecs' latent refinement (iterations); the other codecs run without
    skip: int = 0  # channels the imputing -ec codecs leave out; the other codecs send all theirs
    # rate targets (bits per pixel on the wire): per target a run of what `--bpp` chooses per image, and the
    # classic codecs matched to `BPP_MATCH` once per target
    bpps: tuple[float, ...] = ()
    # the loss the targets' choices are made for (`SweepTask.expect_loss`)
    expect_loss: str = f"{DEFAULT_EXPECTED_LOSS:g}"

    def codec_partitions(self) -> list[tuple[str, str]]:
        """(codec, partition) pairs: a byte-stream codec (jpeg, webp, ...) is always cut where its format
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

    def _sender_of(self, codec: str) -> str:
        """The codec whose encoder settings a run of `codec` takes: a classic codec matched to
        another takes that one's (it matches the bytes that one sends)."""
        if codec in CLASSIC_CODECS and self.jpeg_match:
            return matched_codec(self.jpeg_match)
        return codec

    def refine_of(self, codec: str) -> int:
        """A run's `refine`: the grid's for a cnn codec, and for a classic codec matched to one; 0
        for the others."""
        return self.refine if refinable(self._sender_of(codec)) else 0

    def skip_of(self, codec: str) -> int:
        """A run's `skip`: the grid's for an imputing -ec codec, and for a classic codec matched to
        one; 0 for the others."""
        return self.skip if self._sender_of(codec) in drop_orders() else 0

    def senders(self) -> list[tuple[str, str, float | None]]:
        """(codec, partition, rate target or None) of every series: a run per `bpps` target of what
        `--bpp` chooses (the default codec's rate points, channel partition), then the codecs in their
        partitions, a classic codec matched to `BPP_MATCH` once per target."""
        chosen = [(DEFAULT_CODEC, PartitionKind.CHANNEL.word, bpp) for bpp in self.bpps]
        for codec, partition in self.codec_partitions():
            matched = codec in CLASSIC_CODECS and self.jpeg_match == BPP_MATCH
            chosen += [(codec, partition, bpp) for bpp in self.bpps] if matched else [(codec, partition, None)]
        return chosen

    def phy_points(self) -> list[tuple[str, float | None]]:
        """(PHY spec without SNR, SNR) of every PHY setting; ('', None) without a PHY. Raises
        PhySpecError (one line) for a bad spec or an SNR given twice or not at all."""
        from netsem.phy import PhySpecError, parse_phy_spec

        if not self.phy:
            if self.snrs:
                raise PhySpecError("--snr needs --phy: the SNR is the PHY's")
            return [("", None)]
        points = []
        for spec in self.phy:
            base, snr = split_snr(spec)
            if self.snrs and snr is not None:
                raise PhySpecError(f"{spec!r} has an SNR of its own: give it there or with --snr, not both")
            if not self.snrs and snr is None:
                raise PhySpecError(f"{spec!r} needs an SNR: 'snr X' in the spec, or --snr")
            for value in self.snrs or (snr,):
                parse_phy_spec(with_snr(base, value))
                points.append((base, value))
        return points

    def netem_points(self) -> list[tuple[str, str]]:
        """(netem words, preset name or '') of every impairment: the specs as given, then each
        preset as its words. Raises PresetError (a LookupError) for an unknown name."""
        from emulator.presets import preset_words

        return [(spec, "") for spec in self.netem] + [(" ".join(preset_words(name)), name) for name in self.presets]

    def tasks(self) -> list[SweepTask]:
        """Every run, in the order the results file lists them: by image, then rate target, codec
        and partition, interleaving, MTU, impairment, PHY setting, seed."""
        jpeg_word = f"match:{self.jpeg_match}" if self.jpeg_match else str(self.jpeg_quality)
        return [
            SweepTask(image=image or DEFAULT_IMAGE_NAME, codec=codec, partition=partition, interleave=interleave,
                      mtu=mtu, netem=netem, preset=preset, phy=phy, snr_db=snr, seed=seed,
                      jpeg=jpeg_word if codec in CLASSIC_CODECS else "", transport=self.transport,
                      refine=self.refine_of(codec), skip=0 if bpp is not None else self.skip_of(codec), bpp=bpp,
                      expect_loss=self.expect_loss if bpp is not None else "")
            for image, (codec, partition, bpp), interleave, mtu, (netem, preset), (phy, snr), seed in itertools.product(
                self.images, self.senders(), self.interleave, self.mtus, self.netem_points(),
                self.phy_points(), self.seeds)
        ]


def matched_codec(word: str) -> str:
    """The codec whose bytes `--jpeg-quality match:WORD` matches: WORD, or for `BPP_MATCH` the
    default codec, whose rate points `--bpp` chooses among."""
    return DEFAULT_CODEC if word == BPP_MATCH else word


def split_snr(spec: str) -> tuple[str, float | None]:
    """A PHY spec without its 'snr X' words, and X (None if it has none)."""
    from netsem.phy import parse_phy_spec

    words = spec.replace(",", " ").split()
    lowered = [word.lower() for word in words]
    if "snr" not in lowered:
        return " ".join(words), None
    at = lowered.index("snr")
    end = at + 2 + (at + 2 < len(words) and lowered[at + 2] == "db")  # "snr 6 dB"
    return " ".join(words[:at] + words[end:]), parse_phy_spec(spec).snr_db


def with_snr(spec: str, snr_db: float) -> str:
    return f"{spec} snr {snr_db:g}dB"


def parse_number_list(text: str) -> list[float]:
    """'0,10,20' or '0,2,...,20' (the step of the two numbers before '...', up to the one
    after it, inclusive). Raises ValueError naming what is wrong."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    values: list[float] = []
    index = 0
    while index < len(items):
        item = items[index]
        if item != ELLIPSIS:
            values.append(float(item))
            index += 1
            continue
        if len(values) < 2 or index + 1 >= len(items) or items[index + 1] == ELLIPSIS:
            raise ValueError(f"{text!r}: '...' needs two numbers before it (the step) and one after it (the end)")
        start, step, end = values[-1], values[-1] - values[-2], float(items[index + 1])
        if step <= 0 or end < start:
            raise ValueError(f"{text!r}: '...' counts up: the numbers before it must rise towards the one after")
        count = math.floor((end - start) / step + 1e-9)
        if count > MAX_LIST_LENGTH:
            raise ValueError(f"{text!r}: more than {MAX_LIST_LENGTH} values")
        values += [round(start + k * step, 9) for k in range(1, count + 1)]
        if not math.isclose(values[-1], end, abs_tol=1e-9):
            values.append(end)
        index += 2
    if not all(math.isfinite(value) for value in values):
        raise ValueError(f"{text!r}: every value must be a finite number")
    return values


def loss_only(spec: NetemSpec) -> bool:
    """True when a spec configures nothing but (at most) a loss model."""
    return spec == NetemSpec(loss=spec.loss, words=spec.words, notes=spec.notes)


def configured_loss(netem: str) -> tuple[str, float | None]:
    """(loss model, configured mean loss in percent) of a netem spec: 'none' and 0 without a
    loss clause; a Bernoulli P as given (netem's correlated variant falls below it); the
    stationary loss of a Gilbert-Elliott chain; None for the four-state model (and any other)."""
    loss = parse_netem(netem).loss
    if loss is None:
        return "none", 0.0
    if isinstance(loss, RandomLoss):
        return "random", 100 * loss.probability
    if isinstance(loss, GilbertElliottLoss):
        if loss.p + loss.r == 0:  # never leaves the good state
            return "gemodel", 100 * loss.one_minus_k
        bad = loss.p / (loss.p + loss.r)
        return "gemodel", 100 * (bad * loss.one_minus_h + (1 - bad) * loss.one_minus_k)
    return ("state" if isinstance(loss, FourStateLoss) else type(loss).__name__), None


def image_digest(image: str) -> str:
    """What identifies an image's content: a file's SHA-256, or a bundled photograph's name
    (its pixels come with scikit-image, whose version is in the key)."""
    if image.startswith(BUNDLED_PREFIX):
        return image
    return hashlib.sha256(Path(image).read_bytes()).hexdigest()
