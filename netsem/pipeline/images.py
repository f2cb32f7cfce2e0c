"""Loading and saving the images netsem sends.

Codecs take 8-bit RGB. Whatever else a file holds is converted, and every conversion that
changes what is sent is said once, as a note the CLI prints (alpha dropped, gray widened,
16-bit reduced, palette expanded, only the first frame of an animation). Several images
(a folder, a glob, an animation's frames) become a sequence of frames.
"""

from __future__ import annotations

import glob
import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

DEFAULT_IMAGE = "astronaut"  # scikit-image ships it: no download, never used for training
BUNDLED_PREFIX = "skimage:"  # e.g. skimage:coffee, a photograph scikit-image ships
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"}
MAX_SEQUENCE = 10_000  # frames one command may send: a typo'd glob should not load a disk


class ImageError(Exception):
    """An image that cannot be read (one-line message)."""


@dataclass(frozen=True)
class LoadedImage:
    pixels: np.ndarray  # (H, W, 3) uint8 RGB
    label: str  # what reports call it
    notes: tuple[str, ...] = ()  # conversions that changed what is sent, said once
    load_s: float = 0.0  # seconds reading and converting it took


def load_image(path: str | None) -> tuple[np.ndarray, str]:
    """RGB uint8 (H, W, 3) and a label; None loads the bundled default photograph, and
    `skimage:NAME` one of scikit-image's bundled photographs. A file's conversions are
    applied silently here; `load_images` says what they were."""
    loaded = load_one(path)
    return loaded.pixels, loaded.label


def load_one(path: str | None) -> LoadedImage:
    """One image (an animation: its first frame, with a note)."""
    if path is None:
        path = BUNDLED_PREFIX + DEFAULT_IMAGE
    if path.startswith(BUNDLED_PREFIX):
        return _bundled(path[len(BUNDLED_PREFIX):])
    frames = _file_frames(Path(path), every_frame=False)
    return frames[0]


def load_images(paths: tuple[str, ...]) -> list[LoadedImage]:
    """The frames to send, in order: each argument is a file (every frame of an animation),
    a folder (its image files, sorted by name), a glob pattern, or skimage:NAME; none means
    the bundled default photograph."""
    if not paths:
        return [load_one(None)]
    loaded: list[LoadedImage] = []
    for path in paths:
        if path.startswith(BUNDLED_PREFIX):
            loaded.append(_bundled(path[len(BUNDLED_PREFIX):]))
        else:
            for file in _expand(path):
                loaded += _file_frames(file, every_frame=True)
        if len(loaded) > MAX_SEQUENCE:
            raise ImageError(f"more than {MAX_SEQUENCE} frames to send: name fewer images")
    return loaded


def _expand(path: str) -> list[Path]:
    file = Path(path)
    if file.is_dir():
        found = sorted(p for p in file.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not found:
            raise ImageError(f"folder {path} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return found
    if file.is_file():
        return [file]
    if glob.has_magic(path):
        found = sorted(Path(p) for p in glob.glob(path) if Path(p).is_file())
        if not found:
            raise ImageError(f"no file matches {path}")
        return found
    raise ImageError(f"image not found: {path}")


def _bundled(name: str) -> LoadedImage:
    """A photograph scikit-image ships: read from its data folder with Pillow when the file
    is named after it (importing skimage.data costs ~0.5 s of scipy), else through skimage."""
    started = time.perf_counter()
    file = _bundled_file(name)
    if file is not None:
        with Image.open(file) as opened:
            image = np.asarray(opened)
    else:
        from skimage import data

        loader = getattr(data, name, None)
        if name.startswith("_") or not callable(loader):
            raise ImageError(f"scikit-image has no photograph named {name!r} (try astronaut, coffee, chelsea, rocket)")
        image = np.asarray(loader())
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ImageError(f"scikit-image's {name!r} is not an RGB photograph")
    return LoadedImage(np.ascontiguousarray(image[:, :, :3]), f"{name} (scikit-image)",
                       load_s=time.perf_counter() - started)


def _bundled_file(name: str) -> Path | None:
    """scikit-image's own file for photograph `name` (astronaut.png, rocket.jpg, ...), if any."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations or not name.isidentifier() or name.startswith("_"):
        return None
    folder = Path(spec.submodule_search_locations[0]) / "data"
    return next((folder / f"{name}{suffix}" for suffix in (".png", ".jpg") if (folder / f"{name}{suffix}").is_file()),
                None)


def _file_frames(file: Path, *, every_frame: bool) -> list[LoadedImage]:
    started = time.perf_counter()
    try:
        with Image.open(file) as image:
            count = getattr(image, "n_frames", 1)
            if count > 1 and every_frame:
                frames = []
                for index, frame in enumerate(ImageSequence.Iterator(image)):
                    pixels, notes = _to_rgb(frame)
                    said = (f"{count} frames, each sent as a frame", *notes) if index == 0 else ()
                    frames.append(LoadedImage(pixels, f"{file.name} frame {index}",
                                              tuple(f"{file.name}: {note}" for note in said),
                                              time.perf_counter() - started))
                    started = time.perf_counter()
                return frames
            pixels, notes = _to_rgb(image)
            if count > 1:
                notes = (f"only the first of its {count} frames is used",) + notes
            return [LoadedImage(pixels, file.name, tuple(f"{file.name}: {note}" for note in notes),
                                time.perf_counter() - started)]
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ImageError(f"cannot read image {file}: {error}") from None


def _to_rgb(image: Image.Image) -> tuple[np.ndarray, tuple[str, ...]]:
    """8-bit RGB pixels and what the conversion changed."""
    notes = []
    mode = image.mode
    rawmode = image.tile[0].args if image.tile and isinstance(image.tile[0].args, str) else ""
    if ";16" in rawmode and not mode.startswith("I"):
        notes.append("16-bit channels reduced to 8 bits")
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        notes.append(f"{'16-bit' if top > 255 else mode + '-mode'} gray reduced to 8 bits and sent as RGB")
        gray = np.clip(np.round(values * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2)), tuple(notes)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        notes.append("alpha channel dropped (transparent pixels keep their colour)")
    if mode in ("L", "LA", "1"):
        notes.append("gray image sent as RGB (three equal channels)")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        notes.append(f"{mode} converted to RGB")
    elif mode in ("P", "PA"):
        notes.append("palette image expanded to RGB")
    return np.asarray(image.convert("RGB")), tuple(notes)


def save_image(image: np.ndarray, path: str) -> None:
    Image.fromarray(image).save(path)
