"""Behaviour unchanged, bit for bit (issue 24): a few generated clips colorized through the
public API in every mode -- automatic (bidirectional and causal), with a hints file (points, a
stroke, a pin), with a reference photo, a shot piece, and a live run from a file -- written
losslessly (FFV1 in Matroska), decoded, and each frame's planes hashed. The hashes are those of
the code before the restructuring; a refactor must not change one picture.

Regenerate (only when a change of output is intended, and say so in the commit):

    python tests/test_golden.py --write

The network's float results are bit-stable only within one ONNX Runtime build: with another
version than the one recorded the test is skipped, saying which."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import onnxruntime
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from media import make_shots_video, make_video, scene  # noqa: E402

from streamcolor.api import ColorizeConfig, colorize_video, make_colorizer  # noqa: E402
from streamcolor.capture import SourceSpec
from streamcolor.config import LiveConfig
from streamcolor.hints.file import load_hints  # noqa: E402
from streamcolor.live import run_live  # noqa: E402
from streamcolor.model import HINTS_MODEL  # noqa: E402
from streamcolor.output_plan import EncodeOptions  # noqa: E402
from streamcolor.shots import colorize_piece, plan_shots  # noqa: E402

GOLDEN = Path(__file__).with_name("golden.json")
LOSSLESS = EncodeOptions(codec="ffv1")

HINTS = """
[[hint]]
at = [0.5, 0.75]
color = "#2f8f2f"

[[hint]]
frame = 3
stroke = [[0.1, 0.2], [0.5, 0.25], [0.9, 0.2]]
color = "navy"

[[hint]]
frame = 5
at = [0.3, 0.45]
color = "#ffcc00"
until = "pin"
"""


def frame_hashes(path: Path) -> list[str]:
    """sha256 of every decoded frame's planes, in order (the pictures only, no timestamps)."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            h = hashlib.sha256(f"{f.format.name} {f.width}x{f.height}".encode())
            size = (f.format.components[0].bits + 7) // 8  # bytes per sample
            for p in f.planes:  # each row without its line padding (not part of the picture)
                rows = np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)
                h.update(rows[:, : p.width * size].tobytes())
            out.append(h.hexdigest())
    return out


def run_all(work: Path) -> dict[str, list[str]]:
    """Every mode once -> {mode: frame hashes}."""
    work.mkdir(parents=True, exist_ok=True)
    # lossless inputs: x264's decisions (and so a lossy input's pictures) vary from run to run
    # on a loaded machine, even on one thread; at qp 0 the decoded pictures are the scene's
    exact = {"qp": "0"}
    clip = make_video(work / "clip.mp4", width=96, height=64, frames=14, options=exact)
    shots = make_shots_video(work / "shots.mp4", shots=(50, 50), options=exact)
    photo = work / "ref.png"
    cv2.imwrite(str(photo), cv2.cvtColor(scene(64, 96, 0), cv2.COLOR_RGB2BGR))
    hints_toml = work / "hints.toml"
    hints_toml.write_text(HINTS)
    ref_toml = work / "ref.toml"
    ref_toml.write_text(f'[[reference]]\npath = "{photo.name}"\n')
    quiet = dict(warn=lambda m: None, overwrite=True)
    auto = make_colorizer(ColorizeConfig(backend="onnx", threads=1))
    hinted = make_colorizer(ColorizeConfig(model=HINTS_MODEL, backend="onnx", threads=1))
    runs: dict[str, list[str]] = {}

    def video(name: str, colorizer, **cfg) -> None:
        out = work / f"{name}.mkv"
        cfg = ColorizeConfig(backend="onnx", threads=1, encode=LOSSLESS, **cfg)
        colorize_video(clip, out, cfg, colorizer=colorizer, **quiet)
        runs[name] = frame_hashes(out)

    video("bidirectional", auto)
    video("causal", auto, temporal="causal", keyframe_interval=3)
    video("off", auto, temporal="off")
    video("hints_bidirectional", hinted, hints=load_hints(hints_toml))
    video("hints_causal", hinted, hints=load_hints(hints_toml), temporal="causal")
    video("reference", hinted, hints=load_hints(ref_toml))

    cfg = ColorizeConfig(backend="onnx", threads=1, encode=LOSSLESS)
    plan = plan_shots(shots, work / "shots_out.mkv", auto, 2, LOSSLESS)
    for i, piece in enumerate(plan.pieces):
        out = work / f"piece{i}.mkv"
        colorize_piece(shots, out, piece, cfg, auto, warn=lambda m: None)
        runs[f"shot_piece{i}"] = frame_hashes(out)

    live_cfg = LiveConfig(threads=1, encode=LOSSLESS, hints=load_hints(hints_toml))
    out = work / "live.mkv"
    run_live(SourceSpec(str(clip)), out, live_cfg, colorizer=auto, hint_colorizer=hinted, **quiet)
    runs["live_hints"] = frame_hashes(out)
    out = work / "live_auto.mkv"
    run_live(SourceSpec(str(clip)), out, LiveConfig(threads=1, encode=LOSSLESS), colorizer=auto, **quiet)
    runs["live_auto"] = frame_hashes(out)
    return runs


@pytest.mark.slow
def test_pictures_are_bit_for_bit_those_recorded(tmp_path):
    recorded = json.loads(GOLDEN.read_text())
    if recorded["onnxruntime"] != onnxruntime.__version__:
        pytest.skip(
            f"golden hashes recorded with onnxruntime {recorded['onnxruntime']}, this is "
            f"{onnxruntime.__version__}: float results differ between builds (python tests/test_golden.py --write)"
        )
    runs = run_all(tmp_path)
    assert sorted(runs) == sorted(recorded["runs"])
    for name, hashes in recorded["runs"].items():
        assert len(runs[name]) == len(hashes), name
        changed = [i for i, (a, b) in enumerate(zip(runs[name], hashes)) if a != b]
        assert not changed, f"{name}: frames {changed} differ from the recorded pictures"


if __name__ == "__main__":
    import tempfile

    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_golden.py --write   (records the current code's pictures)")
    with tempfile.TemporaryDirectory() as d:
        runs = run_all(Path(d))
    GOLDEN.write_text(
        json.dumps({"onnxruntime": onnxruntime.__version__, "av": av.__version__, "runs": runs}, indent=1) + "\n"
    )
    print(f"wrote {GOLDEN}: {sum(map(len, runs.values()))} frames in {len(runs)} runs")
