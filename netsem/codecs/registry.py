"""The codec registry: every codec's name, wire id, origin and how to build it.

    get_codec("cnn-sem")                       # a built-in, with its shipped weights
    get_codec("cnn-sem", weights="run.safetensors")   # any trained variant: config from the file
    get_codec("jpeg", quality=80)
    get_codec("mypkg.codecs:my_codec")         # module:attribute, imported and registered
    register_codec(MyCodec())                  # or register_codec("name", factory)
    codec_by_id(3)                             # what a receiver does with a datagram's codec id

Codecs come from three places: the built-ins below; packages, through the entry-point group
`netsem.codecs` (`name = "module:factory"`), loaded the first time a name or id is not
otherwise known; and `register_codec` in a running program. A factory is called as
`factory(weights=None, **params)` and returns a codec (see `base.Codec`).

Wire ids (16 bits in every datagram): the built-ins keep the ids they have always had;
any other codec gets `0x8000 | crc32(name) & 0x7FFF` unless it asks for one. A registration
whose id is taken by another name fails, so two codecs never share an id on the wire.

This module imports no torch: listing names, resolving ids and every error path stay light.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import NamedTuple

from .base import Codec, CodecError
from .config import WEIGHTS_DIR, NetConfig

ENTRY_POINT_GROUP = "netsem.codecs"
DERIVED_IDS = 0x8000  # ids of codecs that do not ask for one: 0x8000 | 15 bits of the name's CRC

# 60 channels x 6 bits at 1/16 resolution: 1.406 bits per pixel (768x512), under 1.5 with the
# padding of any image size. Lost channels are zeros (seed 003's erasure model); the received
# ones are scaled by channels / received channels (inverted dropout), so the decoder's input
# keeps its energy whatever the loss.
CNN = NetConfig(arch="cnn", latent_channels=60, hidden=128, bit_width=6, rescale=True)
SEM = NetConfig(**{**CNN.__dict__, "sem_scale": True, "sem_broadcast": True})
SWIN = NetConfig(arch="swin", latent_channels=64, hidden=192, bit_width=6)


class RatePoint(NamedTuple):
    """A rate point of cnn-sem-impute: the rate-distortion weight it was fine-tuned at, its
    quantizer step, its downsampling (8: four times the latent positions, for high rates)."""

    lmbda: float
    step: float
    down: int = 16


# Rate points of cnn-sem-impute fine-tuned for rate and distortion (tools/training/rd.sh), numbered in the order
# they came: q1..q3, then q0 under them, q4 the highest, q5 under it, q6 under q5, q7 under q6 (QUALITY_POINTS
# below orders them by rate). q4's last phase ran at lambda 0.04 with the rate proxy at 50x (the earlier ones at
# 0.03 and 0.015 with the proxy at 1x, which misjudged the rate: see rd.sh)
RATE_POINTS = {0: RatePoint(0.0008, 16.0), 1: RatePoint(0.002, 8.0), 2: RatePoint(0.004, 4.0),
               3: RatePoint(0.01, 2.0), 4: RatePoint(0.04, 1.0, down=8), 5: RatePoint(0.015, 2.0, down=8),
               6: RatePoint(0.008, 2.0, down=8), 7: RatePoint(0.004, 4.0, down=8)}
# their wire ids: q -> (cnn-sem-impute-qN, cnn-sem-impute-qN-ec)
RATE_POINT_IDS = {0: (24, 25), 1: (18, 21), 2: (19, 22), 3: (20, 23), 4: (28, 29), 5: (30, 31), 6: (32, 33),
                  7: (34, 35)}
# The rate-distortion weight with which the codecs not trained for rate refine their range-coded
# latent (`--refine`): on chelsea with cnn-sem-impute-ec, 30 iterations, 0.01 / 0.03 / distortion
# alone gave +0.27 / +0.30 / +0.32 dB at -1.2 / -0.6 / -0.3 % bytes (measured before refinement
# also decoded with channels lost; the choice hardly matters for a codec trained without rate)
UNTUNED_LAMBDA = 0.02


@dataclass(frozen=True)
class LearnedSpec:
    """A built-in learned codec: its network, its training recipe, its weight file."""

    name: str
    codec_id: int
    config: NetConfig
    drop: str  # unit drops used in training (see train.TrainOptions.drop)
    description: str
    train_defaults: dict = field(default_factory=dict)
    # rate-distortion weight of its range-coded latent's refinement (`--refine`): the lambda it
    # was trained at, or one chosen by measurement
    lmbda: float | None = None

    @property
    def weights(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.safetensors"

    @property
    def layout(self) -> str:
        return "nd" if self.config.arch == "swin" else "chw"


def _v(cfg: NetConfig, **kw) -> NetConfig:
    return NetConfig(**{**cfg.__dict__, **kw})


LEARNED: dict[str, LearnedSpec] = {
    s.name: s
    for s in [
        LearnedSpec("cnn", 2, CNN, "channel",
                    "GDN conv autoencoder, no SEM (baseline), trained with channel drops"),
        LearnedSpec("cnn-sem", 3, SEM, "channel",
                    "cnn + Dynamic Scale + Neighbouring Broadcast (K=3), channel drops", lmbda=UNTUNED_LAMBDA),
        LearnedSpec("cnn-scale", 4, _v(CNN, sem_scale=True), "channel",
                    "ablation: cnn + Dynamic Scale only, channel drops"),
        LearnedSpec("cnn-bcast", 5, _v(CNN, sem_broadcast=True), "channel",
                    "ablation: cnn + Neighbouring Broadcast only, channel drops"),
        LearnedSpec("cnn-sem-masked", 6, _v(SEM, masked=True, rescale=False), "mixed",
                    "cnn-sem whose decoder is given the received mask; channel/token/spatial drops"),
        LearnedSpec("cnn-sem-impute", 12, _v(SEM, impute=True, rescale=False), "channel",
                    "cnn-sem whose receiver imputes lost channels from the received ones (linear "
                    "MMSE, learned channel covariance) instead of zeros; channel drops", lmbda=UNTUNED_LAMBDA),
        *(LearnedSpec(f"cnn-sem-impute-q{q}", RATE_POINT_IDS[q][0],
                      _v(SEM, impute=True, rescale=False, quant_step=p.step, down=p.down),
                      "channel", f"cnn-sem-impute with quantizer step {p.step}"
                      + (f", {p.down}x down" if p.down != 16 else "")
                      + f", fine-tuned for rate and distortion at lambda {p.lmbda} (rate point q{q}, q0 the lowest); "
                      "channel drops", lmbda=p.lmbda)
          for q, p in RATE_POINTS.items()),
        LearnedSpec("cnn-p0", 7, _v(CNN, rescale=False), "none",
                    "cnn trained without losses (seed 003 Algorithm 1)"),
        LearnedSpec("cnn-sem-p0", 8, _v(SEM, rescale=False), "none",
                    "cnn-sem trained without losses (seed 003 Algorithm 1)"),
        LearnedSpec("swin", 9, SWIN, "mixed",
                    "windowed-attention token codec, channel/token/spatial drops"),
        LearnedSpec("swin-p0", 11, SWIN, "none",
                    "swin trained without losses (seed 003 Algorithm 1)"),
    ]
}


@dataclass(frozen=True)
class CodecEntry:
    """A registered codec: how it is called, its id on the wire, where it comes from."""

    name: str
    codec_id: int
    factory: Callable[..., Codec]  # factory(weights=None, **params) -> codec
    origin: str  # "built-in", "entry point of PACKAGE VERSION", "registered in this program", ...
    description: str = ""


def derived_id(name: str) -> int:
    return DERIVED_IDS | (zlib.crc32(name.encode()) & 0x7FFF)


_entries: dict[str, CodecEntry] = {}
_by_id: dict[int, str] = {}
_cache: dict[tuple, Codec] = {}
_instances: dict[str, Codec] = {}  # codecs registered as objects


def _build(target: object, weights: str | Path | None, params: dict) -> Codec:
    """A codec from what a plug-in names: a codec instance as it is, else a factory or class,
    called with `weights` and the parameters when there are any, without arguments otherwise."""
    if not isinstance(target, type) and callable(getattr(target, "to_frame", None)):
        return target  # type: ignore[return-value]
    if not callable(target):
        raise CodecError(f"{target!r} is neither a codec nor a factory of one")
    made = target(weights=weights, **params) if weights is not None or params else target()
    _name_of(made)
    return made


def _add(entry: CodecEntry) -> CodecEntry:
    if not 0 < entry.codec_id <= 0xFFFF:
        raise CodecError(f"codec id {entry.codec_id} of {entry.name!r} outside 1..65535")
    holder = _by_id.get(entry.codec_id)
    if holder is not None and holder != entry.name:
        raise CodecError(f"codec {entry.name!r} would take id {entry.codec_id}, which {holder!r} "
                         f"({_entries[holder].origin}) has: register it with another codec_id")
    previous = _entries.get(entry.name)
    if previous is not None and previous.codec_id != entry.codec_id:
        del _by_id[previous.codec_id]
    _entries[entry.name] = entry
    _by_id[entry.codec_id] = entry.name
    for key in [key for key in _cache if key[0] == entry.name]:
        del _cache[key]
    return entry


def register_codec(codec: Codec | str, factory: Callable[..., Codec] | None = None, *,
                   codec_id: int | None = None, description: str = "", origin: str = "registered in this program",
                   ) -> CodecEntry:
    """Make a codec available by name (and by id to receivers in this program).

    `register_codec(codec)` registers an instance under `codec.name`;
    `register_codec("name", factory)` a factory called as `factory(weights=None, **params)`.
    Re-registering a name replaces it. Raises CodecError when the id is another codec's."""
    if isinstance(codec, type):
        raise CodecError(f"register_codec takes a codec object or a name and a factory, not the class {codec.__name__}")
    if isinstance(codec, str):
        if factory is None:
            raise CodecError(f"register_codec({codec!r}) needs a factory")
        name = codec
    else:
        name, instance = _name_of(codec), codec
        if _entries.get(name) is not None and _entries[name].origin == "built-in":
            raise CodecError(f"codec name {name!r} is a built-in's: give yours another name")
        _instances[name] = instance

        def factory(weights=None, **params) -> Codec:
            return instance
    if not name or ":" in name or name != name.strip():
        raise CodecError(f"codec name {name!r} must be a word without ':'")
    entry = CodecEntry(name, derived_id(name) if codec_id is None else codec_id, factory, origin,
                       description or getattr(codec, "description", ""))
    return _add(entry)


