"""User hints and reference photos (issue 16): the hints file, hints as network input, hints
carried through time, the hint model in every engine and through the CLI."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from streamcolor.api import ColorizeConfig, make_colorizer
from streamcolor.errors import ConfigError
from streamcolor.hints.file import Hint, HintFile, dump_hints, parse_color, parse_hints
from streamcolor.hints.planes import AB_NORM, HintPoint, ab_at_lightness, hint_planes
from streamcolor.hints.tracker import HintTracker, best_cell, descriptor_at
from streamcolor.model import HINTS_MODEL

GOOD = """
# a comment
[[hint]]
time = "00:01:02.5"
at = [0.25, 0.75]
color = "FireBrick"
radius = 6

[[hint]]
frame = 12
pixel = [40, 8]
colour = "#00f"
until = "pin"

[[hint]]
at = [0.5, 0.5]
color = "#336699"
until = 3.5
"""


@pytest.fixture(scope="module")
def hint_colorizer():
    return make_colorizer(ColorizeConfig(model=HINTS_MODEL, backend="onnx", threads=2))


def test_hints_file_reads_every_field_and_round_trips(tmp_path):
    hf = parse_hints(GOOD, tmp_path / "h.toml")
    a, b, c = hf.hints
    assert (a.time, a.frame, a.x, a.y, a.rgb, a.radius, a.until, a.pixels) == (
        62.5,
        None,
        0.25,
        0.75,
        (178, 34, 34),
        6.0,
        "cut",
        False,
    )
    assert (b.time, b.frame, b.x, b.y, b.rgb, b.until, b.pixels) == (None, 12, 40.0, 8.0, (0, 0, 255), "pin", True)
    assert (c.time, c.until) == (0.0, 3.5)
    assert a.line == 3 and b.line == 9
    again = parse_hints(dump_hints(hf), tmp_path / "h.toml")
    strip = lambda h: h.__class__(**{**h.__dict__, "line": 0})  # noqa: E731
    assert [strip(h) for h in again.hints] == [strip(h) for h in hf.hints]


@pytest.mark.parametrize(
    "text, line, words",
    [
        ('[[hint]]\nat = [0.5, 0.5]\ncolor = "redd"\n', 3, "'color' must be '#rrggbb' or a CSS colour name"),
        ('[[hint]]\nat = [1.5, 0.5]\ncolor = "red"\n', 2, "'at' must be fractions in [0, 1]"),
        ('[[hint]]\ncolor = "red"\n', 1, "'at' or 'pixel' is needed"),
        ('[[hint]]\ntime = 1\nframe = 3\nat = [0.5, 0.5]\ncolor = "red"\n', 3, "'frame' and 'time' both given"),
        ('[[hint]]\nat = [0.5, 0.5]\ncolor = "red"\nsize = 3\n', 4, "'size' is not a hint field"),
        ('[[hint]]\ntime = 5\nat = [0.5, 0.5]\ncolor = "red"\nuntil = 2\n', 5, "ends at 2 s, not after"),
        ('[[hint]]\nat = [0.5, 0.5]\ncolor = "red"\nuntil = "forever"\n', 4, "'until' must be 'cut', 'pin' or a time"),
        ('[[hint]]\nat = [0.5, 0.5]\ncolor = "red"\nradius = -1\n', 4, "'radius' must be pixels"),
        ('[[hint]]\nat = [0.5, 0.5]\ncolor = "red"\n\n[[hint]]\nat = [0.1, 0.1]\ncolor = 7\n', 7, "hint 2, 'color'"),
        ('[[reference]]\npath = "nope.jpg"\n', 2, "'path' names no file"),
        ("[[hint]]\nat = [0.5, 0.5]\ncolor = red\n", 3, "not valid TOML: Invalid value"),
        ("[hints]\nx = 1\n", 1, "unknown entry 'hints'"),
        ('[hint]\nat = [0.5, 0.5]\ncolor = "red"\n', 1, "'hint' must be [[hint]] tables"),
        ("\nhint = 5\n", 2, "'hint' must be [[hint]] tables"),
        ('[[hint]]\nat = [0.5, 0.5]\npixel = [3, 4]\ncolor = "red"\n', 3, "'pixel' and 'at' both given"),
        ('[[hint]]\nat = [0.5, 0.5]\ncolor = "red"\ncolour = "blue"\n', 4, "'colour' and 'color' both given"),
        ('[[hint]]\nstroke = [[0.5, 0.5]]\ncolor = "red"\n', 2, "'stroke' must be a list of at least 2 points"),
        ('[[hint]]\ncolor = "red"\nstroke = [[0.5, 0.5], [1.2, 0.5]]\n', 3, "'stroke' must be fractions in [0, 1]"),
        ('[[hint]]\nstroke = [[0.5, 0.5], [0.6]]\ncolor = "red"\n', 2, "'stroke' must be [x, y]"),
        ('[[hint]]\nat = [0.5, 0.5]\nstroke = [[0.1, 0.1], [0.2, 0.2]]\ncolor = "red"\n', 3, "'stroke' and 'at' both"),
        ('[[hint]]\npixel_stroke = [[5, 5], [-1, 2]]\ncolor = "red"\n', 2, "'pixel_stroke' must be pixels >= 0"),
    ],
)
def test_bad_hints_files_name_the_line_and_field_in_one_line(tmp_path, text, line, words):
    with pytest.raises(ConfigError) as e:
        parse_hints(text, tmp_path / "h.toml")
    msg = str(e.value)
    assert "\n" not in msg and words in msg, msg
    assert f"line {line}" in msg, msg


def test_colours_by_name_and_hex():
    assert parse_color("#B22222") == parse_color("firebrick") == (178, 34, 34)
    assert parse_color("#0f0") == (0, 255, 0)
    for bad in ("", "#12345", "blurple", 3):
        with pytest.raises(ValueError):
            parse_color(bad)


def test_hint_colour_is_placed_at_the_pixels_lightness_inside_the_gamut():
    rgb = np.array([[255, 0, 0], [255, 255, 0], [128, 128, 128], [0, 0, 139]])
    for lightness in (5.0, 30.0, 53.0, 80.0, 97.0):
        ab = ab_at_lightness(rgb, np.full(len(rgb), lightness))
        lab = np.dstack([np.full((1, len(rgb)), lightness), ab[None, :, 0], ab[None, :, 1]]).astype(np.float32)
        back = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
        assert back.min() >= -2e-3 and back.max() <= 1 + 2e-3  # inside sRGB
        assert np.hypot(*ab[2]) < 1.0  # gray stays gray
        assert ab[0, 0] > 0 and ab[1, 1] > 0 and ab[3, 1] < 0  # red, yellow, blue hue kept
    # where it fits, the colour's own a*b* is kept
    red_l = cv2.cvtColor(np.array([[[1.0, 0, 0]]], np.float32), cv2.COLOR_RGB2Lab)[0, 0]
    np.testing.assert_allclose(ab_at_lightness(rgb[:1], [red_l[0]])[0], red_l[1:], atol=0.5)


def test_hint_planes_hold_ab_over_110_and_the_mask_in_the_disc():
    p = HintPoint(x=0.25, y=0.5, ab=np.array([55.0, -22.0]), radius=2.0 / 32)
    planes = hint_planes([p], (32, 64))
    ys, xs = np.nonzero(planes[2])
    # OpenCV's fixed-point disc: within a pixel of the centre (ties at half pixels lean one way)
    assert abs(xs.mean() - (0.25 * 64 - 0.5)) < 1.0 and abs(ys.mean() - (0.5 * 32 - 0.5)) < 1.0
    assert 9 <= len(xs) <= 16  # a disc of radius 2
    np.testing.assert_allclose(planes[0][planes[2] > 0], 55.0 / AB_NORM)
    np.testing.assert_allclose(planes[1][planes[2] > 0], -22.0 / AB_NORM)
    assert planes[:2][:, planes[2] == 0].max() == 0
    tiny = hint_planes([HintPoint(0.5, 0.5, np.array([1.0, 1.0]), 0.0)], (32, 64))
    assert tiny[2].sum() == 1  # at least one pixel
    assert hint_planes([HintPoint(1.5, 0.5, np.array([1.0, 1.0]), 0.1)], (32, 64)).sum() == 0  # outside


STROKES = """
[[hint]]
stroke = [[0.1, 0.2], [0.5, 0.25], [0.9, 0.2]]
color = "navy"

