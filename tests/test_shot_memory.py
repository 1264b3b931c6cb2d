"""Recurring shots keep their colours (streamcolor/shot_memory.py, issue 24 item 4).

The inputs are made here: textured scenes that pan (something optical flow can follow), cut
together as A, B, A' (A's scene, later), C (never seen before). A network that cannot make up
its mind (a stub engine giving every call a colour of its own) makes each appearance of A come
out in another colour today; with the memory A' takes A's colour, and the shots that do not
recur come out bit for bit as without it.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from streamcolor.api import ColorizeConfig, colorize_video
from streamcolor.cli import app
from streamcolor.colorizer import Colorizer
from streamcolor.model import DEFAULT_MODEL, load_card
from streamcolor.shot_memory import ShotMemory, ShotMemoryConfig
from streamcolor.sink import EncodeOptions
from streamcolor.temporal import BidirectionalFilter, CausalFilter

H, W = 48, 88  # the network grid of the filter-level tests
SHOT = 24
AGAIN = 4  # A' starts this many frames (grid pixels of pan) after A's last


def panorama(seed: int, h: int, w: int) -> np.ndarray:
    """(h, w + 200) float32 in [0.15, 0.85]: smooth blobs, a scene to pan across."""
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.random((h, w + 200)).astype(np.float32), (0, 0), max(2.0, h / 16))
    t = (t - t.min()) / (t.max() - t.min())
    return 0.15 + 0.7 * t


def shot(pano: np.ndarray, start: int, n: int, w: int) -> list[np.ndarray]:
    return [np.ascontiguousarray(pano[:, start + t : start + t + w]) for t in range(n)]


def edit(h: int, w: int) -> tuple[list[np.ndarray], dict[str, int]]:
    """A (seed 1, from 0), B (seed 2), A' (seed 1, AGAIN frames after A's last: the camera
    panned on a little meanwhile), C (seed 3): L frames and where each shot starts."""
    a, b, c = (panorama(s, h, w) for s in (1, 2, 3))
    parts = {"A": shot(a, 0, SHOT, w), "B": shot(b, 0, SHOT, w), "A'": shot(a, SHOT - 1 + AGAIN, SHOT, w)}
    parts["C"] = shot(c, 0, SHOT, w)
    frames, starts = [], {}
    for name, fr in parts.items():
        starts[name] = len(frames)
        frames.extend(fr)
    return frames, starts


def shot_colours(n_shots: int, seed: int = 7) -> list[np.ndarray]:
    """One a*b* offset per shot: the network's mind, changed at every cut."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(-30, 30, 2).astype(np.float32) for _ in range(n_shots)]


def run_filter(kind, ls, preds, memory):
    if kind == "causal":
        f = CausalFilter(memory=memory)
        return [f(lv, p) for lv, p in zip(ls, preds)]
    f = BidirectionalFilter(memory=memory)
    out = {}
    for i, (lv, p) in enumerate(zip(ls, preds)):
        out.update(dict(f.push(i, lv, p)))
    out.update(dict(f.flush()))
    return [out[i] for i in range(len(ls))]


@pytest.mark.parametrize("kind", ["bidirectional", "causal"])
def test_a_recurring_shot_takes_its_first_appearance_colour(kind):
    ls, at = edit(H, W)
    offsets = shot_colours(4)
    truth = [np.stack([60 * (lv - 0.5), np.full_like(lv, 10.0)], axis=2) for lv in ls]
    rng = np.random.default_rng(0)
    preds = []
    for i, t in enumerate(truth):
        k = max(j for j, s in enumerate(at.values()) if s <= i)
        preds.append((t + offsets[k] + rng.normal(0, 1, t.shape)).astype(np.float32))
    memory = ShotMemory()
    without = run_filter(kind, ls, preds, None)
    with_ = run_filter(kind, ls, preds, memory)

    def gap(out):  # A's last frame against A''s first, the same content where the scenes overlap
        shift = AGAIN  # the part both show, shifted by the pan
        a_last, a_again = out[at["A"] + SHOT - 1], out[at["A'"]]
        return float(np.mean(np.abs(a_last[:, shift:] - a_again[:, : W - shift])))

    assert gap(without) > 8.0  # the network changed its mind: A' came out in another colour
    assert gap(with_) < 0.2 * gap(without)
    assert memory.stats.shots == 4 and memory.stats.matched == 1
    for name in ("A", "B", "C"):  # shots that do not recur: untouched, bit for bit
        for i in range(at[name], at[name] + SHOT):
            assert np.array_equal(without[i], with_[i]), (name, i)


def test_memory_is_bounded_and_unrelated_shots_never_match():
    memory = ShotMemory(ShotMemoryConfig(shots=8))
    for s in range(40):
        frames = shot(panorama(100 + s, H, W), 0, 3, W)
        for j, lv in enumerate(frames):
            ab = np.full((H, W, 2), float(s), np.float32)
            assert memory.recall(lv, ab, j == 0) is ab
            memory.observe(lv, ab, j == 0)
    assert len(memory.shots) == 8
    assert memory.stats.shots == 40 and memory.stats.matched == 0
    assert memory.stats.line() == "shot memory: 40 shot(s), none recurring"