def _name_of(codec: object) -> str:
    name = getattr(codec, "name", None)
    if not isinstance(name, str) or not callable(getattr(codec, "to_frame", None)) \
            or not callable(getattr(codec, "from_frame", None)):
        raise CodecError(f"{codec!r} is not a codec: it needs a name, to_frame(image) and from_frame(frame)")
    return name


def _without_weights(module: str, codec_class: str) -> Callable[..., Codec]:
    """The factory of a built-in codec that has no weights: its module is imported when the codec
    is first built, so that listing names and resolving ids stay light."""
    def build(weights=None, **params) -> Codec:
        return getattr(importlib.import_module(module, __package__), codec_class)(**params)

    return build


def _register_builtins() -> None:
    def deepjscc(weights=None, **params):
        from .deepjscc import deepjscc_codec

        return deepjscc_codec(Path(weights) if weights else None, **params)

    _add(CodecEntry("raw", 1, _without_weights(".raw", "RawCodec"), "built-in",
                    "8-bit pixels, space-to-depth 4x4 (48 channels), lost pixels interpolated"))
    for spec in LEARNED.values():
        _add(CodecEntry(spec.name, spec.codec_id, _learned_factory(spec), "built-in", spec.description))
    _add(CodecEntry("jpeg", 10, _without_weights(".jpeg", "JpegCodec"), "built-in",
                    "Pillow JPEG with restart markers, cut at them; lost MCUs concealed"))
    _add(CodecEntry("deepjscc", 13, deepjscc, "built-in",
                    "DeepJSCC (Bourtsoulatze et al. 2019) wrapped as a user's torch model: TorchCodec"))
    _add(CodecEntry("jpeg2000", 17, _without_weights(".jpeg2000", "Jpeg2000Codec"), "built-in",
                    "JPEG 2000 (OpenJPEG), 4 quality layers; a lost segment truncates the codestream"))
    _add(CodecEntry("webp", 26, _without_weights(".webp", "WebpCodec"), "built-in",
                    "Pillow WebP in tiles that each decode alone (one per segment); lost tiles concealed"))
    _add(CodecEntry("jpeg2000-tiles", 27, _without_weights(".jpeg2000_tiles", "Jpeg2000TilesCodec"), "built-in",
                    "JPEG 2000 (OpenJPEG) in tiles, one tile-part per segment, any subset decodes; "
                    "lost tiles concealed"))

    def seb(weights=None, **params):
        from netsem.seb.codec import SebCodec

        return SebCodec(weights, **params)

    _add(CodecEntry("seb", 16, seb, "built-in",
                    "seed 001: Seb indices from a versioned knowledge base (20 % fine / 80 % coarse regions), "
                    "importance classes for UEP"))
    for name, codec_id in ENTROPY_CODED.items():
        inner = name.removesuffix("-ec")
        _add(CodecEntry(name, codec_id, _entropy_coded_factory(name, inner), "built-in",
                        f"{inner} with each unit range-coded under a prior conditioned on the row above "
                        "(any subset decodes)"))


