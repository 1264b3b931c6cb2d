"""OUT follows cp's rules: a file into an existing folder keeps its name, a folder goes
into a folder (created when missing) and never into an image file name; every output is
checked before the first is written."""

from __future__ import annotations

import cv2
import pytest
from media import make_video, read_video, scene
from typer.testing import CliRunner

from streamcolor.api import ColorizeConfig, colorize_video
from streamcolor.cli import app
from streamcolor.errors import OutputError
from streamcolor.images import colorize_images

CFG = ColorizeConfig(threads=2)


@pytest.fixture
def photos(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    for name in ("a.png", "b.jpg"):
        cv2.imwrite(str(src / name), scene(32, 48, 0)[..., ::-1])
    return src


def test_image_file_into_an_existing_folder_keeps_its_name(photos, tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    assert colorize_images(photos / "a.png", dest, CFG) == [dest / "a.png"]
    assert cv2.imread(str(dest / "a.png")).shape == (32, 48, 3)


def test_image_file_into_a_missing_folder_is_refused(photos, tmp_path):
    r = CliRunner().invoke(app, ["image", str(photos / "a.png"), str(tmp_path / "nowhere") + "/"])
    assert r.exit_code == 1 and "output folder does not exist" in r.output
    assert not (tmp_path / "nowhere").exists()


def test_folder_into_an_image_name_is_refused_and_nothing_made(photos, tmp_path):
    with pytest.raises(OutputError, match="must be a folder, not an image name"):
        colorize_images(photos, tmp_path / "out.png", CFG)
    assert not (tmp_path / "out.png").exists()


def test_folder_into_a_file_is_refused(photos, tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(OutputError, match="must be a folder"):
        colorize_images(photos, tmp_path / "file.txt", CFG)
    with pytest.raises(OutputError, match="is not a folder"):
        colorize_images(photos, tmp_path / "file.txt" / "sub", CFG)


@pytest.mark.parametrize("exists", [False, True])
def test_folder_into_a_folder(exists, photos, tmp_path):
    out = tmp_path / "coloured"
    if exists:
        out.mkdir()
    written = colorize_images(photos, out, CFG)
    assert sorted(p.name for p in written) == ["a.png", "b.jpg"]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg"]


def test_video_into_an_existing_folder_keeps_its_name(tmp_path, colorizer):
    clip = make_video(tmp_path / "clip.mkv", frames=3, audio=False)
    dest = tmp_path / "dest"
    dest.mkdir()
    summary = colorize_video(clip, dest, ColorizeConfig(threads=2, temporal="off"), colorizer=colorizer)
    assert summary.out == dest / "clip.mkv" and len(read_video(dest / "clip.mkv")["times"]) == 3
    r = CliRunner().invoke(app, ["video", str(clip), str(dest), "--temporal", "off"])
    assert r.exit_code == 1 and "output exists" in r.output  # and cp -n's rule from there on
