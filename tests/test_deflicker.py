"""--deflicker on synthetic pumping film."""

from __future__ import annotations

import json

import numpy as np
from media import make_video, read_video

from benchmarks import deflicker_archival
from streamcolor.api import ColorizeConfig, colorize_video
from streamcolor.deflicker import Deflicker


def test_pumping_is_steadied_and_cuts_pass():
    rng = np.random.default_rng(0)
    base = np.clip(rng.normal(120, 30, (60, 80)), 0, 255)
    flt = Deflicker()
    means_in, means_out = [], []
    for t in range(40):
        pump = 12 * np.sin(t * 2.1)  # frame-to-frame brightness pumping
        y = np.clip(base + pump + (80 if t >= 30 else 0), 0, 255).astype(np.uint8)  # a cut to a bright shot at 30
        out = flt(y)
        means_in.append(y.mean())
        means_out.append(out.mean())
    step_in = np.abs(np.diff(means_in[5:29])).mean()
    step_out = np.abs(np.diff(means_out[5:29])).mean()
    assert step_out < 0.4 * step_in
    assert abs(means_out[30] - means_in[30]) < 1e-6  # the new shot is taken as it is
    assert means_out[30] - means_out[29] > 60


def test_deflicker_flag_changes_luma_and_keeps_frames(tmp_path, colorizer):
    src = make_video(tmp_path / "in.mp4", frames=10)
    out = tmp_path / "out.mp4"
    colorize_video(src, out, ColorizeConfig(threads=2, deflicker=True), colorizer=colorizer)
    a, b = read_video(src), read_video(out)
    assert b["times"] == a["times"] and b["audio_packets"] == a["audio_packets"]


def test_deflicker_benchmark_tiny(tmp_path):
    clip = make_video(tmp_path / "c.mp4", frames=6, audio=False)
    r = deflicker_archival.main(["--clips", str(clip), "--out", str(tmp_path / "d.json")])
    assert r["clips"]["c.mp4"]["frames"] == 6
    assert json.loads((tmp_path / "d.json").read_text())["clips"]["c.mp4"]["ms_per_frame"] >= 0
