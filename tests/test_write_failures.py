"""Write failures, in every command: outputs that cannot be written are refused before any
work, and a write that fails mid-way (full disk, size limit, read-only) is one line with
nothing half-written left behind."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from media import make_video, scene
from typer.testing import CliRunner

from streamcolor.api import ColorizeConfig
from streamcolor.cli import app
from streamcolor.errors import OutputError
from streamcolor.images import colorize_images

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
runner = CliRunner()
SYSFS = pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's sysfs (no one may create files)")


def photos(folder: Path, n: int = 3, size: tuple[int, int] = (32, 48), noise: bool = False) -> Path:
    folder.mkdir()
    for i in range(n):
        img = scene(*size, i)
        if noise:  # incompressible: a PNG of a known, large size
            img = np.random.default_rng(i).integers(0, 256, img.shape, dtype=np.uint8)
        cv2.imwrite(str(folder / f"p{i}.png"), img)
    return folder


def test_full_disk_while_writing_photos_stops_with_one_line(tmp_path, monkeypatch):
    src = photos(tmp_path / "in")
    out = tmp_path / "out"
    real = Path.write_bytes
    calls = []

    def second_write_fails(self, data):
        calls.append(self)
        if len(calls) == 2:
            real(self, data[: len(data) // 2])  # the disk fills up half-way through the file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", second_write_fails)
    with pytest.raises(OutputError, match=r"cannot write .*p1\.png: No space left on device") as e:
        colorize_images(src, out, ColorizeConfig(threads=2))
    assert "\n" not in str(e.value)
    assert sorted(p.name for p in out.iterdir()) == ["p0.png"]  # finished; p1 not half-there
    assert cv2.imread(str(out / "p0.png")) is not None


def test_a_real_size_limit_on_photos(tmp_path):
    src = photos(tmp_path / "in", n=2, size=(200, 200), noise=True)
    out = tmp_path / "out"

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    r = subprocess.run(
        [sys.executable, "-m", "streamcolor", "image", str(src), str(out)],
        capture_output=True,
        text=True,
        env=ENV,
        preexec_fn=small_files,
    )
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "File too large" in lines[0], r.stderr
    assert not out.exists()  # the folder it made and could not fill is gone too


@SYSFS
@pytest.mark.parametrize(
    "args",
    [
        ["image", "PHOTOS", "/sys/streamcolor-out"],
        ["image", "PHOTO", "/sys/streamcolor-out.png"],
        ["video", "CLIP", "/sys/streamcolor-out.mp4"],
        ["stream", "CLIP", "/sys/streamcolor-out.mp4"],
        ["stream", "CLIP", "--record", "/sys/streamcolor-rec.mp4", "--preview", "--port", "0"],
    ],
)
def test_unwritable_outputs_are_refused_before_work(args, tmp_path):
    src = photos(tmp_path / "in", n=1)
    clip = make_video(tmp_path / "clip.mp4", frames=3, audio=False)
    subs = {"PHOTOS": str(src), "PHOTO": str(src / "p0.png"), "CLIP": str(clip)}
    r = runner.invoke(app, [subs.get(a, a) for a in args])
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0] == "streamcolor: cannot write in /sys: Permission denied", r.output