# Latent codecs that also ship range-coded: name -> id. The prior is fitted on the codec's
# training photographs (tools/training/fit_prior.py) and ships beside its weights.
ENTROPY_CODED = {"cnn-sem-ec": 14, "cnn-sem-impute-ec": 15,
                 **{f"cnn-sem-impute-q{q}-ec": RATE_POINT_IDS[q][1] for q in RATE_POINTS}}
# `--quality N`: the rate points no other beats in both rate and PSNR on the seven evaluation photographs (wire
# bpp / dB, all channels sent; README), lowest rate first: q1 0.30 / 25.34, q2 0.42 / 26.53, q7 0.52 / 26.94,
# q3 0.62 / 27.55, q6 0.81 / 28.64 (the default codec, pipeline.DEFAULT_CODEC: quality 5), q5 1.13 / 30.06,
# q4 1.84 / 32.08. q0 (0.38 / 24.05), beaten by the retrained q1, stays by name and among `--bpp`'s codecs.
QUALITY_POINTS = (1, 2, 7, 3, 6, 5, 4)
QUALITY_CODECS = dict(enumerate((f"cnn-sem-impute-q{q}-ec" for q in QUALITY_POINTS), 1))
# The codecs `--bpp` chooses from (with channels left out: channel_skip): every rate point and
# cnn-sem-impute-ec, the default before q6 (never trained for rate: at 1.0 bpp it loses 0.6 dB to q6 with nothing
# lost but keeps more under heavy loss, which `--expect-loss` weighs)
BPP_CODECS = (*(f"cnn-sem-impute-q{q}-ec" for q in sorted(RATE_POINTS)), "cnn-sem-impute-ec")


