"""An existing OUT is never replaced silently: every command refuses it in one line unless
--overwrite (-y) is given, and the refused file is left exactly as it was."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from media import make_video, read_video, scene
from typer.testing import CliRunner

from streamcolor.cli import app

runner = CliRunner()
PRECIOUS = b"an archivist's render, not ours to replace"


def refused(args: list[str], *targets) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 1, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "output exists" in lines[0] and "--overwrite or -y" in lines[0], r.output
    for t in targets:
        assert t.read_bytes() == PRECIOUS


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("ow") / "in.mp4", frames=4, audio=False)


@pytest.mark.parametrize("flag", ["--overwrite", "-y"])
def test_video(flag, clip, tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(PRECIOUS)
    refused(["video", str(clip), str(out), "--temporal", "off"], out)
    r = runner.invoke(app, ["video", str(clip), str(out), "--temporal", "off", flag])
    assert r.exit_code == 0, r.output
    assert len(read_video(out)["times"]) == 4


def test_image_file_and_folder(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(src / name), scene(32, 48, 0)[..., ::-1])
    single = tmp_path / "one.png"
    single.write_bytes(PRECIOUS)
    refused(["image", str(src / "a.png"), str(single)], single)
    assert runner.invoke(app, ["image", str(src / "a.png"), str(single), "-y"]).exit_code == 0
    assert cv2.imread(str(single)) is not None
    # a folder: every output is checked before the first is written
    out = tmp_path / "coloured"
    out.mkdir()
    (out / "b.png").write_bytes(PRECIOUS)
    refused(["image", str(src), str(out)], out / "b.png")
    assert sorted(p.name for p in out.iterdir()) == ["b.png"]
    assert runner.invoke(app, ["image", str(src), str(out), "--overwrite"]).exit_code == 0
    assert all(cv2.imread(str(out / n)) is not None for n in ("a.png", "b.png"))


def test_stream_output_and_record(clip, tmp_path):
    out, rec = tmp_path / "live.mp4", tmp_path / "rec.mp4"
    out.write_bytes(PRECIOUS)
    rec.write_bytes(PRECIOUS)
    refused(["stream", str(clip), str(out)], out)
    refused(["stream", str(clip), "--record", str(rec), "--preview", "--port", "0"], rec)
    refused(["webcam", "/dev/no-such-camera", "--record", str(rec), "--port", "0"], rec)
    r = runner.invoke(app, ["stream", str(clip), str(out), "-y", "--quiet"])
    assert r.exit_code == 0, r.output
    assert len(read_video(out)["times"]) == 4


def test_every_output_exists_refusal_says_what_to_give_in_the_same_words(tmp_path):
    """One file, a folder of photos, an image sequence: the same sentence (it / them)."""
    from streamcolor.errors import OutputError
    from streamcolor.images import image_targets

    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(src / name), np.full((8, 8), 128, np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(PRECIOUS)
    with pytest.raises(OutputError, match=r"\(give --overwrite or -y to replace it\)$"):
        image_targets(src, out)
    (out / "b.png").write_bytes(PRECIOUS)
    with pytest.raises(OutputError, match=r"and 1 more \(give --overwrite or -y to replace them\)$"):
        image_targets(src, out)