[[hint]]
frame = 3
pixel_stroke = [[4, 5], [40, 50]]
color = "#ffcc00"
until = "pin"
"""


def test_strokes_read_and_round_trip(tmp_path):
    a, b = parse_hints(STROKES, tmp_path / "h.toml").hints
    assert a.stroke == ((0.1, 0.2), (0.5, 0.25), (0.9, 0.2)) and (a.x, a.y, a.pixels) == (0.1, 0.2, False)
    assert b.stroke == ((4.0, 5.0), (40.0, 50.0)) and b.pixels and b.until == "pin"
    np.testing.assert_allclose(b.vertices(80, 100), [[4.5 / 80, 5.5 / 100], [40.5 / 80, 50.5 / 100]])
    text = dump_hints(HintFile((a, b)))
    assert "stroke = [" in text and "pixel_stroke = [" in text
    strip = lambda h: h.__class__(**{**h.__dict__, "line": 0})  # noqa: E731
    assert [strip(h) for h in parse_hints(text).hints] == [strip(a), strip(b)]


def test_a_stroke_is_drawn_along_its_whole_line_as_wide_as_a_point():
    p = HintPoint(0.1, 0.5, np.array([40.0, 10.0]), 2.0 / 32, np.array([[0.1, 0.5], [0.9, 0.5]], np.float32))
    planes = hint_planes([p], (32, 64))
    assert planes[2, 15:17, 8:57].min() == 1.0  # the whole line, not just its ends
    assert 3 <= planes[2, :, 32].sum() <= 6  # about the disc's width across it
    np.testing.assert_allclose(planes[0][planes[2] > 0], 40.0 / AB_NORM)


def test_a_stroke_colours_the_picture_along_its_whole_length(hint_colorizer):
    from streamcolor.hints.photo import colorize_with_hints

    y8 = _moving_square(1, size=(96, 160))[0]
    y8[20:36, 10:150] = 170  # a long bar: the stroke runs along it
    hint = parse_hints('[[hint]]\nstroke = [[0.1, 0.29], [0.9, 0.29]]\ncolor = "#2040c0"\n').hints[0]
    auto = hint_colorizer.predict_features([hint_colorizer.network_input(y8, True)])[0][0]
    lab = hint_colorizer._lab_at(y8, colorize_with_hints(y8, hint_colorizer, HintFile((hint,))), y8.shape, True)
    lab0 = hint_colorizer._lab_at(y8, auto, y8.shape, True)
    want = ab_at_lightness(np.array([hint.rgb]), [float(lab[28, 80, 0])])[0]
    for x in (20, 50, 80, 110, 140):  # ends and middle alike
        assert np.linalg.norm(lab[28, x, 1:] - want) < 12, (x, lab[28, x, 1:], want)
        assert np.linalg.norm(lab[28, x, 1:] - lab0[28, x, 1:]) > 15  # changed from the automatic colour


def test_a_stroke_follows_its_object_along_the_flow(hint_colorizer):
    frames = _moving_square(10)
    stroke = ((26 / 160, 56 / 120), (44 / 160, 74 / 120))  # across the square, corner to corner
    hint = Hint(x=stroke[0][0], y=stroke[0][1], rgb=(200, 0, 0), stroke=stroke)
    tr, _ = _track(hint_colorizer, frames, HintFile((hint,)))
    (t,) = tr.tracks
    np.testing.assert_allclose(t.stroke * [160, 120], [[26 + 27, 56], [44 + 27, 74]], atol=4)
    assert (t.x, t.y) == (t.stroke[0, 0], t.stroke[0, 1])


def _moving_square(n: int, size=(120, 160), step: int = 3, cut_at: int | None = None) -> list[np.ndarray]:
    """Gray frames: a textured background and a bright square moving right `step` px a frame;
    from cut_at on, a different scene (its negative, shifted) with the square further on."""
    h, w = size
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.integers(40, 120, (h, w)).astype(np.uint8), (0, 0), 3)
    bg2 = cv2.GaussianBlur(rng.integers(60, 160, (h, w)).astype(np.uint8), (0, 0), 2)
    frames = []
    for i in range(n):
        x = 20 + step * i
        if cut_at is not None and i >= cut_at:
            f = bg2.copy()
            f[10:40, x : x + 30] = 220
        else:
            f = bg.copy()
            f[50:80, x : x + 30] = 220
        frames.append(f)
    return frames


def _track(colorizer, frames, hints: HintFile, seconds=lambda i: i / 25.0) -> tuple[HintTracker, list]:
    h, w = frames[0].shape
    tr = HintTracker(hints, colorizer, w, h, full_range=True)
    placed = []
    for i, y8 in enumerate(frames):
        x = colorizer.network_input(y8, True)
        lo = colorizer.guide_lo(y8, colorizer.output_grid(y8.shape), True)
        planes = tr.planes(i, seconds(i), y8, lo, x.shape[1:])
        ab, feats = colorizer.predict_features([x], [planes])
        tr.refine(ab[0], lo, feats[0])
        tr.observe(feats[0])
        placed.append([(t.x, t.y) for t in tr.tracks if not t.lost and t.visible])
    return tr, placed


def test_a_hint_follows_its_object_along_the_flow_and_ends_at_the_cut(hint_colorizer):
    frames = _moving_square(16, cut_at=12)
    hint = Hint(x=35 / 160, y=65 / 120, rgb=(200, 0, 0))  # the square's centre on frame 0
    tr, placed = _track(hint_colorizer, frames, HintFile((hint,)))
    for i in range(12):
        ((x, y),) = placed[i]
        assert abs(x * 160 - (35 + 3 * i)) < 4 and abs(y * 120 - 65) < 4, (i, x * 160, y * 120)
    assert all(p == [] for p in placed[12:])  # "until cut": gone after the cut
    assert tr.stats.cuts == 1


def test_hints_start_at_their_time_or_frame_and_end_at_their_time(hint_colorizer):
    frames = _moving_square(10)
    hints = (
        Hint(0.2, 0.2, (0, 0, 255), time=0.12),  # frame 3 at 25 fps
        Hint(0.8, 0.8, (0, 255, 0), time=None, frame=5, until=0.28),  # frames 5, 6
    )
    _, placed = _track(hint_colorizer, frames, HintFile(hints))
    assert [len(p) for p in placed] == [0, 0, 0, 1, 1, 2, 2, 1, 1, 1]


def test_a_pinned_hint_is_found_again_in_a_later_shot(hint_colorizer):
    frames = _moving_square(14, cut_at=7)
    # pinned on the bright square; after the cut the square is back, elsewhere
    hint = Hint(x=35 / 160, y=65 / 120, rgb=(0, 0, 255), until="pin")
    tr, placed = _track(hint_colorizer, frames, HintFile((hint,)))
    assert tr.stats.cuts == 1 and tr.stats.pins_found == 1
    ((x, y),) = placed[7]
    # the square after the cut: rows 10-40, columns 20+3*7 .. +30
    assert 41 - 16 <= x * 160 <= 71 + 16 and y * 120 <= 40 + 16, (x * 160, y * 120)


def test_feature_matching_finds_the_cell_it_came_from():
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(6, 9, 32)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=2, keepdims=True)
    d = descriptor_at(feats, (4 + 0.5) / 9, (2 + 0.5) / 6)
    sim, x, y = best_cell(feats, d)
    assert sim == pytest.approx(1.0, abs=1e-5) and (x, y) == ((4 + 0.5) / 9, (2 + 0.5) / 6)


def test_hint_model_runs_the_same_in_the_torch_engine(hint_colorizer):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from streamcolor.engines.torch_engine import TorchEngine

    eng = TorchEngine(hint_colorizer.card, threads=2, precision="fp32", device="cpu", compile=False)
    x = (np.random.default_rng(0).random((2, 1, 96, 128), np.float32) * 2 - 1).astype(np.float32)
    one = hint_planes([HintPoint(0.3, 0.4, np.array([40.0, 20.0]), 0.05)], (96, 128))
    planes = np.stack([hint_colorizer._with_locality(one, xi) for xi in x])  # as the Colorizer feeds it
    ab_o, f_o = hint_colorizer.engine.run_features(x, planes)
    ab_t, f_t = eng.run_features(x, planes)
    np.testing.assert_allclose(ab_t, ab_o, atol=2e-2)
    np.testing.assert_allclose(f_t, f_o, atol=1e-3)
    assert torch.is_tensor(eng.module.forward_all(torch.from_numpy(x))[0])


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamcolor", *args], capture_output=True, text=True, timeout=120)


def test_cli_refuses_hints_with_a_model_that_takes_none_and_bad_files_in_one_line(tmp_path):
    from streamcolor.model import DEFAULT_MODEL

    img = tmp_path / "in.png"
    cv2.imwrite(str(img), np.full((40, 60), 128, np.uint8))
    good = tmp_path / "h.toml"
    good.write_text('[[hint]]\nat = [0.5, 0.5]\ncolor = "red"\n')
    r = _cli("image", str(img), str(tmp_path / "o.png"), "--hints", str(good), "--model", str(DEFAULT_MODEL))
    assert r.returncode != 0 and "takes no hints" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.toml"
    bad.write_text('[[hint]]\nat = [0.5, 0.5]\ncolor = "reddish"\n')
    r = _cli("image", str(img), str(tmp_path / "o.png"), "--hints", str(bad))
    assert r.returncode == 2 and "line 3" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = _cli("image", str(img), str(tmp_path / "o.png"), "--reference", str(tmp_path / "none.jpg"))
    assert r.returncode == 2 and "reference photo not found" in r.stderr
    assert not (tmp_path / "o.png").exists()


def test_bidirectional_mode_carries_a_hint_back_to_its_shots_first_frame(hint_colorizer):
    from types import SimpleNamespace

    from streamcolor.hints.backward import backward_positions

    frames = _moving_square(14, cut_at=3)  # shot 2 is frames 3..13; the square moves 3 px a frame
    hint = Hint(x=(35 + 3 * 9) / 160, y=25 / 120, rgb=(200, 0, 0), time=None, frame=9)
    items = [SimpleNamespace(y8=f, index=i, pts=i) for i, f in enumerate(frames)]
    early = backward_positions(iter(items), lambda f: f.pts / 25.0, HintFile((hint,)), hint_colorizer, True)
    assert sorted(early) == [3, 4, 5, 6, 7, 8]  # back to the cut, not across it
    for i in range(3, 9):
        ((_, x, y),) = early[i]
        assert abs(x * 160 - (35 + 3 * i)) < 4 and abs(y * 120 - 25) < 4, (i, x * 160, y * 120)
    # the tracker applies them on those frames
    tr = HintTracker(HintFile((hint,)), hint_colorizer, 160, 120, True)
    tr.carry_back(early)
    got = []
    for i, y8 in enumerate(frames):
        x = hint_colorizer.network_input(y8, True)
        lo = hint_colorizer.guide_lo(y8, hint_colorizer.output_grid(y8.shape), True)
        got.append(tr.planes(i, i / 25.0, y8, lo, x.shape[1:]) is not None)
        tr.observe(hint_colorizer.predict_features([x])[1][0])
    assert got == [False] * 3 + [True] * 11


def test_a_stroke_is_carried_back_vertex_by_vertex_and_a_pinned_one_found_again_whole(hint_colorizer):
    from types import SimpleNamespace

    from streamcolor.hints.backward import backward_positions

    frames = _moving_square(14, cut_at=3)  # shot 2: frames 3..13, the square at rows 10-40
    start = ((26 + 27) / 160, 14 / 120), ((44 + 27) / 160, 36 / 120)  # across the square on frame 9
    hint = Hint(x=start[0][0], y=start[0][1], rgb=(200, 0, 0), time=None, frame=9, stroke=start)
    items = [SimpleNamespace(y8=f, index=i, pts=i) for i, f in enumerate(frames)]
    early = backward_positions(iter(items), lambda f: f.pts / 25.0, HintFile((hint,)), hint_colorizer, True)
    assert sorted(early) == [3, 4, 5, 6, 7, 8]
    ((there, x, y),) = early[4]
    assert (there.x, there.y) == (x, y) and not there.pixels
    np.testing.assert_allclose(np.array(there.stroke) * [160, 120], [[26 + 12, 14], [44 + 12, 36]], atol=4)

    frames = _moving_square(14, cut_at=7)
    stroke = ((28 / 160, 58 / 120), (42 / 160, 72 / 120))  # on the square, which comes back after the cut
    pin = Hint(x=stroke[0][0], y=stroke[0][1], rgb=(0, 0, 255), until="pin", stroke=stroke)
    tr, _ = _track(hint_colorizer, frames[:8], HintFile((pin,)))
    assert tr.stats.pins_found == 1
    (t,) = tr.tracks
    # moved whole: its shape as the flow left it before the cut (within a pixel or so)
    np.testing.assert_allclose((t.stroke[1] - t.stroke[0]) * [160, 120], [14, 14], atol=2)
    assert (t.x, t.y) == tuple(t.stroke[0])


def test_what_the_network_left_of_a_hint_spreads_over_its_region_not_across():
    from streamcolor.hints.tracker import propagate_corrections

    h, w = 24, 32
    ab = np.zeros((h, w, 2), np.float32)
    ab[..., 1] = 5.0  # the network's guess: a little yellow everywhere
    l_lo = np.where(np.arange(w)[None, :] < 16, 0.3, 0.7).astype(np.float32) * np.ones((h, 1), np.float32)
    feats = np.zeros((6, 8, 4), np.float32)
    feats[:, :4, 0] = 1.0  # left region
    feats[:, 4:, 1] = 1.0  # right region
    out = propagate_corrections(ab, l_lo, feats, [HintPoint(0.25, 0.5, np.array([40.0, 5.0]), 0.02)])
    assert abs(out[12, 8, 0] - 40.0) < 1.0  # at the hint: the hint's colour
    assert out[:, :12, 0].mean() > 30.0  # its region follows
    assert out[:, 20:, 0].mean() < 2.0  # the other region (other features, other L*) does not
    np.testing.assert_allclose(out[..., 1], 5.0, atol=1e-4)  # b* was right already: unchanged
    assert propagate_corrections(ab, l_lo, feats, []) is ab


def test_a_pin_given_just_before_a_cut_inside_one_batch_is_found_again(hint_colorizer):
    """A pin's features come from the frame it is given on, even when a cut follows in the
    same batch of frames (found by a new-user trial: this crashed)."""
    from streamcolor.pipeline import FrameSequencer

    frames = _moving_square(14, cut_at=7)
    hint = Hint(x=(35 + 3 * 6) / 160, y=65 / 120, rgb=(0, 0, 255), time=None, frame=6, until="pin")
    for batch, interval in ((4, 1), (4, 2), (1, 1)):
        tr = HintTracker(HintFile((hint,)), hint_colorizer, 160, 120, True)
        seq = FrameSequencer(hint_colorizer, True, "causal", interval, batch, tracker=tr, seconds_of=lambda i: i / 25)
        out = []
        for i, f in enumerate(frames):
            out += seq.push(i, f)
        out += seq.flush()
        assert [o[0] for o in out] == list(range(14))
        assert tr.stats.cuts == 1 and tr.stats.pins_found >= 1, (batch, interval, tr.stats)


def test_hints_outside_the_frame_or_after_the_end_are_reported(tmp_path, hint_colorizer):
    from media import make_video

    from streamcolor.api import colorize_video

    src = make_video(tmp_path / "in.mp4", width=96, height=64, frames=10, audio=False)
    hf = HintFile(
        (
            Hint(500.0, 10.0, (255, 0, 0), pixels=True, line=3),  # beyond the 96-pixel width
            Hint(0.5, 0.5, (0, 0, 255), time=100.0, line=9),  # after the end
            Hint(0.5, 0.5, (0, 255, 0), line=14),
        )
    )
    said = []
    s = colorize_video(src, tmp_path / "out.mp4", ColorizeConfig(model=HINTS_MODEL, hints=hf), warn=said.append)
    assert s.frames == 10
    assert any("line 3" in m and "outside the 96x64 frame" in m for m in said), said
    assert any("1 hint(s) never started" in m and "line 9" in m for m in said), said
    assert s.hints.startswith("hints: 1 of 3 started, on 10 frame(s)"), s.hints


def test_references_without_colour_too_small_or_not_photos_are_refused_in_one_line(tmp_path, hint_colorizer):
    from streamcolor.hints.file import Reference
    from streamcolor.hints.reference import load_reference

    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.full((8, 8, 3), (0, 0, 255), np.uint8))
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    cases = {gray: "has no colour", tiny: "is 8x8", text: "not an image", tmp_path: "is a folder"}
    for path, words in cases.items():
        with pytest.raises(ConfigError) as e:
            load_reference(Reference(path), hint_colorizer)
        assert words in str(e.value) and "\n" not in str(e.value)


def test_the_shipped_hint_model_without_hints_is_the_shipped_automatic_model_exactly(hint_colorizer, colorizer):
    """The hint model is the automatic student plus a gated branch trained alone: without hints
    its a*b* must be the default model's, bit for bit (issue 16: automatic quality kept)."""
    rng = np.random.default_rng(0)
    for shape in ((2, 1, 160, 288), (1, 1, 192, 160)):
        x = (rng.random(shape, np.float32) * 2 - 1).astype(np.float32)
        np.testing.assert_array_equal(hint_colorizer.engine.run(x), colorizer.engine.run(x))
    assert hint_colorizer.card.raw["hints"]["design"].startswith("gated")


