"""Recurring shots keep their colours (issue 24, item 4): a small memory of the shots seen.

In a dialogue scene the camera returns to the same set-up again and again (A, B, A', B',
A''...). Each return used to be colorized afresh, and a coat or a face could change colour
between appearances. The temporal filters (streamcolor/temporal.py) reset at every cut, on
purpose: no colour crosses a cut. This memory is the one exception, and only where the new
shot shows what an earlier one showed.

It works on what every model gives (no hint model, no encoder features): at the network's
output grid, per frame with a prediction,

    l_lo:  (h, w) float32 L*/100 (the temporal filters' guide)
    ab_lo: (h, w, 2) float32 a*b* (CIE units), this frame's prediction

- Remembering: each shot is one entry holding two snapshots, its first and its latest frame
  as they leave the temporal filter (L* and the final a*b*: what the viewer saw). At most
  `shots` entries, least recently used dropped first, so memory is flat however long the
  film is (about 35 kB a snapshot at the default 40x72 grid, whatever the frame size).
- Recognising, at a cut: a thumbnail signature (zero-mean, unit-norm L* at 16x12) orders the
  candidates; the `candidates` most similar are registered to the new frame with DIS optical
  flow (the medium preset, finer than the filters' ultrafast: the camera may have moved on for
  a while; at the tuning edits' 1.5 s gaps it took the change of A's colours from 0.65x to
  0.50x of today's), and one matches only when motion explains the new frame
  (mean |L* - warped L*| at most `max_mismatch`, the filters' own cut threshold, and at most
  `max_relative_mismatch` of the frame's contrast; at least `min_matched` of the cells within
  `sigma`). This is the filters' cut test read the other way: "the same shot, moved".
- Recalling: the matched snapshot's a*b*, warped onto the new frame, is a target with a
  per-cell weight w = strength * confidence * exp(-(dL / sigma)^2); each frame with a
  prediction becomes ab + w * (target - ab) (the filters' blend) and enters the temporal
  filter as that frame's prediction, smoothed like any other. Through the rest of the shot the
  target and weights are carried along the shot's own motion (flow from the last frame they
  were placed on), each cell's weight the least trust along its way (it falls where L*
  disagrees: occlusion, new content), as a pinned hint is carried; once the mean weight is
  below _MIN_PULL the shot is let go.
- An unmatched shot is left alone: its prediction is returned as the same array, bit for bit.

The recalled shot continues the entry it matched (its latest snapshot becomes the return's),
so A'' finds the colours A' kept from A. Cost: nothing per frame in an unmatched shot but
keeping two references; at a cut up to `candidates` DIS flows (medium) at the grid size; one
DIS flow (ultrafast) per frame with a prediction in a recalled shot.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from streamcolor.temporal import _Flow, _warp

# thumbnail of the signature, (width, height): coarse enough to ignore motion of a few cells
_THUMB = (16, 12)
# below this standard deviation of the thumbnail (L*/100) a frame is flat (black, fog, a card):
# it carries too little structure to be recognised and is never matched
_MIN_CONTRAST = 0.03
# a match is fully trusted up to this share of max_mismatch (ShotMemoryConfig)
_FULL_TRUST = 0.6
# a recalled shot whose mean pull has fallen below this has moved on from what was remembered
_MIN_PULL = 0.02


@dataclass(frozen=True)
class ShotMemoryConfig:
    """shots: entries kept (LRU).
    candidate_similarity: thumbnail cosine below which a snapshot is not even tried (a loose
    pre-filter: a pan of a fifth of the frame already takes a fine texture's cosine to 0.5;
    the flow decides). candidates: snapshots registered by flow at a cut, most similar first.
    max_mismatch: mean |L* - warped L*|/100 for a match: the filters' cut_mismatch, so a
    return matches only where, had it followed directly, the filter would have seen no cut.
    max_relative_mismatch: ... and at most this share of the frame's own contrast (mean
    |L* - mean L*|): a dark or foggy shot differs little from anything in absolute terms.
    min_matched: share of cells within sigma after registration for a match.
    On the tuning clips (benchmarks/recurring_shots.py) returns measured mean mismatch 0.01 to
    0.08 (a handheld camera 1.5 s later), matched share 0.59 to 0.95, relative 0.04 to 0.33;
    unrelated shots at least 0.15, at most 0.20 and at least 0.62.
    strength, sigma: the pull, as TemporalConfig's (weight where fully trusted; L*/100
    mismatch where trust falls to exp(-1)). flow_scale: as TemporalConfig's."""

    shots: int = 32
    candidate_similarity: float = 0.3
    candidates: int = 3
    max_mismatch: float = 0.06
    max_relative_mismatch: float = 0.35
    min_matched: float = 0.55
    strength: float = 0.9
    sigma: float = 0.04
    flow_scale: int = 2


