"""Hints carried back in time: where each hint's point was on its shot's frames before the
hint starts (the first pass of a bidirectional run, and the studio's render)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from streamcolor.colorizer import Colorizer
from streamcolor.hints.file import Hint, HintFile
from streamcolor.temporal import TemporalConfig, _Flow, _warp, is_cut, is_cut_after_motion

# frames of one shot kept for carrying hints back (L* at the network grid, ~17 kB each at 480p)
MAX_BACK_FRAMES = 3000


def backward_positions(
    frames,
    seconds_of,
    hints: HintFile,
    colorizer: Colorizer,
    full_range: bool,
    cfg: TemporalConfig | None = None,
) -> dict[int, list[tuple[Hint, float, float]]]:
    """Where each hint's point was on the frames of its shot before the hint starts: decode
    the input once more up to the last hint (frames: GrayFrames in order, as the main pass
    numbers them), keep the current shot's L* guides, and at each hint's first frame follow
    the point backward along the flow to the shot's first frame (stopping at a cut, or after
    MAX_BACK_FRAMES). seconds_of: frame -> its time in seconds, as in the main pass.
    -> frame index -> [(hint, x, y fractions)]; a stroke's hint is given with its vertices on
    that frame (fractions), each followed back. Pinned hints included; hints
    given as pixels are turned into fractions by the caller's HintTracker (Hint.position)."""
    cfg = cfg or TemporalConfig()
    flow = _Flow(cfg.flow_scale)
    todo = [h for h in hints.hints if not (h.frame == 0 or (h.frame is None and (h.time or 0.0) <= 0.0))]
    early: dict[int, list[tuple[Hint, float, float]]] = {}
    if not todo:
        return early
    shot: list[tuple[int, np.ndarray]] = []
    for f in frames:
        if not hasattr(f, "y8"):
            continue
        lo = colorizer.guide_lo(f.y8, colorizer.output_grid(f.y8.shape), full_range)
        if shot and (shot[-1][1].shape != lo.shape or is_cut(lo, shot[-1][1], cfg)):
            shot = []
        shot.append((f.index, lo))
        del shot[:-MAX_BACK_FRAMES]
        seconds = seconds_of(f)
        starting = [h for h in todo if h.starts_by(f.index, seconds)]
        for h in starting:
            todo.remove(h)
            height, width = f.y8.shape
            v = h.vertices(width, height)
            pts = np.array([h.position(width, height)]) if v is None else v  # a stroke: every vertex
            for (i_prev, lo_prev), (_, lo_next) in zip(reversed(shot[:-1]), reversed(shot[1:])):
                back = flow.flow(lo_next, lo_prev)  # each pixel of the later frame -> the earlier
                if is_cut_after_motion(lo_next, _warp(lo_prev, flow.to_maps(back)), cfg):
                    break
                pts = flow.carry(lo_next, lo_prev, pts, back).astype(np.float64)
                x, y = float(pts[0, 0]), float(pts[0, 1])
                if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                    break
                # a stroke as it was on that frame, in fractions
                there = h if v is None else replace(h, x=x, y=y, pixels=False, stroke=tuple(map(tuple, pts.tolist())))
                early.setdefault(i_prev, []).append((there, x, y))
        if not todo:
            break
    return early
