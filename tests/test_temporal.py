"""Temporal filters on synthetic scenes whose true colour is known."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streamcolor.temporal import BidirectionalFilter, CausalFilter, TemporalConfig

H, W = 48, 88


def texture(seed: int, scale: float = 1.0) -> np.ndarray:
    """(H*2, W*2 + 64) float32 L*/100 texture, smooth enough for optical flow."""
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.random((H * 2, W * 2 + 64)).astype(np.float32), (0, 0), 3)
    t = (t - t.min()) / (t.max() - t.min())
    return (0.2 + 0.6 * t) * scale


def moving_scene(n: int, seed: int = 0, speed: int = 1) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A textured panorama panning `speed` grid pixels per frame; true a*b* follows it."""
    tex = texture(seed)
    big_l = cv2.resize(tex, (tex.shape[1] // 2, tex.shape[0] // 2), interpolation=cv2.INTER_AREA)
    truth_ab = np.stack([60 * (big_l - 0.5), np.full_like(big_l, 20.0)], axis=2)  # colour tied to content
    ls, abs_ = [], []
    for t in range(n):
        x = t * speed
        ls.append(np.ascontiguousarray(big_l[:, x : x + W]))
        abs_.append(np.ascontiguousarray(truth_ab[:, x : x + W]))
    return ls, abs_


def flicker(abs_: list[np.ndarray], amount: float, seed: int = 1) -> list[np.ndarray]:
    """Per-frame predictions: the truth plus a global colour jump each frame (the wall
    that turns blue, gray, beige), plus a little noise."""
    rng = np.random.default_rng(seed)
    return [
        ab + rng.normal(0, amount, 2).astype(np.float32) + rng.normal(0, 1, ab.shape).astype(np.float32) for ab in abs_
    ]


def run_causal(ls, preds, cfg=None):
    f = CausalFilter(cfg)
    return [f(lv, p) for lv, p in zip(ls, preds)]


def run_bidirectional(ls, preds, cfg=None):
    f = BidirectionalFilter(cfg)
    out = {}
    for i, (lv, p) in enumerate(zip(ls, preds)):
        assert len(f.window) <= f.cfg.lookahead + 1  # bounded memory
        out.update(dict(f.push(i, lv, p)))
    out.update(dict(f.flush()))
    return [out[i] for i in range(len(ls))]


@pytest.mark.parametrize("run", [run_causal, run_bidirectional])
def test_flicker_is_removed_and_colour_kept(run):
    ls, truth = moving_scene(40)
    preds = flicker(truth, amount=12.0)
    outs = run(ls, preds)
    inner = slice(4, -4)  # away from the panning edge

    def jitter(seq):
        """Frame-to-frame change of the mean colour: what a viewer sees as flicker."""
        means = np.array([s[:, inner].mean(axis=(0, 1)) for s in seq])
        return float(np.abs(np.diff(means, axis=0)).mean())

    def error(seq):
        return float(np.mean([np.abs(s[:, inner] - t[:, inner]).mean() for s, t in zip(seq[10:], truth[10:])]))

    assert jitter(outs) < 0.4 * jitter(preds)
    assert error(outs) < 0.6 * error(preds)  # closer to the true colour, not just smoother


def test_scene_cut_resets_the_state():
    l1, ab1 = moving_scene(10, seed=0)
    l2 = [np.clip(0.9 - lv * 0.8, 0, 1) for lv in moving_scene(10, seed=5)[0]]  # another shot, other light
    ab_a = [np.full((H, W, 2), (40.0, 0.0), np.float32)] * 10
    ab_b = [np.full((H, W, 2), (-40.0, 10.0), np.float32)] * 10
    f = CausalFilter()
    outs = [f(lv, ab) for lv, ab in zip(l1 + l2, ab_a + ab_b)]
    assert f.cuts == 1
    np.testing.assert_array_equal(outs[10], ab_b[0])  # nothing carried across the cut
    assert np.abs(outs[9] - ab_a[0]).max() < 1e-3
    bi = run_bidirectional(l1 + l2, ab_a + ab_b)
    np.testing.assert_allclose(bi[9], ab_a[0], atol=1e-3)  # no colour from after the cut either
    np.testing.assert_allclose(bi[10], ab_b[0], atol=1e-3)


def test_causal_filter_never_reads_the_future():
    ls, truth = moving_scene(20)
    preds = flicker(truth, 10.0)
    other = [p.copy() for p in preds]
    for t in range(12, 20):
        other[t] = other[t] + 50.0  # a different future
    a, b = run_causal(ls, preds), run_causal(ls, other)
    for t in range(12):
        np.testing.assert_array_equal(a[t], b[t])


def test_new_content_trusts_the_current_frame():
    """Where the warped history does not match the current L (occlusion, a new object),
    the current prediction wins."""
    ls, truth = moving_scene(8)
    preds = [t.copy() for t in truth]
    ls[-1] = ls[-1].copy()
    ls[-1][10:30, 30:60] = 0.95  # a bright object appears
    preds[-1][10:30, 30:60] = (-50.0, 50.0)
    out = run_causal(ls, preds, TemporalConfig())[-1]
    assert np.abs(out[14:26, 36:54] - (-50.0, 50.0)).mean() < 3.0


def test_a_point_follows_motion_and_stays_put_on_grain():
    """_Flow.carry: a point on a panning texture follows it; a point on a plain area under
    fresh grain every frame (film grain, the studio's flaky drift) stays within a grid pixel
    instead of random-walking away (the forward-backward check)."""
    from streamcolor.temporal import _Flow

    flow = _Flow(TemporalConfig().flow_scale)
    ls, _ = moving_scene(21, speed=1)  # the content moves 1 grid pixel left a frame
    start = np.float32([[0.5, 0.5]])
    xy = start
    for a, b in zip(ls, ls[1:]):
        xy = flow.carry(a, b, xy)
    moved = (start - xy)[0] * np.array([W, H])
    assert moved[0] == pytest.approx(20, abs=2) and abs(moved[1]) < 1.5

    rng = np.random.default_rng(3)
    plain = np.full((H, W), 0.5, np.float32)
    plain[:, : W // 4] = 0.2  # one edge in the picture, far from the point
    grain = [plain + rng.normal(0, 0.05, (H, W)).astype(np.float32) for _ in range(21)]
    xy = start
    for a, b in zip(grain, grain[1:]):
        xy = flow.carry(a, b, xy)
    drift = np.abs(xy - start)[0] * np.array([W, H])
    assert drift.max() < 1.0