@dataclass
class _Snapshot:
    l_lo: np.ndarray  # (h, w) float32 L*/100
    ab_lo: np.ndarray  # (h, w, 2) float32 a*b*, the frame's final colour (the filter's output)
    _signature: np.ndarray | None = None
    _signed: bool = False

    def signature(self) -> np.ndarray | None:
        if not self._signed:
            self._signature, self._signed = signature(self.l_lo), True
        return self._signature


@dataclass
class _Shot:
    number: int
    first: _Snapshot | None = None  # None until its first frame has left the filter
    latest: _Snapshot | None = None

    def snapshots(self) -> list[_Snapshot]:
        return [s for s in (self.first, self.latest) if s is not None]


@dataclass
class ShotMemoryStats:
    shots: int = 0  # shots seen
    matched: int = 0  # of them, recognised as an earlier one
    frames_recalled: int = 0  # predictions pulled toward a remembered shot

    def line(self) -> str:
        """One line for the run's summary."""
        if self.matched == 0:
            return f"shot memory: {self.shots} shot(s), none recurring"
        return (
            f"shot memory: {self.matched} of {self.shots} shots recognised as an earlier one; "
            "their colours carried over"
        )


def signature(l_lo: np.ndarray) -> np.ndarray | None:
    """(h, w) float32 L*/100 -> (192,) float32 unit vector of the zero-mean thumbnail, or None
    when the frame is flat (nothing to recognise it by)."""
    t = cv2.resize(l_lo, _THUMB, interpolation=cv2.INTER_AREA).ravel()
    t = t - t.mean()
    sd = float(np.sqrt(np.mean(t * t)))
    if sd < _MIN_CONTRAST:
        return None
    return (t / (sd * np.sqrt(t.size))).astype(np.float32)


@dataclass
class _Match:
    """A shot being recalled: the remembered colours carried along the shot's own motion.
    l_lo: (h, w) the last frame they were placed on; target: (h, w, 2) a*b* there; weight:
    (h, w) the pull there, in [0, strength]."""

    shot: _Shot
    l_lo: np.ndarray
    target: np.ndarray
    weight: np.ndarray