def test_a_pin_starting_between_key_frames_is_described_and_looked_for(hint_colorizer):
    """With key frames every 2nd frame, a pin given on an odd frame still gets its features
    (found by a new-user trial: in the default mode pins were never looked for)."""
    from streamcolor.pipeline import FrameSequencer

    frames = _moving_square(14, cut_at=7)
    hint = Hint(x=(35 + 3 * 3) / 160, y=65 / 120, rgb=(0, 0, 255), time=None, frame=3, until="pin")
    tr = HintTracker(HintFile((hint,)), hint_colorizer, 160, 120, True)
    seq = FrameSequencer(hint_colorizer, True, "bidirectional", 2, 4, tracker=tr, seconds_of=lambda i: i / 25)
    for i, f in enumerate(frames):
        seq.push(i, f)
    seq.flush()
    assert tr.stats.cuts == 1 and tr.stats.pins_found + tr.stats.pins_missed >= 1, tr.stats


def test_the_spreading_stops_at_an_edge_between_look_alike_regions():
    """Two regions of the same L* and the same features, parted by a dark line (a coat's
    outline against a wall of the same gray): the spreading after the network stays on the
    hint's side (the geodesic term, streamcolor/geodesic.py); without an edge it would not."""
    from streamcolor.hints.tracker import propagate_corrections

    h, w = 24, 48
    ab = np.zeros((h, w, 2), np.float32)
    l_lo = np.full((h, w), 0.5, np.float32)
    l_lo[:, 23:25] = 0.1  # the outline
    feats = np.zeros((6, 12, 4), np.float32)
    feats[..., 0] = 1.0  # one look everywhere: the features cannot tell the sides apart
    hint = [HintPoint(0.25, 0.5, np.array([40.0, 0.0]), 0.02)]
    out = propagate_corrections(ab, l_lo, feats, hint)
    near, far = out[:, 4:20, 0].mean(), out[:, 28:44, 0].mean()
    assert near > 20.0 and far < 0.2 * near
    plain = propagate_corrections(ab, np.full((h, w), 0.5, np.float32), feats, hint)
    assert plain[:, 28:44, 0].mean() > 0.25 * plain[:, 4:20, 0].mean()  # no edge: it spreads (falling with distance)


