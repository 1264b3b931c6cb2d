"""Hints on one photo: every hint of the file and its references, times ignored."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from streamcolor.colorizer import Colorizer
from streamcolor.hints.file import UNTIL_CUT, Hint, HintFile, Reference
from streamcolor.hints.tracker import HintTracker


def colorize_with_hints(
    y8: np.ndarray, colorizer: Colorizer, hints: HintFile, full_range: bool = True, warn=lambda msg: None
) -> np.ndarray:
    """One gray photo (H, W) uint8 with every hint of the file (times ignored) and its
    references -> (h/4, w/4, 2) a*b* on the network grid (Colorizer._lab_at turns it into
    the photo's L*a*b*)."""
    h, w = y8.shape
    everything = HintFile(tuple(_at_start(t) for t in hints.hints), tuple(_whole(r) for r in hints.references))
    tracker = HintTracker(everything, colorizer, w, h, full_range, warn=warn)
    x = colorizer.network_input(y8, full_range)
    grid = colorizer.output_grid(y8.shape)
    l_lo = colorizer.guide_lo(y8, grid, full_range)
    if tracker.references:  # a photo has no previous frame: its own features place the reference's hints
        tracker.observe(colorizer.predict_features([x])[1][0])
    planes = tracker.planes(0, 0.0, y8, l_lo, x.shape[1:])
    ab, feats = colorizer.predict_features([x], [planes])
    return tracker.refine(ab[0], l_lo, feats[0])


def _at_start(h: Hint) -> Hint:
    return replace(h, time=0.0, frame=None, until=UNTIL_CUT)


def _whole(r: Reference) -> Reference:
    return replace(r, start=0.0, end=float("inf"))