@dataclass
class ShotMemory:
    """The temporal filters' memory (streamcolor/temporal.py, Memory): `recall` sees every
    frame that has a prediction, in order, and returns the prediction to use; `observe` sees
    every frame's final a*b* as it leaves the filter (the bidirectional filter's lag behind).
    One per run (not thread-safe)."""

    cfg: ShotMemoryConfig = field(default_factory=ShotMemoryConfig)
    stats: ShotMemoryStats = field(default_factory=ShotMemoryStats)

    def __post_init__(self) -> None:
        self.flow = _Flow(self.cfg.flow_scale)
        # registration at a cut spans the time the camera was away: a finer flow, once a cut
        self.fine = _Flow(self.cfg.flow_scale)
        self.fine.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self.shots: OrderedDict[int, _Shot] = OrderedDict()
        self.match: _Match | None = None  # what the shot now being predicted recalls
        self.started: deque[_Shot] = deque()  # shots begun on the prediction side, not yet on the output side
        self.leaving: _Shot | None = None  # the shot whose frames now leave the filter

    def recall(self, l_lo: np.ndarray, ab_lo: np.ndarray, new_shot: bool) -> np.ndarray:
        """l_lo: (h, w) float32 L*/100; ab_lo: (h, w, 2) float32 a*b*, this frame's prediction;
        new_shot: the first frame of a shot (the temporal filter saw a cut, or the first frame).
        -> the a*b* to give the temporal filter: ab_lo itself (the same array) unless the shot
        matched an earlier one."""
        if new_shot:
            self._start_shot(l_lo)
        if self.match is None:
            return ab_lo
        pulled = self._pull(l_lo, ab_lo, self.match)
        if pulled is None:  # the shot has moved on from what was remembered
            self.match = None
            return ab_lo
        self.stats.frames_recalled += 1
        return pulled

    def observe(self, l_lo: np.ndarray, ab_lo: np.ndarray, new_shot: bool) -> None:
        """A frame's final a*b* (the same shapes as recall's), in order; new_shot as recall's.
        The arrays are kept, not copied: the filters never write into an output again."""
        if new_shot and self.started:
            self.leaving = self.started.popleft()
        if self.leaving is None:
            return
        snap = _Snapshot(l_lo, ab_lo)
        if self.leaving.first is None:
            self.leaving.first = snap
        self.leaving.latest = snap

    # -- at a cut --------------------------------------------------------------------------
    def _start_shot(self, l_lo: np.ndarray) -> None:
        self.stats.shots += 1
        self.match = self._find(l_lo)
        if self.match is not None:  # the return continues the shot it matched
            self.stats.matched += 1
            shot = self.match.shot
            self.shots.move_to_end(shot.number)
        else:
            shot = _Shot(self.stats.shots)
            self.shots[shot.number] = shot
            while len(self.shots) > self.cfg.shots:
                self.shots.popitem(last=False)
        self.started.append(shot)

    def _find(self, l_lo: np.ndarray) -> _Match | None:
        sig = signature(l_lo)
        if sig is None or not self.shots:
            return None
        scored = []
        for shot in self.shots.values():
            for snap in shot.snapshots():
                other = snap.signature()
                if other is None or snap.l_lo.shape != l_lo.shape:
                    continue
                sim = float(sig @ other)
                if sim >= self.cfg.candidate_similarity:
                    scored.append((sim, shot.number, shot, snap))
        scored.sort(key=lambda s: (-s[0], -s[1]))
        best, best_conf = None, 0.0
        for _, _, shot, snap in scored[: self.cfg.candidates]:
            ab, d, conf = self._registration(l_lo, snap)
            if conf > best_conf:
                z = d / self.cfg.sigma
                best, best_conf = _Match(shot, l_lo, ab, self.cfg.strength * conf * np.exp(-z * z)), conf
        return best

    # -- registration ----------------------------------------------------------------------
    def _registration(self, l_lo: np.ndarray, snap: _Snapshot) -> tuple[np.ndarray, np.ndarray, float]:
        """The snapshot warped onto this frame: -> (its a*b* warped, the per-cell L*/100
        difference, the match confidence in [0, 1]; 0 when it does not match)."""
        maps = self.fine.maps(l_lo, snap.l_lo)
        d = l_lo - _warp(snap.l_lo, maps)
        mismatch = float(np.mean(np.abs(d)))
        matched = float(np.mean(np.abs(d) < self.cfg.sigma))
        contrast = float(np.mean(np.abs(l_lo - l_lo.mean())))
        limit = min(self.cfg.max_mismatch, self.cfg.max_relative_mismatch * contrast)
        if mismatch > limit or matched < self.cfg.min_matched:
            return snap.ab_lo, d, 0.0
        # full trust up to FULL_TRUST of the allowed mismatch, falling to 0 at the limit
        conf = min(1.0, (1.0 - mismatch / limit) / (1.0 - _FULL_TRUST))
        return _warp(snap.ab_lo, maps), d, conf

    def _pull(self, l_lo: np.ndarray, ab_lo: np.ndarray, match: _Match) -> np.ndarray | None:
        """Carry the match's colours and weights from the frame they were last placed on to
        this one (flow, trust falling where L* disagrees: occlusion, new content), and pull."""
        if match.l_lo is not l_lo:
            if match.l_lo.shape != l_lo.shape:
                return None
            maps = self.flow.maps(l_lo, match.l_lo)
            z = (l_lo - _warp(match.l_lo, maps)) / self.cfg.sigma
            # the least trust along the way, not its product: small interpolation mismatches
            # every frame must not wear the pull away, an occlusion must end it
            match.weight = np.minimum(_warp(match.weight, maps), self.cfg.strength * np.exp(-z * z))
            match.target = _warp(match.target, maps)
            match.l_lo = l_lo
        if float(match.weight.mean()) < _MIN_PULL:
            return None
        return (ab_lo + match.weight[..., None] * (match.target - ab_lo)).astype(np.float32)