def test_geodesic_distance_goes_around_an_edge_not_across():
    from streamcolor.geodesic import geodesic_distance

    guide = np.zeros((20, 20, 1), np.float32)
    guide[:15, 10, 0] = 5.0  # a wall with a gap at the bottom
    d = geodesic_distance(guide, np.array([[2, 2]]), step=0.1)[0]
    assert d[2, 2] == 0.0
    # the other side of the wall: reached through the gap (about 2 x 13 + 8 steps), not across (5)
    assert 2.5 < d[2, 17] < 4.5
    assert d[2, 7] == pytest.approx(0.5, abs=1e-5)  # five steps on the flat
    with pytest.raises(ValueError, match="outside"):
        geodesic_distance(guide, np.array([[20, 0]]))


def test_hint_locality_stays_on_the_hinted_side_of_an_edge_and_opens_with_ten_hints():
    from streamcolor.geodesic import hint_locality

    lightness = np.full((64, 96), 0.5, np.float32)
    lightness[:, 44:52] = 0.05  # a dark outline; the same gray on both sides
    one = np.zeros((64, 96), bool)
    one[30:33, 20:23] = True
    reach = hint_locality(lightness, one)
    assert reach.shape == (64, 96) and reach.dtype == np.float32
    assert reach[:, :40].min() > 0.9 and reach[:, 56:].max() < 0.1
    ten = np.zeros((64, 96), bool)
    for k in range(10):
        ten[5 + 5 * k, 10 + 3 * k] = True  # ten separate hints: the palette, not one object
    assert hint_locality(lightness, ten).min() == 1.0
    assert hint_locality(lightness, np.zeros((64, 96), bool)).min() == 1.0  # no hint: nothing to limit