def refinable(name: str) -> bool:
    """Whether codec ``name`` takes ``refine`` (encoder-side latent refinement): a built-in cnn
    codec or its range-coded form."""
    spec = LEARNED.get(name.removesuffix("-ec") if name in ENTROPY_CODED else name)
    return spec is not None and spec.config.arch == "cnn"


def prior_path(codec_name: str) -> Path:
    return WEIGHTS_DIR / f"{codec_name}.prior.safetensors"


def _entropy_coded_factory(name: str, inner: str) -> Callable[..., Codec]:
    def build(weights=None, prior=None, refine=0, lmbda=None, skip=0, **params) -> Codec:
        from .channel_skip import drop_orders
        from .entropy import EntropyCodedCodec, RowContextPrior

        spec = LEARNED[inner]
        return EntropyCodedCodec(name, _learned_factory(spec)(weights, **params),
                                 RowContextPrior.load(prior or prior_path(inner)), refine=refine,
                                 lmbda=spec.lmbda if lmbda is None else lmbda, skip=skip,
                                 drop_order=drop_orders().get(name, ()))

    return build


def _learned_factory(spec: LearnedSpec) -> Callable[..., Codec]:
    def build(weights=None, **params) -> Codec:
        from .learned import LearnedCodec

        return LearnedCodec(spec.name, Path(weights) if weights else spec.weights, description=spec.description,
                            **params)

    return build


