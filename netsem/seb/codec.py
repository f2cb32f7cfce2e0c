"""The `seb` codec (seed 001 §II-C, §IV-A): Seb indices out, a knowledge base lookup and f_TP in.

    codec = get_codec("seb")                  # shipped networks and KB version 1
    frame = codec.to_frame(image)             # StreamFrame: segments of Seb indices, by importance
    image = codec.from_frame(received)        # lost regions concealed from their neighbours

Encoding: the image (padded to 32 px multiples) goes through f_SE; each 32x32 region gets
the mean spectral-residual saliency of its pixels as its importance; the top `fine_fraction`
(20 %, the seed's) of the regions are coded with fine Sebs (4 patches x 16 slices x 8 bits),
the rest with one coarse Sebs vector (16 slices x 6 bits). For unequal error protection the
top `important_fraction` (50 %, the seed's message-wise UEP) of the regions are class 1 and
travel in their own segments, whose datagrams carry importance 1 (a PHY stage or a sender
then protects them more); `uep="random"` picks random regions holding as many bits instead
(the seed's "random UEP", at the same protected bytes), `uep="none"` puts everything in class 0.

Decoding: every segment that arrived is parsed and its indices checked against this
receiver's KB (the frame's `kb_version` must be the KB's version, every index an active Seb:
CodecError otherwise, never a decode of garbage); the features are looked up (f_query), lost
regions take the features of the nearest received patches, and f_TP decodes.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from netsem.codecs.base import CodecError, check_image, check_image_size
from netsem.codecs.config import WEIGHTS_DIR
from packetizers.frames import StreamFrame

from .kb import KbError, KnowledgeBase
from .model import PATCH, REGION
from .saliency import block_importance, saliency_map
from .segment import (
    SegmentError,
    bitmap_bytes,
    pack_segment,
    parse_segment,
    region_bits,
)

MODEL_PATH = WEIGHTS_DIR / "seb.safetensors"
KB_PATH = WEIGHTS_DIR / "seb-kb.safetensors"
UEP_MODES = ("saliency", "random", "none")
TILE_FEATURES = 64  # decode maps larger than 64x64 features (1024x1024 pixels) in tiles
HALO = 4
DEFAULT_SEGMENT_BYTES = 1100  # without a datagram budget (to_frame(image) alone)


@dataclass(frozen=True)
class Encoded:
    """What the sender knows of one image beyond its frame (for KB updates and reports)."""

    frame: StreamFrame
    features: np.ndarray  # (D, h, w) f_SE output
    patch_importance: np.ndarray  # (h, w) I_f
    fine_regions: np.ndarray  # (h/2, w/2) bool
    fine_index: np.ndarray  # (G, h, w)
    coarse_index: np.ndarray  # (G, h/2, w/2)


def padded_size(height: int, width: int) -> tuple[int, int]:
    return -(-height // REGION) * REGION, -(-width // REGION) * REGION


def conceal(features: np.ndarray, known: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Each unknown patch takes the features of the nearest known one (Euclidean distance on the
    patch grid, one pass: a peer's huge, mostly empty image costs O(patches)); with nothing
    known, `fallback` (D,) everywhere."""
    from scipy.ndimage import distance_transform_edt

    if not known.any():
        return np.broadcast_to(fallback[:, None, None], features.shape).astype(np.float32)
    _, (rows, cols) = distance_transform_edt(~known, return_indices=True)
    return features[:, rows, cols]


