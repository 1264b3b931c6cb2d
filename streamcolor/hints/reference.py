"""Reference photos as matching data: each stride-16 cell's features and colour, matched onto a frame's cells."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streamcolor import color
from streamcolor.colorizer import Colorizer
from streamcolor.errors import ConfigError
from streamcolor.hints.file import Reference
from streamcolor.hints.planes import HintPoint

# ... and for a frame cell to take its best-matching reference cell's colour: the lowest
# threshold at which a reference that does not show the photo costs under 0.1 dB (-0.06 dB;
# the photo itself as reference for its changed view: +4.7 dB), same benchmark
REF_THRESHOLD = 0.75


# reference cells whose a*b* varies more than this (RMS, CIE units) hold two colours: no hint
REF_MAX_SPREAD = 12.0


# a reference photo needs this many pixels a side (the feature grid is 1/16 of the network's input)
MIN_REFERENCE = 32


# ... and this mean chroma (CIE a*b* units): below it, it is a gray or nearly gray photo
MIN_REFERENCE_CHROMA = 3.0


# a reference hint covers this share of its cell's side, at the cell's centre
REF_PATCH = 0.25


# reference cells given to the network as hints (the best-matching ones)
REF_NETWORK_HINTS = 8


@dataclass
class ReferenceColours:
    """A reference photo as matching data: features (M, C) unit vectors of its stride-16
    cells, the mean a*b* (M, 2) of each cell, and which cells hold one colour (M,) bool."""

    ref: Reference
    features: np.ndarray
    ab: np.ndarray
    usable: np.ndarray


def load_reference(ref: Reference, colorizer: Colorizer) -> ReferenceColours:
    """Read the reference photo, run the hint model on its lightness for its features, and
    take its own a*b* per cell. Raises ConfigError (one line) for a photo that is missing,
    unreadable, smaller than MIN_REFERENCE pixels a side, or without colour."""
    path = Path(ref.path)
    if path.is_dir():
        raise ConfigError(f"reference photo {path} is a folder, not a photo")
    if not path.is_file():
        raise ConfigError(f"reference photo not found: {path}")
    data = np.fromfile(path, np.uint8)
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our line, not OpenCV's warning
    try:
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    finally:
        cv2.utils.logging.setLogLevel(level)
    if bgr is None:
        raise ConfigError(f"cannot read reference photo {path}: not an image")
    if min(bgr.shape[:2]) < MIN_REFERENCE:
        raise ConfigError(
            f"reference photo {path} is {bgr.shape[1]}x{bgr.shape[0]}: "
            f"at least {MIN_REFERENCE} pixels a side are needed"
        )
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    chroma = float(np.hypot(lab[..., 1], lab[..., 2]).mean())
    if chroma < MIN_REFERENCE_CHROMA:
        raise ConfigError(
            f"reference photo {path} has no colour to give (mean chroma {chroma:.1f}): "
            "a gray photo would only gray the output"
        )
    # the network sees the photo as a gray photo is read (images.colorize_photo)
    y8 = (color.rgb_to_gray(rgb) * 255.0 + 0.5).astype(np.uint8)
    x = colorizer.network_input(y8, True)
    _, feats = colorizer.predict_features([x])
    f = feats[0]
    gh, gw = f.shape[:2]
    h, w = x.shape[1:]
    ab = cv2.resize(lab[..., 1:], (w, h), interpolation=cv2.INTER_AREA)
    s = h // gh
    cells = ab[: gh * s, : gw * s].reshape(gh, s, gw, s, 2)
    mean = cells.mean(axis=(1, 3))
    spread = np.sqrt(((cells - mean[:, None, :, None]) ** 2).sum(axis=4).mean(axis=(1, 3)))
    return ReferenceColours(ref, f.reshape(-1, f.shape[2]), mean.reshape(-1, 2), (spread <= REF_MAX_SPREAD).reshape(-1))


def match_reference(
    feats: np.ndarray, refc: ReferenceColours, threshold: float = REF_THRESHOLD
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """feats (gh, gw, C) unit vectors of a frame -> per cell (gh, gw): best similarity, the
    reference a*b* (gh, gw, 2) of the best-matching usable cell, and whether it is confident."""
    gh, gw, c = feats.shape
    if not refc.usable.any():
        return np.zeros((gh, gw), np.float32), np.zeros((gh, gw, 2), np.float32), np.zeros((gh, gw), bool)
    sim = feats.reshape(-1, c) @ refc.features[refc.usable].T
    best = sim.argmax(axis=1)
    s = sim[np.arange(len(best)), best].reshape(gh, gw)
    ab = refc.ab[refc.usable][best].reshape(gh, gw, 2)
    return s, ab, s >= threshold


def reference_points(
    feats: np.ndarray, refc: ReferenceColours, threshold: float = REF_THRESHOLD, most: int = REF_NETWORK_HINTS
) -> list[HintPoint]:
    """Network hints from a reference: the centres of the `most` frame cells that match it most
    closely (at least `threshold`), each with its reference cell's a*b*. Few, as the network
    was trained with (dense reference hints lowered PSNR on the colour clips); the other
    confident cells act through reference_correction."""
    s, ab, ok = match_reference(feats, refc, threshold)
    gh, gw = s.shape
    flat = np.flatnonzero(ok.reshape(-1))
    flat = flat[np.argsort(-s.reshape(-1)[flat])][:most]
    ys, xs = np.divmod(flat, gw)
    r = REF_PATCH * 0.5 / min(gh, gw)  # fraction of the short side
    return [HintPoint((x + 0.5) / gw, (y + 0.5) / gh, ab[y, x], r) for y, x in zip(ys, xs)]