def test_a_flat_shot_is_never_recognised():
    memory = ShotMemory()
    black = np.full((H, W), 0.02, np.float32)
    ab = np.zeros((H, W, 2), np.float32)
    for _ in range(2):  # the same black shot twice
        for k in range(3):
            memory.recall(black, ab, k == 0)
            memory.observe(black, ab, k == 0)
    assert memory.stats.matched == 0


def test_two_different_night_shots_are_not_taken_for_one():
    """Dark shots differ little in absolute L*: night A and night B below differ by 0.028 after
    registration, under the 0.06 limit, and would be taken for one shot; the match is judged
    against the frame's own contrast too (max_relative_mismatch)."""

    def night(seed: int) -> list[np.ndarray]:
        return shot(0.04 + 0.3 * (panorama(seed, H, W) - 0.15) / 0.7, 0, 3, W)

    def day(seed: int) -> list[np.ndarray]:  # between them: the cuts the filters see
        return shot(0.5 + 0.4 * (panorama(seed, H, W) - 0.15) / 0.7, 0, 3, W)

    memory = ShotMemory()
    ab = np.zeros((H, W, 2), np.float32)
    matched = []
    for frames in (day(31), night(21), day(32), night(22), day(33), night(21)):
        for k, lv in enumerate(frames):
            memory.recall(lv, ab, k == 0)
            memory.observe(lv, ab, k == 0)
        matched.append(memory.stats.matched)
    assert matched == [0, 0, 0, 0, 0, 1]  # night B is not night A; night A's return is


# -- through the whole pipeline: a file in, a file out ------------------------------------------

FH, FW = 96, 176


class ChangeableEngine:
    """A stand-in for the network that gives every call its own colour (a*b* uniform in
    +-30): the worst case of a network that changes its mind between appearances."""

    name = "stub"
    provider = "test"
    hints = False

    def __init__(self, card):
        self.card = card
        self.rng = np.random.default_rng(11)

    def run(self, x: np.ndarray) -> np.ndarray:
        n, _, h, w = x.shape
        s = self.card.stride
        c = self.rng.uniform(-30, 30, (n, 2, 1, 1)).astype(np.float32)
        return np.broadcast_to(c, (n, 2, h // s, w // s)).copy()


def write_gray(path: Path, frames: list[np.ndarray]) -> Path:
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25, options={"qp": "0"})
        v.width, v.height, v.pix_fmt = FW, FH, "yuv420p"
        v.time_base = v.codec_context.time_base = Fraction(1, 25)
        for i, lv in enumerate(frames):
            y = np.clip(lv * 255 + 0.5, 0, 255).astype(np.uint8)
            f = av.VideoFrame.from_ndarray(cv2.cvtColor(y, cv2.COLOR_GRAY2RGB), format="rgb24")
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
    return path


def read_lab(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        rgb = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return [cv2.cvtColor(f.astype(np.float32) / 255, cv2.COLOR_RGB2Lab) for f in rgb]


def read_planes(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray() for f in c.decode(video=0)]  # yuv420p planes, stacked


@pytest.fixture(scope="module")
def recurring_film(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    frames, at = edit(FH, FW)
    return write_gray(tmp_path_factory.mktemp("shots") / "dialogue.mp4", frames), at


def test_a_film_keeps_a_recurring_shot_colour_and_leaves_the_rest(recurring_film, tmp_path):
    film, at = recurring_film
    card = load_card(DEFAULT_MODEL)
    outs, summaries = {}, {}
    for memory in (False, True):
        cfg = ColorizeConfig(shot_memory=memory, encode=EncodeOptions(crf=0))
        out = tmp_path / f"memory_{memory}.mp4"
        summaries[memory] = colorize_video(film, out, cfg, colorizer=Colorizer(ChangeableEngine(card), card))
        outs[memory] = out
    labs = {m: read_lab(p) for m, p in outs.items()}

    def gap(lab):  # mean a*b* of A's last frame against A''s first (the scene is one colour)
        a, b = lab[at["A"] + SHOT - 1][..., 1:], lab[at["A'"]][..., 1:]
        return float(np.linalg.norm(a.mean((0, 1)) - b.mean((0, 1))))

    assert gap(labs[False]) > 5.0
    assert gap(labs[True]) < 0.25 * gap(labs[False])
    assert summaries[False].shots is None
    assert summaries[True].shots == "shot memory: 1 of 4 shots recognised as an earlier one; their colours carried over"
    planes = {m: read_planes(p) for m, p in outs.items()}
    for name in ("A", "B", "C"):
        for i in range(at[name], at[name] + SHOT):
            assert np.array_equal(planes[False][i], planes[True][i]), (name, i)


def test_cli_says_when_a_shot_recurred_and_can_turn_the_memory_off(recurring_film, tmp_path):
    film, _ = recurring_film
    on = CliRunner().invoke(app, ["video", str(film), str(tmp_path / "on.mp4"), "--threads", "1"])
    assert on.exit_code == 0, on.output
    assert "shot memory: 1 of 4 shots recognised as an earlier one" in on.output
    off = CliRunner().invoke(app, ["video", str(film), str(tmp_path / "off.mp4"), "--no-shot-memory", "--threads", "1"])
    assert off.exit_code == 0, off.output
    assert "shot memory" not in off.output
