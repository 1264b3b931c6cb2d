"""Hints and reference photos through time: carried along the optical flow, stopped at cuts,
pinned hints found again in later shots, reference colours matched onto each frame.

Per frame, before the network runs, `HintTracker.planes(...)` returns the (3, h, w) hint
planes for the network input (hints/planes.py); after it runs, `observe(...)` hands back
the frame's encoder features (the hint model's second output, which do not depend on the
hints). Flow is DIS on L* at twice the network output's grid, as the temporal filters
compute it (streamcolor/temporal.py); cuts are the temporal filters' test.

Matching (pinned hints and reference photos) is the cosine similarity of the pretrained
MobileNetV2's stride-16 features (unit vectors per cell): a pinned hint is re-applied in a
new shot at the best-matching cell when the similarity is at least PIN_THRESHOLD; a frame's
cell takes the colour of its best-matching reference cell when the similarity is at least
REF_THRESHOLD. Both thresholds were chosen on validation photos (benchmarks/hints_quality.py
thresholds; the figures are beside the constants).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

from streamcolor import color
from streamcolor.colorizer import Colorizer
from streamcolor.geodesic import LOCALITY_FLOOR, LOCALITY_LIMIT, geodesic_distance, reach_guide, reach_share
from streamcolor.hints.file import UNTIL_CUT, UNTIL_PIN, Hint, HintFile
from streamcolor.hints.planes import HintPoint, hint_planes, place_hints
from streamcolor.hints.reference import (
    REF_THRESHOLD,
    ReferenceColours,
    load_reference,
    match_reference,
    reference_points,
)
from streamcolor.temporal import TemporalConfig, _Flow, _warp, is_cut, is_cut_after_motion

# cosine similarity of stride-16 features needed to re-apply a pinned hint in a new shot: on
# 200 validation photos and a changed view of each (benchmarks/hints_quality.py thresholds),
# 76.6 % of pins found at the right cell, 9.0 % at a wrong one, 0.7 % matched in another photo
PIN_THRESHOLD = 0.70


_BLAS = None


def _one_blas_thread(fn):
    """Run fn with NumPy's BLAS (OpenBLAS) on one thread. The matching and spreading here are
    small matrix products done once a frame beside the decoder, the network and the encoder:
    OpenBLAS's spinning worker threads took the cores they need (480p with a reference ran
    2.5x slower than without; one thread: 1.12x, benchmarks/hints_quality.py speed). The
    limit is set for the call and restored after (threadpoolctl, cached controller: ~10 us)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        global _BLAS
        if _BLAS is None:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        with _BLAS.limit(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return run


@dataclass
class Track:
    """A hint on the current frame: where it is now and the a*b* it gives."""

    hint: Hint
    x: float  # fractions of the frame
    y: float
    ab: np.ndarray | None = None  # set on the frame it starts (its L* there)
    radius: float = 0.01  # fraction of the short side
    descriptor: np.ndarray | None = None  # pinned: the features where it was given
    lost: bool = False  # pinned, between shots: waiting to be found again
    visible: bool = True
    stroke: np.ndarray | None = None  # a stroke: its vertices (N, 2) fractions, the first at (x, y)

    def point(self) -> HintPoint:
        return HintPoint(self.x, self.y, self.ab, self.radius, self.stroke)

    def move_to(self, x: float, y: float) -> None:
        """Put the hint at (x, y), a stroke shifted with its first vertex."""
        if self.stroke is not None:
            self.stroke = self.stroke + np.array([x - self.x, y - self.y], np.float32)
        self.x, self.y = x, y


def best_cell(feats: np.ndarray, descriptor: np.ndarray) -> tuple[float, float, float]:
    """-> (similarity, x, y fractions) of the cell of feats (gh, gw, C) closest to descriptor."""
    sim = feats @ descriptor
    i = int(np.argmax(sim))
    gh, gw = sim.shape
    y, x = divmod(i, gw)
    return float(sim[y, x]), (x + 0.5) / gw, (y + 0.5) / gh


def _bilinear(img: np.ndarray, px: float, py: float) -> np.ndarray:
    """img (h, w, C) at pixel (px, py) (centres at integers), clamped to the edges -> (C,)."""
    gh, gw = img.shape[:2]
    fx, fy = float(np.clip(px, 0, gw - 1)), float(np.clip(py, 0, gh - 1))
    x0, y0 = int(fx), int(fy)
    x1, y1 = min(x0 + 1, gw - 1), min(y0 + 1, gh - 1)
    ax, ay = fx - x0, fy - y0
    return (
        img[y0, x0] * (1 - ax) * (1 - ay)
        + img[y0, x1] * ax * (1 - ay)
        + img[y1, x0] * (1 - ax) * ay
        + img[y1, x1] * ax * ay
    )


def descriptor_at(feats: np.ndarray, x: float, y: float) -> np.ndarray:
    """Bilinear features (C,) at (x, y) fractions, as a unit vector."""
    gh, gw, _ = feats.shape
    d = _bilinear(feats, x * gw - 0.5, y * gh - 0.5)
    return d / max(float(np.linalg.norm(d)), 1e-6)


# Spreading what the network left: the spatial scale (share of the short side), the L* scale
# (L*/100) and the feature scale at 10 hints (it narrows as 1/sqrt(hints)); chosen on
# validation photos (benchmarks/hints_quality.py photos, README "Hints, measured").
SPREAD_SPACE, SPREAD_L, SPREAD_FEATURES_AT_10 = 0.6, 0.15, 0.6


@functools.lru_cache(maxsize=8)
def _pixel_centres(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(h*w, 1) row and column of every pixel of an (h, w) grid, float32; made once per size."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy.reshape(-1, 1), xx.reshape(-1, 1)


def propagate_corrections(ab: np.ndarray, l_lo: np.ndarray, feats: np.ndarray, points: list[HintPoint]) -> np.ndarray:
    """The network spreads hints as it learned to; pixels like a hinted one are pulled further
    towards the hint's a*b*: ab' = ab + sum_i w_i (ab_i - ab) / max(1, sum_i w_i), weight
    w_i = exp(-d^2 / 2 (SPREAD_SPACE * short side)^2 - (1 - cos(f, f_i)) / tau - dL^2 / 2 SPREAD_L^2)
    with f the encoder's features (bilinear from stride 16), tau = SPREAD_FEATURES_AT_10 *
    sqrt(10 / hints) within [0.15, 1] (the affinity idea of Levin et al. 2004, "Colorization
    using Optimization", on learned features). Pulling towards the colour, rather than adding
    the hint's correction, leaves pixels that were right already alone (+0.5 dB at 10 hints on
    validation photos, and no cyan fringe where a gray hint corrects a pink guess).
    With fewer than ten hints each weight is also multiplied by the hint's reach (streamcolor/
    geodesic.py: exp(-geodesic distance across edges of L*), blended towards 1 as hints are
    added): one hint colours its object, not whatever looks like it elsewhere (issue 24).
    ab: (h, w, 2) network a*b*, l_lo: (h, w) L*/100, feats: (gh, gw, C) unit features.
    -> (h, w, 2) float32; at each hint the a*b* is (close to) the hint's."""
    if not points:
        return ab
    # one hint given twice (the same place and colour, a user clicking again) is one hint: its
    # weights would otherwise add up, and count towards the palette's ten
    seen: dict[tuple, HintPoint] = {}
    for p in points:
        key = (round(p.x, 4), round(p.y, 4), *np.round(np.asarray(p.ab, float), 2).tolist(),
               None if p.stroke is None else np.round(np.asarray(p.stroke), 4).tobytes())  # fmt: skip
        seen.setdefault(key, p)
    points = list(seen.values())
    h, w = ab.shape[:2]
    f = cv2.resize(feats, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h * w, -1)
    f /= np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-6)
    # a stroke pulls from places along its whole length (HintPoint.samples); tau counts hints
    places = [p.samples() for p in points]
    at = np.concatenate(places)
    px, py = at[:, 0] * w - 0.5, at[:, 1] * h - 0.5
    ix, iy = np.clip(np.rint(px), 0, w - 1).astype(int), np.clip(np.rint(py), 0, h - 1).astype(int)
    target = np.concatenate([np.repeat(np.asarray(p.ab, np.float32)[None], len(s), 0) for p, s in zip(points, places)])
    tau = float(np.clip(SPREAD_FEATURES_AT_10 * np.sqrt(10.0 / len(points)), 0.15, 1.0))
    yy, xx = _pixel_centres(h, w)
    d2 = ((xx - px) ** 2 + (yy - py) ** 2) / (SPREAD_SPACE * min(h, w)) ** 2
    fs = f @ f[iy * w + ix].T  # (h*w, N) cosine similarity
    dl = (l_lo.reshape(-1, 1) - l_lo[iy, ix]) / SPREAD_L
    wgt = np.exp(-0.5 * d2 - (1.0 - fs) / tau - 0.5 * dl * dl)
    # edge-aware: a hint reaches its own object, as the hint model's locality plane says
    # (geodesic.hint_locality): beyond an edge of L* from the hint its weight falls
    g = reach_share(len(points))
    if g < 1.0:
        geo = geodesic_distance(
            reach_guide(l_lo), np.stack([iy, ix], axis=1), limit=LOCALITY_LIMIT, floor=LOCALITY_FLOOR
        )
        wgt = wgt * ((1.0 - g) * np.exp(-geo.reshape(len(at), h * w).T) + g)
    total = wgt.sum(axis=1, keepdims=True)
    flat = ab.reshape(-1, 2)
    out = flat + (wgt @ target - total * flat) / np.maximum(1.0, total)
    return out.reshape(h, w, 2).astype(np.float32)


def reference_correction(
    ab: np.ndarray, l_lo: np.ndarray, feats: np.ndarray, refs: list[ReferenceColours], threshold: float
) -> np.ndarray:
    """Reference colours applied after the network: each frame cell whose best reference match
    (current features) reaches `threshold` wants the reference cell's a*b*; every cell is
    pulled towards those as propagate_corrections pulls towards the user's hints (features,
    L*, distance; tau 0.15), on the cell grid against the network's a*b* averaged per cell;
    that change is upsampled bilinearly to ab's grid and added. -> (h, w, 2) float32."""
    gh, gw, _ = feats.shape
    want, mask = np.zeros((gh, gw, 2), np.float32), np.zeros((gh, gw), bool)
    for r in refs:
        s, ref_ab, ok = match_reference(feats, r, threshold)
        want[ok], mask[ok] = ref_ab[ok], True
    if not mask.any():
        return ab
    h, w = ab.shape[:2]
    pred = cv2.resize(ab, (gw, gh), interpolation=cv2.INTER_AREA).reshape(-1, 2)
    l_cell = cv2.resize(l_lo, (gw, gh), interpolation=cv2.INTER_AREA).reshape(-1)
    f = feats.reshape(gh * gw, -1)
    src = np.flatnonzero(mask)
    target = want.reshape(-1, 2)[src]
    yy, xx = np.divmod(np.arange(gh * gw), gw)
    d2 = ((xx[:, None] - xx[src]) ** 2 + (yy[:, None] - yy[src]) ** 2) / (SPREAD_SPACE * min(gh, gw)) ** 2
    dl = (l_cell[:, None] - l_cell[src]) / SPREAD_L
    wgt = np.exp(-0.5 * d2 - (1.0 - f @ f[src].T) / 0.15 - 0.5 * dl * dl)
    total = wgt.sum(axis=1, keepdims=True)
    field_ = ((wgt @ target - total * pred) / np.maximum(1.0, total)).reshape(gh, gw, 2)
    return (ab + cv2.resize(field_.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)).astype(np.float32)


@dataclass
class FrameState:
    """What HintTracker.refine needs of one frame after planes(): the user's hint points on it,
    the references that cover it, pins given on it (track, x, y), pins lost, a cut before it."""

    points: list[HintPoint] = field(default_factory=list)
    refs: list[ReferenceColours] = field(default_factory=list)
    new_pins: list = field(default_factory=list)
    lost: list = field(default_factory=list)
    cut: bool = False


@dataclass
class HintStats:
    """What the hints did over a run (for the summary line and the benchmarks)."""

    applied_frames: int = 0  # frames with a user hint or a reference on them
    started: int = 0  # user hints that started
    pins_found: int = 0
    pins_missed: int = 0
    reference_cells: int = 0  # reference cells given to the network as hints, all frames
    cuts: int = 0

    def line(self, hints: int, pending: int, references: int = 0) -> str:
        """One line for the run's summary."""
        parts = [f"hints: {self.started} of {hints} started, on {self.applied_frames} frame(s)"]
        if references:
            parts.append(f"{references} reference photo(s), {self.reference_cells} matched cell(s) given as hints")
        if pending:
            parts.append(f"{pending} never reached (after the input's end?)")
        if self.pins_found or self.pins_missed:
            parts.append(f"pinned ones found again {self.pins_found}x, not found {self.pins_missed}x")
        return "; ".join(parts)


class HintTracker:
    """Feeds a hint model: hint planes for each frame, in order.

    width, height: the frame size (pixels: hint positions and radii); full_range: the luma
    codes' range; cfg: the temporal filters' flow and cut settings; warn: gets one line per
    hint left out (a place outside the frame).
    """

    def __init__(
        self,
        hints: HintFile,
        colorizer: Colorizer,
        width: int,
        height: int,
        full_range: bool = False,
        cfg: TemporalConfig | None = None,
        pin_threshold: float = PIN_THRESHOLD,
        ref_threshold: float = REF_THRESHOLD,
        warn=lambda msg: None,
    ):
        self.colorizer = colorizer
        self.warn = warn
        self.total_hints = len(hints.hints)
        self.width, self.height = width, height
        self.full_range = full_range
        self.cfg = cfg or TemporalConfig()
        self.flow = _Flow(self.cfg.flow_scale)
        self.pending = list(hints.hints)
        self.references = [load_reference(r, colorizer) for r in hints.references]
        self.pin_threshold, self.ref_threshold = pin_threshold, ref_threshold
        self.tracks: list[Track] = []
        self.prev_l: np.ndarray | None = None
        self.prev_feats: np.ndarray | None = None
        self.stats = HintStats()
        self._lock = threading.Lock()
        self._added: list[Hint] = []
        self.early: dict[int, list[tuple[Hint, float, float]]] = {}
        self.state = FrameState()

    def carry_back(self, early: dict[int, list[tuple[Hint, float, float]]]) -> None:
        """Positions of hints on frames before they start (backward_positions): frame index ->
        [(hint, x, y)]; those frames get the hint too (bidirectional mode)."""
        self.early = early

    def add(self, hint: Hint) -> None:
        """A hint given while running (the live preview): it starts on the next frame at or
        after its time. Safe to call from another thread than the one calling planes()."""
        with self._lock:
            self._added.append(hint)

    def _lightness(self, y8: np.ndarray, x: float, y: float) -> float:
        h, w = y8.shape
        code = y8[min(int(y * h), h - 1), min(int(x * w), w - 1)]
        return float(color.luma_lut(self.full_range)[code])

    def _lightness_under(self, hint: Hint, y8: np.ndarray) -> float:
        """L* under a point, or the median L* under a stroke's vertices (its colour is placed
        at that lightness, ab_at_lightness)."""
        v = hint.vertices(self.width, self.height)
        if v is None:
            return self._lightness(y8, *hint.position(self.width, self.height))
        return float(np.median([self._lightness(y8, float(x), float(y)) for x, y in np.clip(v, 0.0, 1.0)]))

    def _start(self, hint: Hint, y8: np.ndarray) -> Track | None:
        x, y = hint.position(self.width, self.height)
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            self.warn(
                f"hint at line {hint.line}: {hint.x:g}, {hint.y:g} is outside the "
                f"{self.width}x{self.height} frame; left out"
            )
            return None
        p = place_hints([hint], np.array([[self._lightness_under(hint, y8)]], np.float32), self.width, self.height)[0]
        self.stats.started += 1
        return Track(hint, p.x, p.y, p.ab, p.radius, stroke=p.stroke)

    def _move(self, l_lo: np.ndarray) -> bool:
        """Carry the tracks from the previous frame to this one; -> whether this frame is a cut."""
        prev = self.prev_l
        if prev is None or prev.shape != l_lo.shape:
            return prev is not None
        if is_cut(l_lo, prev, self.cfg):
            return True
        fwd = self.flow.flow(prev, l_lo)  # for each pixel of prev: where it went in this frame
        if is_cut_after_motion(prev, _warp(l_lo, self.flow.to_maps(fwd)), self.cfg):
            return True
        moving = [t for t in self.tracks if not t.lost]
        if moving:  # the flow at every track's point, or every vertex of a stroke, at once
            xy = [np.array([[t.x, t.y]], np.float32) if t.stroke is None else t.stroke for t in moving]
            moved = self.flow.carry(prev, l_lo, np.concatenate(xy), fwd)
            k = 0
            for t, v in zip(moving, xy):
                now = moved[k : k + len(v)]
                k += len(v)
                t.x, t.y = float(now[0, 0]), float(now[0, 1])
                if t.stroke is not None:
                    t.stroke = now.copy()
                # a stroke is on while any vertex is in the picture (drawing clips the rest)
                t.visible = bool(np.any((now >= 0.0).all(axis=1) & (now <= 1.0).all(axis=1)))
        return False

    @_one_blas_thread
    def planes(
        self, index: int, seconds: float, y8: np.ndarray, l_lo: np.ndarray, shape: tuple[int, int]
    ) -> np.ndarray | None:
        """The hint planes for frame `index` at `seconds` (y8: its luma codes, l_lo: L*/100 at
        the network output grid, shape: the network input's (h, w)); None when no hint
        applies. Frames must come in order, every one of them; `self.state` then holds what
        refine() needs for this frame. No network pass happens here: pinned hints are looked
        for, and new pins described, in refine() with the frame's own features."""
        with self._lock:
            if self._added:
                self.pending, self._added = self.pending + self._added, []
        cut = self._move(l_lo)
        if cut:
            self.stats.cuts += 1
            kept = []
            for t in self.tracks:
                if t.hint.until == UNTIL_PIN:
                    t.lost = True
                    kept.append(t)
                elif t.hint.until != UNTIL_CUT:  # a time: kept where it was in the frame
                    kept.append(t)
            self.tracks = kept
            self.prev_feats = None
        self.tracks = [t for t in self.tracks if not t.hint.ended(seconds) and (t.visible or t.hint.until == UNTIL_PIN)]
        ready = [h for h in self.pending if h.starts_by(index, seconds)]
        new_pins = []
        if ready:
            self.pending = [h for h in self.pending if not h.starts_by(index, seconds)]
            for h in ready:
                if h.ended(seconds):
                    continue
                t = self._start(h, y8)
                if t is None:
                    continue
                self.tracks.append(t)
                if h.until == UNTIL_PIN:
                    new_pins.append((t, t.x, t.y))
        refs = [r for r in self.references if r.ref.covers(seconds)]
        points = [t.point() for t in self.tracks if not t.lost and t.visible]
        for hint, ex, ey in self.early.pop(index, []):  # carried back from where it starts
            under = self._lightness(y8, ex, ey) if hint.stroke is None else self._lightness_under(hint, y8)
            lightness = np.array([[under]], np.float32)
            p = place_hints([hint], lightness, self.width, self.height)[0]
            # a stroke's hint comes with its vertices on this frame (backward_positions)
            points.append(HintPoint(ex, ey, p.ab, p.radius, p.stroke))
        ref_points = []
        if self.prev_feats is not None:  # the previous frame's features place the network's hints
            for r in refs:
                ref_points += reference_points(self.prev_feats, r, self.ref_threshold)
        self.stats.reference_cells += len(ref_points)
        self.state = FrameState(points, refs, new_pins, [t for t in self.tracks if t.lost], cut)
        self.prev_l = l_lo
        if points or refs:
            self.stats.applied_frames += 1
        if not points and not ref_points:
            return None
        # the user's hints are drawn last: they win over a reference where both fall
        return hint_planes(ref_points + points, shape)

    @_one_blas_thread
    def refine(
        self, ab: np.ndarray, l_lo: np.ndarray, feats: np.ndarray, state: FrameState | None = None
    ) -> np.ndarray:
        """The network's a*b* for a frame (state: its planes() state; default the last frame's),
        with its features (gh, gw, C): pins given on this frame are described; pins lost at a
        cut are looked for (and, when found, applied from this frame on); then the reference
        colours (reference_correction) and what the network left of the user's hints
        (propagate_corrections) are applied."""
        st = state or self.state
        for t, x, y in st.new_pins:
            t.descriptor = descriptor_at(feats, x, y)
        points = list(st.points)
        for t in st.lost:
            if not t.lost or t.descriptor is None:
                continue
            sim, fx, fy = best_cell(feats, t.descriptor)
            if sim >= self.pin_threshold:  # a stroke is described and found by its first vertex
                t.move_to(fx, fy)
                t.lost, t.visible = False, True
                gh, gw = l_lo.shape
                lightness = 100.0 * float(l_lo[min(int(fy * gh), gh - 1), min(int(fx * gw), gw - 1)])
                t.ab = place_hints([t.hint], np.array([[lightness]], np.float32), 1, 1)[0].ab
                points.append(t.point())
                self.stats.pins_found += 1
            elif st.cut:
                self.stats.pins_missed += 1
        if st.refs:
            ab = reference_correction(ab, l_lo, feats, st.refs, self.ref_threshold)
        return propagate_corrections(ab, l_lo, feats, points)

    def observe(self, feats: np.ndarray) -> None:
        """The features (gh, gw, C) of the latest frame predicted (Colorizer.predict_features):
        they place the next frames' reference hints."""
        self.prev_feats = feats


@dataclass
class TrackedFrame:
    """One frame's inputs for a hint model (TrackedFrames.prepare)."""

    y8: np.ndarray  # (H, W) uint8 luma
    l_lo: np.ndarray  # (h, w) float32 L*/100 guide on the network's output grid
    planes: np.ndarray | None  # (3, h', w') hint planes at the network input size, or None
    state: FrameState  # what refine() needs of this frame
    x: np.ndarray | None = None  # the network input; made when the frame is predicted


class TrackedFrames:
    """pipeline.FrameSequencer's strategy for a hint model (the plain one is pipeline.NetworkFrames):
    every frame goes through the tracker, in order (it follows the hints along the flow); key
    frames are predicted in one batch with their hint planes and refined (HintTracker.refine)."""

    def __init__(self, tracker: HintTracker, colorizer: Colorizer, full_range: bool):
        self.tracker = tracker
        self.colorizer = colorizer
        self.full_range = full_range

    def prepare(self, y8: np.ndarray, index: int, seconds: float, key: bool) -> TrackedFrame:
        c = self.colorizer
        l_lo = c.guide_lo(y8, c.output_grid(y8.shape), self.full_range)
        planes = self.tracker.planes(index, seconds, y8, l_lo, c.card.input_size(*y8.shape))
        x = c.network_input(y8, self.full_range) if key else None
        return TrackedFrame(y8, l_lo, planes, self.tracker.state, x)

    def is_key(self, frame: TrackedFrame, key: bool) -> bool:
        # a frame where a pinned hint starts is predicted whatever the key-frame interval:
        # the pin's features come from that frame (refine), or it could never be found again
        return key or bool(frame.state.new_pins)

    def predict(self, frames: list[TrackedFrame]) -> list[np.ndarray]:
        for f in frames:
            if f.x is None:
                f.x = self.colorizer.network_input(f.y8, self.full_range)
        abs_, feats = self.colorizer.predict_features([f.x for f in frames], [f.planes for f in frames])
        out = [self.tracker.refine(ab, f.l_lo, fe, f.state) for ab, fe, f in zip(abs_, feats, frames)]
        self.tracker.observe(feats[-1])
        return out

    def guide(self, frame: TrackedFrame) -> np.ndarray | None:
        return frame.l_lo
