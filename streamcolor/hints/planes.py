"""Hints as network input. The hint-trained student (a model whose card says `"hints": true`)
takes, beside L*, three planes at its input size: a*/110 and b*/110 where a hint is (0
elsewhere) and a 0/1 mask of where the hints are; it spreads each hint over its object."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import cv2
import numpy as np

from streamcolor.hints.file import Hint

if sys.version_info >= (3, 11):
    pass
else:  # the same parser, from PyPI
    pass


AB_NORM = 110.0  # hint planes hold a*b* / AB_NORM, as the student was trained


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB 0..255 -> (..., 3) float32 CIE L*a*b* (D65, OpenCV's conversion)."""
    x = (np.asarray(rgb, np.float32).reshape(-1, 1, 3) / 255.0).astype(np.float32)
    return cv2.cvtColor(x, cv2.COLOR_RGB2Lab).reshape(np.shape(rgb))


def ab_at_lightness(rgb: np.ndarray, lightness: np.ndarray) -> np.ndarray:
    """The a*b* of colours (N, 3) sRGB 0..255, placed at the lightness (N,) L* of the pixels
    they are given for: the colour's hue angle and chroma, shrunk (towards gray, hue kept) to
    the largest share that still fits the sRGB gamut at that L* (a pale yellow hint on a dark
    pixel becomes the most saturated dark yellow there is). -> (N, 2) float32."""
    lab = srgb_to_lab(np.asarray(rgb, np.float32).reshape(-1, 3))
    lightness = np.asarray(lightness, np.float32).reshape(-1)
    scales = np.linspace(1.0, 0.0, 21, dtype=np.float32)
    # (N, S, 3) candidates at each shrink factor; the first in gamut wins (S = 21 steps of 5 %)
    cand = np.empty((len(lab), len(scales), 3), np.float32)
    cand[..., 0] = lightness[:, None]
    cand[..., 1:] = lab[:, None, 1:] * scales[None, :, None]
    rgb_c = cv2.cvtColor(cand, cv2.COLOR_Lab2RGB)
    ok = np.all((rgb_c >= -1e-3) & (rgb_c <= 1 + 1e-3), axis=2)
    ok[:, -1] = True  # gray always fits
    first = ok.argmax(axis=1)
    return cand[np.arange(len(lab)), first, 1:]


@dataclass
class HintPoint:
    """A hint placed on one frame: (x, y) fractions of the frame, a*b* (2,), radius as a
    fraction of the frame's short side; a stroke: its vertices (N, 2) fractions (x, y), the
    first at (x, y), drawn as a line of the point's disc width."""

    x: float
    y: float
    ab: np.ndarray
    radius: float
    stroke: np.ndarray | None = None

    def samples(self, spacing: float = 0.02) -> np.ndarray:
        """(M, 2) fractions (x, y): the point, or places along the stroke about `spacing` of
        the frame apart (at most 32 of them) and its vertices."""
        if self.stroke is None or len(self.stroke) < 2:
            return np.array([[self.x, self.y]], np.float32)
        v = np.asarray(self.stroke, np.float32)
        seg = np.linalg.norm(np.diff(v, axis=0), axis=1)
        along = np.concatenate([[0.0], np.cumsum(seg)])
        n = int(np.clip(np.ceil(along[-1] / spacing) + 1, len(v), 32))
        t = np.unique(np.concatenate([along, np.linspace(0.0, along[-1], n)]))
        return np.stack([np.interp(t, along, v[:, 0]), np.interp(t, along, v[:, 1])], axis=1).astype(np.float32)


def default_radius(width: int, height: int) -> float:
    """1 % of the short side, in pixels."""
    return 0.01 * min(width, height)


def hint_planes(points: list[HintPoint], shape: tuple[int, int]) -> np.ndarray:
    """Hint points -> (3, h, w) float32 network hint input at the network input's shape:
    a*/110 and b*/110 inside each hint's disc (at least one pixel), 0 elsewhere, and the 0/1
    mask. Later points overwrite earlier ones where they overlap."""
    h, w = shape
    planes = np.zeros((3, h, w), np.float32)
    a, b, mask = planes  # views: cv2.circle draws into them
    short = min(h, w)
    for p in points:
        if p.stroke is not None and len(p.stroke) >= 2:
            _draw_stroke(planes, p, short)
            continue
        cx, cy = p.x * w - 0.5, p.y * h - 0.5
        if not (-0.5 <= cx <= w - 0.5 and -0.5 <= cy <= h - 0.5):
            continue
        r = p.radius * short
        if r < 1.0:  # under a pixel: the nearest pixel
            x, y = min(max(int(round(cx)), 0), w - 1), min(max(int(round(cy)), 0), h - 1)
            a[y, x], b[y, x], mask[y, x] = p.ab[0] / AB_NORM, p.ab[1] / AB_NORM, 1.0
            continue
        # a filled disc, its centre and radius in 1/16 pixel (OpenCV's fixed-point shift)
        centre, radius = (int(round(cx * 16)), int(round(cy * 16))), int(round(r * 16))
        cv2.circle(a, centre, radius, float(p.ab[0] / AB_NORM), -1, cv2.LINE_8, 4)
        cv2.circle(b, centre, radius, float(p.ab[1] / AB_NORM), -1, cv2.LINE_8, 4)
        cv2.circle(mask, centre, radius, 1.0, -1, cv2.LINE_8, 4)
    return planes


def _draw_stroke(planes: np.ndarray, p: HintPoint, short: int) -> None:
    """A stroke into the planes (3, h, w): a polyline as wide as the point's disc (at least one
    pixel), clipped by OpenCV where it leaves the picture."""
    _, h, w = planes.shape
    v = np.asarray(p.stroke, np.float32) * np.array([w, h], np.float32) - 0.5
    pts = [np.round(v * 16).astype(np.int32).reshape(-1, 1, 2)]  # 1/16 pixel, as the discs
    thickness = max(1, int(round(2 * p.radius * short)))
    for plane, value in zip(planes, (p.ab[0] / AB_NORM, p.ab[1] / AB_NORM, 1.0)):
        cv2.polylines(plane, pts, False, float(value), thickness, cv2.LINE_8, 4)


def place_hints(hints: list[Hint], y8_lightness: np.ndarray, width: int, height: int) -> list[HintPoint]:
    """Hints -> HintPoints on a frame whose L* (any size, float32 0..100) is given: each
    colour's a*b* at the L* under the hint (ab_at_lightness)."""
    if not hints:
        return []
    lh, lw = y8_lightness.shape

    def lightness(h: Hint) -> float:  # a stroke: the median L* under its vertices
        v = h.vertices(width, height)
        v = np.array([h.position(width, height)]) if v is None else v
        xs = np.clip((v[:, 0] * lw).astype(int), 0, lw - 1)
        ys = np.clip((v[:, 1] * lh).astype(int), 0, lh - 1)
        return float(np.median(y8_lightness[ys, xs]))

    ab = ab_at_lightness(np.array([h.rgb for h in hints]), np.array([lightness(h) for h in hints]))
    short = min(width, height)
    out = []
    for i, h in enumerate(hints):
        x, y = h.position(width, height)
        r = (h.radius if h.radius is not None else default_radius(width, height)) / short
        out.append(HintPoint(x, y, ab[i], r, h.vertices(width, height)))
    return out