_register_builtins()
_entry_points_loaded = False


def _load_entry_points() -> None:
    """Register every codec that installed packages advertise (once)."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in _entries and _entries[point.name].origin == "built-in":
            continue  # a package cannot replace a built-in by name
        dist = f"{point.dist.name} {point.dist.version}" if point.dist is not None else point.value

        def factory(weights=None, _point=point, **params) -> Codec:
            try:
                return _build(_point.load(), weights, params)
            except CodecError:
                raise
            except Exception as error:  # noqa: BLE001 — a plug-in's failure is a one-line error
                raise CodecError(f"codec {_point.name!r} ({_point.value}) failed to load: "
                                 f"{type(error).__name__}: {error}") from None

        _add(CodecEntry(point.name, derived_id(point.name), factory, f"entry point of {dist}", point.value))


def entries() -> list[CodecEntry]:
    """Every codec known now: built-ins, installed plug-ins, registered ones."""
    _load_entry_points()
    return sorted(_entries.values(), key=lambda entry: entry.codec_id)


def codec_names() -> list[str]:
    return [entry.name for entry in entries()]


def entry_for(name: str) -> CodecEntry:
    if name not in _entries:
        _load_entry_points()
    if name not in _entries and ":" in name:
        return _import_codec(name)
    try:
        return _entries[name]
    except KeyError:
        raise CodecError(f"unknown codec {name!r}; known: {', '.join(codec_names())} "
                         "(or MODULE:ATTRIBUTE of a codec or its factory)") from None


def _import_codec(spec: str) -> CodecEntry:
    """`module:attribute` naming a codec instance or a factory: imported and registered."""
    module_name, _, attribute = spec.partition(":")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
        made = _build(target, None, {})
    except CodecError:
        raise
    except Exception as error:  # noqa: BLE001 — someone else's code: one line
        raise CodecError(f"cannot import codec {spec!r}: {type(error).__name__}: {error}") from None
    name = _name_of(made)
    entry = _add(CodecEntry(name, derived_id(name), lambda weights=None, **params: _build(target, weights, params),
                            f"imported from {spec}", getattr(made, "description", "")))
    _cache[(name, None, ())] = made
    return entry


def get_codec(name: str | Codec, weights: str | Path | None = None, **params) -> Codec:
    """A codec by name (or `module:attribute`), built once and cached; an instance is
    returned as it is (registered, so receivers here know its id). Raises CodecError (one line)."""
    if not isinstance(name, str):
        if _instances.get(_name_of(name)) is not name:
            register_codec(name)
        return name
    entry = entry_for(name)
    key = (entry.name, str(weights) if weights else None, tuple(sorted(params.items())))
    if key not in _cache:
        if weights is not None and not Path(weights).is_file():
            raise CodecError(f"weight file {weights} is missing")
        try:
            _cache[key] = entry.factory(weights=weights, **params)
        except TypeError as error:  # parameters the codec does not take
            raise CodecError(f"codec {entry.name!r}: {error}") from None
    return _cache[key]


def codec_id_of(codec: Codec) -> int:
    """The wire id of a codec (registering it if it is not yet)."""
    name = _name_of(codec)
    entry = _entries.get(name)
    if entry is None or (entry.origin != "built-in" and name in _instances and _instances[name] is not codec):
        entry = register_codec(codec)
    return entry.codec_id


def codec_name_of_id(codec_id: int) -> str | None:
    """The name of the codec a datagram's id names (None: none known here), without building it."""
    if codec_id not in _by_id:
        _load_entry_points()
    return _by_id.get(codec_id)


def codec_by_id(codec_id: int, weights: dict[str, str | Path] | None = None) -> Codec:
    """The codec a datagram's id names (with `weights[name]` if given), for a receiver."""
    name = codec_name_of_id(codec_id)
    if name is None:
        raise CodecError(f"no codec has id {codec_id} (a plug-in that is not installed here? "
                         "name it with --codec MODULE:ATTRIBUTE)")
    return get_codec(name, (weights or {}).get(name))