def test_one_hint_changes_its_object_not_the_look_alike_beyond_its_outline(hint_colorizer):
    """The leak of issue 24, on a photo made here: two regions of the same gray texture parted
    by a dark outline, one violet hint on the left one. The shipped hint model (its locality
    plane) and the spreading after it change the left region and leave the right one nearly
    as the automatic model had it."""
    from streamcolor.hints.photo import colorize_with_hints

    rng = np.random.default_rng(5)
    y8 = np.clip(128 + rng.normal(0, 6, (120, 200)), 0, 255).astype(np.uint8)
    y8[:, 96:104] = 20
    c = hint_colorizer
    auto = c.predict([c.network_input(y8, True)])[0]
    hints = parse_hints('[[hint]]\nat = [0.25, 0.5]\ncolor = "#8040c0"\n', "t.toml")
    hinted = colorize_with_hints(y8, c, hints, True)
    change = np.linalg.norm(hinted - auto, axis=2)
    gw = change.shape[1]
    left, right = change[:, : gw * 2 // 5].mean(), change[:, gw * 3 // 5 :].mean()
    assert left > 10.0 and right < 0.1 * left


def test_a_hint_repeated_on_one_spot_is_still_one_hint():
    """Twelve copies of one hint (a user clicking the same place again) reach no further than
    one (found by a new-user trial: the spreading counted them as twelve hints, the palette)."""
    from streamcolor.hints.tracker import propagate_corrections

    h, w = 24, 48
    ab = np.zeros((h, w, 2), np.float32)
    l_lo = np.full((h, w), 0.5, np.float32)
    l_lo[:, 22:26] = 0.05  # an outline
    feats = np.zeros((6, 12, 4), np.float32)
    feats[..., 0] = 1.0
    one = [HintPoint(0.25, 0.5, np.array([40.0, 0.0]), 0.02)]
    far_one = propagate_corrections(ab, l_lo, feats, one)[:, 30:, 0].mean()
    far_twelve = propagate_corrections(ab, l_lo, feats, one * 12)[:, 30:, 0].mean()
    assert far_twelve == pytest.approx(far_one, abs=0.05) and far_one < 2.0
