"""Luminance deflicker for old film (`--deflicker`, off by default).

Archival reels pump in brightness from frame to frame (uneven exposure, developing,
projector lamps). The colorizer sees L*, so its colours would pump too. This filter
steadies the luma before colorization: each frame's mean and spread of luma are pulled
towards their running averages, with a per-frame 256-entry table (cheap at any size).
Real changes are left alone: a scene cut (a jump larger than `cut`) restarts the
averages, and a slow drift passes because the averages follow it.

When it is on, the output's luma is the steadied luma, not the input's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from streamcolor.source import GrayFrame


@dataclass(frozen=True)
class DeflickerConfig:
    """memory: weight of the running average per frame (0.9: about 10 frames).
    cut: change of mean luma (codes) treated as a new shot, not flicker."""

    memory: float = 0.9
    cut: float = 40.0


class Deflicker:
    def __init__(self, cfg: DeflickerConfig | None = None):
        self.cfg = cfg or DeflickerConfig()
        self.mean: float | None = None
        self.std: float | None = None

    def __call__(self, y8: np.ndarray) -> np.ndarray:
        """(H, W) uint8 luma -> steadied (H, W) uint8 luma."""
        small = cv2.resize(y8, (max(1, y8.shape[1] // 8), max(1, y8.shape[0] // 8)), interpolation=cv2.INTER_AREA)
        m, s = cv2.meanStdDev(small)
        m, s = float(m[0, 0]), max(float(s[0, 0]), 1.0)
        if self.mean is None or abs(m - self.mean) > self.cfg.cut:
            self.mean, self.std = m, s
            return y8
        k = self.cfg.memory
        self.mean = k * self.mean + (1 - k) * m
        self.std = k * self.std + (1 - k) * s
        gain = self.std / s
        lut = np.clip((np.arange(256, dtype=np.float32) - m) * gain + self.mean + 0.5, 0, 255).astype(np.uint8)
        return cv2.LUT(y8, lut)


def deflicker_items(items: Iterable, cfg: DeflickerConfig | None = None) -> Iterator:
    """Steady the luma of each GrayFrame in a stream of items; others pass through."""
    flt = Deflicker(cfg)
    for item in items:
        if isinstance(item, GrayFrame):
            item.y8 = flt(item.y8)
        yield item