def analyse(model, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f_SE features (D, h, w) of the image padded to 32 px multiples, and each 16x16 patch's
    importance I_f (h, w): its mean saliency."""
    import torch

    image = check_image(image)
    h, w = image.shape[:2]
    ph, pw = padded_size(h, w)
    padded = np.pad(image, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    with torch.no_grad():
        x = torch.from_numpy(padded).permute(2, 0, 1)[None].float() / 255
        features = model.extract(x)[0].numpy()
    return features, block_importance(saliency_map(padded), PATCH)


class SebCodec:
    name = "seb"
    partitions = ("segment",)
    description = "seed 001: Seb indices from a versioned knowledge base, 20 % fine / 80 % coarse, UEP classes"

    def __init__(self, weights: str | Path | None = None, kb: str | Path | KnowledgeBase | None = None, *,
                 fine_fraction: float = 0.2, important_fraction: float = 0.5, uep: str = "saliency",
                 segment_bytes: int | None = None, seed: int = 0) -> None:
        from .train import load_model

        if uep not in UEP_MODES:
            raise CodecError(f"seb: uep {uep!r}, expected one of {', '.join(UEP_MODES)}")
        if not (0 <= fine_fraction <= 1 and 0 <= important_fraction <= 1):
            raise CodecError("seb: fine_fraction and important_fraction lie in 0..1")
        try:
            self.model, _ = load_model(weights or MODEL_PATH)
            self.kb = kb if isinstance(kb, KnowledgeBase) else KnowledgeBase.load(kb or KB_PATH)
        except (ValueError, KbError) as error:
            raise CodecError(f"seb: {error}") from None
        if self.kb.feature_dim != self.model.config.dim:
            raise CodecError(f"seb: the KB's {self.kb.feature_dim}-number features do not fit the "
                             f"network's {self.model.config.dim}")
        self.weights_path = Path(weights or MODEL_PATH)  # what `netsem models` lists
        self.num_parameters = sum(p.numel() for p in self.model.parameters())
        self.fine_fraction = fine_fraction
        self.important_fraction = important_fraction
        self.uep = uep
        self.segment_bytes = segment_bytes
        self.seed = seed

    def using(self, kb: KnowledgeBase) -> SebCodec:
        """This codec (same networks and settings) with another knowledge base."""
        import copy

        other = copy.copy(self)
        other.kb = kb
        return other

    # ---------------------------------------------------------------- sender
    def encode(self, image: np.ndarray, payload_budget: int = 0) -> Encoded:
        image = check_image(image)
        features, patch_importance = analyse(self.model, image)
        region_importance = patch_importance.reshape(patch_importance.shape[0] // 2, 2, -1, 2).mean(axis=(1, 3))
        rh, rw = region_importance.shape
        total = rh * rw
        by_importance = np.argsort(-region_importance.reshape(-1), kind="stable")
        fine = np.zeros(total, bool)
        fine[by_importance[:int(np.ceil(self.fine_fraction * total))]] = True
        fine_regions = fine.reshape(rh, rw)
        klass = np.zeros(total, np.int64)
        n_important = int(round(self.important_fraction * total))
        if self.uep == "saliency":
            klass[by_importance[:n_important]] = 1
        elif self.uep == "random":
            # random regions holding as many bits as the salient half: the same bytes protected
            bits = np.array([region_bits(bool(f), self.kb.groups) for f in fine])
            budget = bits[by_importance[:n_important]].sum()
            rng = np.random.default_rng([self.seed, zlib.crc32(image.tobytes())])
            for region in rng.permutation(total):
                if bits[klass == 1].sum() + bits[region] <= budget:
                    klass[region] = 1
        fine_index, coarse_index = self.kb.quantize(features, fine_regions)
        segments, classes = self._segments(fine, klass, fine_index, coarse_index, payload_budget)
        frame = StreamFrame(tuple(segments), codec_params=(round(100 * self.fine_fraction), round(100 * self.important_fraction)),
                            image_size=image.shape[:2], kb_version=self.kb.version, segment_importance=tuple(classes))
        return Encoded(frame, features, patch_importance, fine_regions, fine_index, coarse_index)

    def _segments(self, fine: np.ndarray, klass: np.ndarray, fine_index: np.ndarray, coarse_index: np.ndarray,
                  payload_budget: int) -> tuple[list[bytes], list[int]]:
        g, h, w = fine_index.shape
        total = fine.size
        rw = w // 2
        budget = self.segment_bytes or (payload_budget if payload_budget > 0 else DEFAULT_SEGMENT_BYTES)
        room = (budget - 1 - bitmap_bytes(total)) * 8
        if room < region_bits(True, g):
            raise CodecError(f"seb: a {budget}-byte datagram payload cannot hold one region of a {h * 16}x{w * 16} image")
        order = np.random.default_rng([self.seed, total]).permutation(total)  # scatter a segment's regions
        order = order[np.argsort(-klass[order], kind="stable")]
        segments, classes, current, used = [], [], [], 0

        def close() -> None:
            regions = np.array(sorted(current), np.int64)
            flags = fine[regions]
            ry, rx = regions // rw, regions % rw
            fi = np.stack([fine_index[:, 2 * y + dy, 2 * x + dx] for y, x in zip(ry[flags], rx[flags])
                           for dy in (0, 1) for dx in (0, 1)]).reshape(-1, 4, g) if flags.any() else np.zeros((0, 4, g), np.int64)
            ci = coarse_index[:, ry[~flags], rx[~flags]].T
            segments.append(pack_segment(int(klass[regions[0]]), total, regions, flags, fi, ci))
            classes.append(int(klass[regions[0]]))

        for region in order.tolist():
            bits = region_bits(bool(fine[region]), g)
            if current and (used + bits > room or klass[region] != klass[current[0]]):
                close()
                current, used = [], 0
            current.append(region)
            used += bits
        if current:
            close()
        return segments, classes

    def to_frame(self, image: np.ndarray, payload_budget: int = 0) -> StreamFrame:
        return self.encode(image, payload_budget).frame

    # ---------------------------------------------------------------- receiver
    def from_frame(self, frame: StreamFrame) -> np.ndarray:
        if not isinstance(frame, StreamFrame):
            raise CodecError("seb decodes Seb-index segments, not a latent")
        if frame.kb_version != self.kb.version:
            raise CodecError(f"seb: frame coded with KB version {frame.kb_version}, this receiver holds version "
                             f"{self.kb.version}")
        h, w = check_image_size(frame.image_size)
        ph, pw = padded_size(h, w)
        gh, gw = ph // PATCH, pw // PATCH
        rw, total, g = pw // REGION, (ph // REGION) * (pw // REGION), self.kb.groups
        fine_index = np.zeros((g, gh, gw), np.int64)
        coarse_index = np.zeros((g, gh // 2, gw // 2), np.int64)
        fine_regions = np.zeros((gh // 2, gw // 2), bool)
        seen = np.zeros(total, bool)
        for index, data in frame.present().items():
            try:
                segment = parse_segment(data, total, g)
                self.kb.check_indices(0, segment.fine_index.transpose(2, 0, 1).reshape(g, -1))
                self.kb.check_indices(1, segment.coarse_index.T)
            except (SegmentError, KbError) as error:
                raise CodecError(f"seb: segment {index}: {error}") from None
            if seen[segment.regions].any():
                raise CodecError(f"seb: segment {index} repeats a region another segment holds")
            seen[segment.regions] = True
            ry, rx = segment.regions // rw, segment.regions % rw
            fine_regions[ry, rx] = segment.fine
            for k, (y, x) in enumerate(zip(ry[segment.fine], rx[segment.fine])):
                fine_index[:, 2 * y:2 * y + 2, 2 * x:2 * x + 2] = segment.fine_index[k].T.reshape(g, 2, 2)
            coarse_index[:, ry[~segment.fine], rx[~segment.fine]] = segment.coarse_index.T
        features = self.kb.features_of(fine_index, coarse_index, fine_regions)
        known = seen.reshape(gh // 2, gw // 2).repeat(2, axis=0).repeat(2, axis=1)
        if not known.all():
            features = conceal(features, known, self.kb.mean_feature())
        return np.ascontiguousarray(self.synthesise(features)[:h, :w])

    def synthesise(self, features: np.ndarray) -> np.ndarray:
        """f_TP on a (D, h, w) map -> (16h, 16w, 3) uint8. Maps above TILE_FEATURES a side are
        decoded tile by tile with HALO features of context around each (the decoder's reach is
        under 2 features), so a peer that claims a 32-Mpixel image costs time, not 13 GB."""
        import torch

        _, h, w = features.shape
        out = np.empty((h * PATCH, w * PATCH, 3), np.uint8)
        with torch.no_grad():
            for y in range(0, h, TILE_FEATURES):
                for x in range(0, w, TILE_FEATURES):
                    y0, x0 = max(0, y - HALO), max(0, x - HALO)
                    y1, x1 = min(h, y + TILE_FEATURES + HALO), min(w, x + TILE_FEATURES + HALO)
                    tile = self.model.reconstruct(torch.from_numpy(np.ascontiguousarray(features[:, y0:y1, x0:x1]))[None])[0]
                    tile = (tile.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
                    ky, kx = (y - y0) * PATCH, (x - x0) * PATCH
                    th, tw = min(TILE_FEATURES, h - y) * PATCH, min(TILE_FEATURES, w - x) * PATCH
                    out[y * PATCH:y * PATCH + th, x * PATCH:x * PATCH + tw] = tile[ky:ky + th, kx:kx + tw]
        return out
