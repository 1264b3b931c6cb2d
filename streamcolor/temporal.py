"""Temporal filters against flicker: a*b* carried along optical flow and blended.

They work on the network's output grid (a*b* at 1/4 of the model's input, about 88x48
for 16:9), before the edge-aware upsampling. So they are cheap, and they cannot smear
colour over edges in time: each frame's chroma is still upsampled along that frame's
own luminance edges.

Per frame the filters see:
    l_lo:  (h, w) float32  L*/100 at the output grid (the guide of the upsampling)
    ab_lo: (h, w, 2) float32 a*b* predicted for this frame alone
Flow is computed with OpenCV's DIS (ultrafast preset) on L at twice that grid size.

causal: out_t = blend(pred_t, warp(out_{t-1})) with a per-pixel confidence from how well
        the warped previous L matches the current L (occlusions, new content and lighting
        changes trust the current frame). No future frame is read.
bidirectional: the causal pass forward, and for each frame the same recursion run
        backward from `lookahead` frames ahead; the two are combined into a two-sided
        exponential smoother. Memory holds only the lookahead window.
Both reset at scene cuts (mean |dL*| jump between frames): no colour crosses a cut.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

MODES = ("off", "causal", "bidirectional")

# A frame's own prediction, or a callable that computes it on demand: frames between
# key frames get no network run unless the filter needs one (first frame, scene cut).
Prediction = np.ndarray | Callable[[], np.ndarray]


def _now(pred: Prediction) -> np.ndarray:
    return pred() if callable(pred) else pred


class Memory(Protocol):
    """What the filters tell a memory of shots (streamcolor/shot_memory.py, ShotMemory)."""

    def recall(self, l_lo: np.ndarray, ab_lo: np.ndarray, new_shot: bool) -> np.ndarray:
        """Every frame that has a prediction, in order (new_shot: the first frame of a shot)
        -> the prediction to use."""

    def observe(self, l_lo: np.ndarray, ab_lo: np.ndarray, new_shot: bool) -> None:
        """Every frame's final a*b*, in order, as it leaves the filter."""


def _recalled(memory: Memory | None, l_lo: np.ndarray, ab: np.ndarray, new_shot: bool) -> np.ndarray:
    return ab if memory is None else memory.recall(l_lo, ab, new_shot)


@dataclass(frozen=True)
class TemporalConfig:
    """strength: weight of the motion-compensated history where it is fully trusted.
    sigma: L*/100 mismatch at which trust falls to exp(-1).
    cut_threshold: mean |L*_t - L*_{t-1}|/100 that counts as a scene cut.
    cut_mismatch: mean |L*_t - warped L*_{t-1}|/100 that counts as a cut even when the
        brightness stays the same (two shots of similar exposure): motion cannot explain it.
    lookahead: future frames the bidirectional filter waits for."""

    strength: float = 0.9
    sigma: float = 0.04
    cut_threshold: float = 0.12
    cut_mismatch: float = 0.06
    lookahead: int = 12
    flow_scale: int = 2


# forward-backward error (grid pixels) above which a point's flow is not trusted (_Flow.carry)
FB_MAX = 0.5


