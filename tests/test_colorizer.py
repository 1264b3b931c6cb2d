"""Colour maths, edge-aware upsampling, the gamut clamp, the model card and the stages."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from streamcolor import color
from streamcolor.colorizer import UpsampleConfig, guided_upsample
from streamcolor.errors import ConfigError
from streamcolor.model import DEFAULT_MODEL, load_card
from streamcolor.pipeline import Policy, Stage, run_pipeline


def test_lab_round_trip_and_known_values():
    rgb = np.random.default_rng(0).random((500, 3)).astype(np.float32)
    np.testing.assert_allclose(color.lab_to_rgb(color.rgb_to_lab(rgb)), rgb, atol=2e-4)
    white = color.rgb_to_lab(np.ones(3, np.float32))
    np.testing.assert_allclose(white, [100, 0, 0], atol=0.02)
    red = color.rgb_to_lab(np.array([1, 0, 0], np.float32))
    np.testing.assert_allclose(red, [53.24, 80.09, 67.20], atol=0.05)  # published sRGB red


def test_gray_to_lightness_matches_lab_of_gray():
    v = np.linspace(0, 1, 11, dtype=np.float32)
    lab = color.rgb_to_lab(np.stack([v, v, v], axis=1))
    np.testing.assert_allclose(color.gray_to_lightness(v), lab[:, 0], atol=1e-3)
    np.testing.assert_allclose(lab[:, 1:], 0, atol=1e-3)
    # limited range: code 16 is black, 235 is white
    lut = color.luma_lut(full_range=False)
    assert lut[16] == pytest.approx(0, abs=1e-3) and lut[235] == pytest.approx(100, abs=1e-3)


def test_luminance_preserving_gray_keeps_lightness():
    rgb8 = (np.random.default_rng(1).random((20, 20, 3)) * 255).astype(np.uint8)
    gray8 = color.rgb8_to_gray8(rgb8)
    l_true = color.rgb_to_lab(rgb8.astype(np.float32) / 255)[..., 0]
    l_gray = color.L_FROM_GRAY8[gray8]
    assert np.abs(l_true - l_gray).max() < 0.5  # within one 8-bit step of L*


def test_guided_upsampling_stops_colour_at_luma_edges():
    """Low-res chroma of an object with a sharp edge: the guided filter puts the colour
    edge back where the full-resolution L has it; bilinear smears it over a cell."""
    import cv2

    h, w, f = 16, 16, 8
    edge = w * f // 2 + 3  # not on a low-res cell boundary
    guide_hi = np.full((h * f, w * f), 0.3, np.float32)
    guide_hi[:, edge:] = 0.8
    ab_hi = np.zeros((h * f, w * f, 2), np.float32)
    ab_hi[:, edge:, 0] = 40.0  # the bright object is red, the dark background gray
    guide_lo = guide_hi.reshape(h, f, w, f).mean(axis=(1, 3))
    ab_lo = ab_hi.reshape(h, f, w, f, 2).mean(axis=(1, 3))
    guided = guided_upsample(ab_lo, guide_lo, guide_hi, UpsampleConfig())
    bilinear = cv2.resize(ab_lo, (w * f, h * f), interpolation=cv2.INTER_LINEAR)
    band = slice(edge - 12, edge + 12)
    err_guided = np.abs(guided[:, band] - ab_hi[:, band]).mean()
    err_bilinear = np.abs(bilinear[:, band] - ab_hi[:, band]).mean()
    assert err_guided < 0.3 * err_bilinear
    assert np.abs(guided[:, edge - 6 : edge, 0]).mean() < 2.0  # no red on the dark side of the edge


def test_chroma_planes_stay_in_gamut(colorizer):
    rng = np.random.default_rng(2)
    y8 = rng.integers(16, 236, (48, 64)).astype(np.uint8)
    y8[:, :8] = 16  # black and white columns: any chroma there would clip
    y8[:, -8:] = 235
    ab_lo = rng.normal(0, 60, (12, 16, 2)).astype(np.float32)
    u, v = colorizer.chroma_planes(y8, ab_lo, (24, 32), full_range=False, matrix="bt709")
    y = (y8.astype(np.float32) - 16) / 219  # each luma sample with its block's chroma, as decoders do
    cb = np.repeat(np.repeat((u.astype(np.float32) - 128) / 224, 2, 0), 2, 1)
    cr = np.repeat(np.repeat((v.astype(np.float32) - 128) / 224, 2, 0), 2, 1)
    r = y + 1.5748 * cr
    b = y + 1.8556 * cb
    g = (y - 0.2126 * r - 0.0722 * b) / 0.7152
    for ch in (r, g, b):
        assert ch.min() > -0.03 and ch.max() < 1.03  # decodes without clipping (8-bit rounding aside)
    assert np.abs(cb).max() > 0.05  # and the colour is not simply removed


def test_model_card_input_size_and_errors(tmp_path):
    card = load_card(DEFAULT_MODEL)
    h, w = card.input_size(480, 854)
    assert h == card.short_side and w % card.multiple == 0
    assert abs(w / h - 854 / 480) <= card.multiple / (2 * h) + 1e-9  # nearest multiple
    assert card.input_size(7, 7) == (card.multiple, card.multiple) or min(card.input_size(7, 7)) >= card.multiple
    bad = tmp_path / "m.onnx"
    bad.write_bytes(b"x")
    with pytest.raises(ConfigError, match="card not found"):
        load_card(bad)
    bad.with_suffix(".json").write_text(json.dumps({"input": {}, "output": {}}))
    with pytest.raises(ConfigError, match="not valid: missing key 'short_side'"):
        load_card(bad)
    bad.with_suffix(".json").write_text(json.dumps({"input": {"short_side": "big"}, "output": {}}))
    with pytest.raises(ConfigError, match="not valid: invalid literal for int"):
        load_card(bad)


def test_stage_keeps_order_and_carries_errors():
    def slow_square(items):
        for i in items:
            time.sleep(0.001 * (i % 3))
            yield i * i

    first = Stage("a", lambda _: iter(range(50)), None, maxsize=4)
    second = Stage("b", slow_square, first, maxsize=4)
    assert list(second) == [i * i for i in range(50)]

    def boom(items):
        for i in items:
            if i == 5:
                raise ValueError("bad frame 5")
            yield i

    failing = Stage("c", boom, Stage("d", lambda _: iter(range(10)), None, maxsize=2), maxsize=2)
    with pytest.raises(ValueError, match="bad frame 5"):
        list(failing)


def test_stage_close_unblocks_a_full_queue():
    stage = Stage("endless", lambda _: iter(range(10**9)), None, maxsize=2)
    time.sleep(0.05)
    stage.close()
    assert not any(t.name == "endless" and t.is_alive() for t in threading.enumerate())


def test_run_pipeline_keeps_order_and_raises_a_stage_error_in_the_caller():
    written: list[int] = []
    ended = run_pipeline(lambda: iter(range(40)), lambda items: (i * i for i in items), written.append)
    assert ended and written == [i * i for i in range(40)]

    def boom(items):
        for i in items:
            if i == 3:
                raise ValueError("bad frame 3")
            yield i

    with pytest.raises(ValueError, match="bad frame 3"):
        run_pipeline(lambda: iter(range(10)), boom, lambda item: None)
    assert not any(t.name in ("decode", "colorize") and t.is_alive() for t in threading.enumerate())


def test_live_policy_drops_the_oldest_wakes_when_idle_and_stops_from_outside():
    stop, idle, dropped, written = threading.Event(), [], [], []

    def camera():  # faster than the colorize stage: a live source never waits for us
        yield from range(300)
        while not stop.is_set():  # then the input goes quiet until the run is stopped
            time.sleep(0.01)

    def slow(items):
        for i in items:
            time.sleep(0.01)
            yield i

    def on_idle():
        idle.append(1)
        stop.set()

    policy = Policy(
        maxsize=1, drop_oldest=True, idle_s=0.2, on_idle=on_idle, on_drop=lambda: dropped.append(1), stop=stop
    )
    assert run_pipeline(camera, slow, written.append, policy)  # ended: the stop came from outside
    assert dropped and idle and written == sorted(written) and len(written) + len(dropped) == 300

    cancelled = Policy(maxsize=1, idle_s=0.05, cancelled=lambda: True)
    assert not run_pipeline(lambda: iter(range(10**9)), lambda items: items, written.append, cancelled)
