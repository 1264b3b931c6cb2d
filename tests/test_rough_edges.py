"""The rough edges a new user hit (issue 23), each built here and checked for the right
result or one clear line: photo folders with every format they hold, photo URLs, the ICC
profile said once, no batch lock left behind."""

from __future__ import annotations

import functools
import http.server
import threading

import cv2
import numpy as np
import pytest
from media import make_video, scene
from typer.testing import CliRunner

from streamcolor.api import ColorizeConfig
from streamcolor.batch import BatchConfig, run_batch
from streamcolor.batch_jobs import LOCK_NAME
from streamcolor.cli import app
from streamcolor.images import colorize_images

CFG = ColorizeConfig(threads=2)
runner = CliRunner()


def jpeg_bytes(t: int = 0) -> bytes:
    return cv2.imencode(".jpg", scene(48, 64, t)[..., ::-1])[1].tobytes()


def colourful(path) -> bool:
    img = cv2.imread(str(path))
    return img is not None and float(np.abs(img.astype(np.int16) - img.mean(axis=2, keepdims=True)).mean()) > 3.0


def test_photo_folder_takes_every_format_opencv_reads(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    (src / "a.jpg").write_bytes(jpeg_bytes(0))
    (src / "b.jfif").write_bytes(jpeg_bytes(1))  # a JPEG under Windows' other name
    (src / "C.JPEG").write_bytes(jpeg_bytes(2))
    (src / "d.gif").write_bytes(cv2.imencode(".gif", scene(48, 64, 3)[..., ::-1])[1].tobytes())
    (src / "notes.txt").write_text("not a photo")
    written = colorize_images(src, tmp_path / "out", CFG)
    assert sorted(p.name for p in written) == ["C.JPEG", "a.jpg", "b.jfif", "d.gif"]
    for p in written:
        assert colourful(p), p.name
    assert cv2.imread(str(tmp_path / "out" / "b.jfif")) is not None  # a JPEG inside, as its name says


@pytest.fixture
def http_folder(tmp_path):
    """tmp_path/www served on 127.0.0.1 (a real HTTP server, no network beyond this machine)."""
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_photo_url_is_fetched_with_its_slashes(http_folder, tmp_path):
    www, base = http_folder
    (www / "photo.jpg").write_bytes(jpeg_bytes())
    (tmp_path / "out").mkdir()
    result = runner.invoke(app, ["image", f"{base}/photo.jpg", str(tmp_path / "out"), "--threads", "2"])
    assert result.exit_code == 0, result.output
    assert colourful(tmp_path / "out" / "photo.jpg")
    result = runner.invoke(app, ["image", f"{base}/missing.jpg", str(tmp_path / "o.jpg")])
    assert result.exit_code == 1
    assert result.output.strip() == f"streamcolor: cannot read {base}/missing.jpg: HTTP 404 File not found"
    assert not (tmp_path / "o.jpg").exists()


def test_icc_profile_is_said_once_per_run(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    ImageCms = pytest.importorskip("PIL.ImageCms")
    if not hasattr(cv2, "imdecodeWithMetadata"):
        pytest.skip("OpenCV < 4.12 reads no ICC profile")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(3):
        Image.fromarray(scene(32, 48, i)).save(src / f"p{i}.jpg", icc_profile=icc)
    cv2.imwrite(str(src / "plain.png"), scene(32, 48, 9))
    warnings: list[str] = []
    assert len(colorize_images(src, tmp_path / "out", CFG, warn=warnings.append)) == 4
    assert warnings == ["3 photos: ICC profiles not copied (the colorized output is sRGB)"]


def test_batch_leaves_no_lock_file_even_after_a_killed_one(tmp_path, colorizer):
    reels = tmp_path / "reels"
    reels.mkdir()
    make_video(reels / "a.mp4", frames=3, audio=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).write_bytes(b"")  # what a kill -9 leaves
    cfg = BatchConfig(colorize=CFG, workers=1)
    summary = run_batch([str(reels)], out, cfg)
    assert len(summary.done) == 1
    assert not (out / LOCK_NAME).exists()
    again = run_batch([str(reels)], out, cfg)  # and the next batch still locks and finishes
    assert len(again.skipped) == 1 and not (out / LOCK_NAME).exists()


def test_lock_is_exclusive_while_held(tmp_path):
    from streamcolor.batch import _OutdirLock
    from streamcolor.errors import OutputError

    with _OutdirLock(tmp_path):
        assert (tmp_path / LOCK_NAME).exists()
        with pytest.raises(OutputError, match="another streamcolor batch is writing"):
            _OutdirLock(tmp_path).__enter__()
    assert not (tmp_path / LOCK_NAME).exists()
    with _OutdirLock(tmp_path):  # free again
        pass