class _Flow:
    """Backward flow (for each pixel of `cur`, where it was in `prev`) on a small L grid."""

    def __init__(self, scale: int):
        self.scale = scale
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._grid: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def _u8(self, l_lo: np.ndarray) -> np.ndarray:
        h, w = l_lo.shape
        big = cv2.resize(l_lo, (w * self.scale, h * self.scale), interpolation=cv2.INTER_LINEAR)
        return np.clip(big * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def flow(self, cur: np.ndarray, prev: np.ndarray) -> np.ndarray:
        """(h, w, 2) displacement, in grid pixels, from each pixel of `cur` to `prev`."""
        flow = self.dis.calc(self._u8(cur), self._u8(prev), None)
        h, w = cur.shape
        return cv2.resize(flow, (w, h), interpolation=cv2.INTER_AREA) / self.scale

    def carry(self, a: np.ndarray, b: np.ndarray, xy: np.ndarray, fwd: np.ndarray | None = None) -> np.ndarray:
        """Points carried from frame `a` to frame `b` along the flow.

        a, b: (h, w) float32 L*/100 at the same grid; xy: (n, 2) positions on `a` in
        fractions of the frame (x, y in [0, 1]); fwd: self.flow(a, b) when already computed.
        -> (n, 2) float32 fractions on `b` (outside [0, 1] where a point left the frame).

        A point moves only where the flow passes the forward-backward check (Kalal, Mikolajczyk
        and Matas 2010, "Forward-Backward Error"; Sundaram et al. 2010 for dense flow): followed
        from `a` to `b` and back, it must land within FB_MAX grid pixels of where it started.
        Elsewhere the flow is noise (film grain on a plain wall or sky, where DIS matches grain
        to different grain every frame) and the point stays where it was, instead of drifting
        a hint off its object a little every frame."""
        gh, gw = a.shape
        size = np.array([gw, gh], np.float32)
        p = np.asarray(xy, np.float32).reshape(-1, 2) * size - 0.5
        if len(p) == 0:
            return p.copy()
        fwd = self.flow(a, b) if fwd is None else fwd
        # bilinear, edges repeated
        d = cv2.remap(fwd, p[None, :, 0], p[None, :, 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]
        q = (p + d).astype(np.float32)
        bwd = self.flow(b, a)
        back = cv2.remap(bwd, q[None, :, 0], q[None, :, 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]
        trusted = np.linalg.norm(d + back, axis=1) <= FB_MAX
        return ((p + d * trusted[:, None] + 0.5) / size).astype(np.float32)

    def to_maps(self, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = flow.shape[:2]
        if (h, w) not in self._grid:
            gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._grid[(h, w)] = (gx, gy)
        gx, gy = self._grid[(h, w)]
        return gx + flow[..., 0], gy + flow[..., 1]

    def maps(self, cur: np.ndarray, prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """-> (map_x, map_y) for cv2.remap of a `prev`-grid image onto `cur`."""
        return self.to_maps(self.flow(cur, prev))


def _warp(img: np.ndarray, maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return cv2.remap(img, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def is_cut(l_cur: np.ndarray, l_prev: np.ndarray, cfg: TemporalConfig) -> bool:
    return float(np.mean(np.abs(l_cur - l_prev))) > cfg.cut_threshold


def is_cut_after_motion(l_cur: np.ndarray, l_warped: np.ndarray, cfg: TemporalConfig) -> bool:
    return float(np.mean(np.abs(l_cur - l_warped))) > cfg.cut_mismatch


def _blend(
    ab_pred: np.ndarray, l_cur: np.ndarray, ab_hist: np.ndarray, l_hist: np.ndarray, cfg: TemporalConfig
) -> np.ndarray:
    """History already warped onto the current frame; per-pixel trust from the L match."""
    d = (l_cur - l_hist) / cfg.sigma
    w = (cfg.strength * np.exp(-d * d))[..., None]
    return ab_pred + w * (ab_hist - ab_pred)


class CausalFilter:
    """Online: feed frames in order, get each frame's filtered a*b* back at once."""

    def __init__(self, cfg: TemporalConfig | None = None, memory: Memory | None = None):
        self.cfg = cfg or TemporalConfig()
        self.memory = memory  # recurring shots (streamcolor/shot_memory.py), or None
        self.flow = _Flow(self.cfg.flow_scale)
        self.prev_l: np.ndarray | None = None
        self.prev_ab: np.ndarray | None = None
        self.cuts = 0

    def __call__(self, l_lo: np.ndarray, ab_lo: Prediction) -> np.ndarray:
        """ab_lo: this frame's prediction, or a callable for frames between key frames:
        those take the motion-compensated history and run the network only at a cut."""
        cuts, first = self.cuts, self.prev_l is None or self.prev_l.shape != l_lo.shape
        if first:
            out = _recalled(self.memory, l_lo, _now(ab_lo), True)
        elif is_cut(l_lo, self.prev_l, self.cfg):
            self.cuts += 1
            out = _recalled(self.memory, l_lo, _now(ab_lo), True)
        else:
            maps = self.flow.maps(l_lo, self.prev_l)
            hist_l = _warp(self.prev_l, maps)
            if is_cut_after_motion(l_lo, hist_l, self.cfg):
                self.cuts += 1
                out = _recalled(self.memory, l_lo, _now(ab_lo), True)
            elif callable(ab_lo):
                out = _warp(self.prev_ab, maps)
            else:
                ab_lo = _recalled(self.memory, l_lo, ab_lo, False)
                out = _blend(ab_lo, l_lo, _warp(self.prev_ab, maps), hist_l, self.cfg)
        if self.memory is not None:
            self.memory.observe(l_lo, out, first or cuts != self.cuts)
        self.prev_l, self.prev_ab = l_lo, out
        return out


@dataclass
class _Slot:
    item: object
    l_lo: np.ndarray
    ab_pred: np.ndarray | None  # None between key frames
    forward: np.ndarray | None = None
    to_next: tuple[np.ndarray, np.ndarray] | None = None  # maps: this frame <- next frame
    cut_before: bool = False


class BidirectionalFilter:
    """Fixed-lag smoother: push frames in order; finished frames come out `lookahead`
    frames later (and all at the end with flush()). Holds lookahead + 1 frames."""

    def __init__(self, cfg: TemporalConfig | None = None, memory: Memory | None = None):
        self.cfg = cfg or TemporalConfig()
        self.memory = memory  # recurring shots (streamcolor/shot_memory.py), or None
        self.flow = _Flow(self.cfg.flow_scale)
        self.window: deque[_Slot] = deque()
        self.prev: _Slot | None = None
        self.cuts = 0

    def push(self, item: object, l_lo: np.ndarray, ab_lo: Prediction) -> Iterator[tuple[object, np.ndarray]]:
        """ab_lo: this frame's prediction, or a callable for frames between key frames."""
        slot = _Slot(item, l_lo, None if callable(ab_lo) else ab_lo)
        prev = self.window[-1] if self.window else self.prev
        cut = prev is None or prev.l_lo.shape != l_lo.shape
        if not cut and is_cut(l_lo, prev.l_lo, self.cfg):
            self.cuts += 1
            cut = True
        if not cut:
            flow = self.flow.flow(l_lo, prev.l_lo)
            to_prev = self.flow.to_maps(flow)
            hist_l = _warp(prev.l_lo, to_prev)
            if is_cut_after_motion(l_lo, hist_l, self.cfg):
                self.cuts += 1
                cut = True
        if cut:
            slot.ab_pred = _recalled(self.memory, l_lo, _now(ab_lo), True)
            slot.forward = slot.ab_pred
            slot.cut_before = True
        else:
            # The reverse flow approximated by the negated forward one (exact for
            # locally uniform motion; at this grid size it saves one DIS per frame,
            # 0.5 ms, for no measurable change in benchmarks/temporal_quality.py).
            prev.to_next = self.flow.to_maps(-flow)
            hist_ab = _warp(prev.forward, to_prev)
            if slot.ab_pred is None:
                slot.forward = hist_ab
            else:
                slot.ab_pred = _recalled(self.memory, l_lo, slot.ab_pred, False)
                slot.forward = _blend(slot.ab_pred, l_lo, hist_ab, hist_l, self.cfg)
        self.window.append(slot)
        if len(self.window) > self.cfg.lookahead:
            yield self._finish()

    def flush(self) -> Iterator[tuple[object, np.ndarray]]:
        while self.window:
            yield self._finish()
        self.prev = None

    def _finish(self) -> tuple[object, np.ndarray]:
        """Backward recursion from the newest frame in the window down to the oldest."""
        slots = list(self.window)
        back = slots[-1].forward if slots[-1].ab_pred is None else slots[-1].ab_pred
        for nxt, cur in zip(reversed(slots[1:]), reversed(slots[:-1])):
            if nxt.cut_before or cur.to_next is None:
                back = cur.forward if cur.ab_pred is None else cur.ab_pred
            elif cur.ab_pred is None:
                back = _warp(back, cur.to_next)
            else:
                hist_ab, hist_l = _warp(back, cur.to_next), _warp(nxt.l_lo, cur.to_next)
                back = _blend(cur.ab_pred, cur.l_lo, hist_ab, hist_l, self.cfg)
        oldest = self.window.popleft()
        self.prev = oldest
        if oldest.ab_pred is None:  # between key frames: both directions are propagation
            out = 0.5 * (oldest.forward + back)
        else:
            # Forward and backward recursions each weigh frame t+-k by (1-s) s^k and both
            # contain this frame's own prediction: remove one copy and renormalise, which is
            # the two-sided exponential smoother (weights s^|k|). Where a pixel is occluded
            # both recursions fall back to the prediction and so does this.
            s = self.cfg.strength
            out = (oldest.forward + back - (1.0 - s) * oldest.ab_pred) / (1.0 + s)
        if self.memory is not None:
            self.memory.observe(oldest.l_lo, out, oldest.cut_before)
        return oldest.item, out
