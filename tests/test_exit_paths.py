"""Every way `streamcolor` can end, against the installed typer/click: one line on stderr,
the documented exit code, no traceback, no output file unless it is finished.

usage 2 | input or output (OS errors included: full disk, read-only, refused) 1 |
internal error 3 | Ctrl-C 130 | SIGTERM 143.
"""

from __future__ import annotations

import errno
import os
import pty
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from media import make_video

from streamcolor import cli
from streamcolor.commands import files as file_commands
from streamcolor.sink import VideoSink

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("streamcolor: "), text
    assert "Traceback" not in text
    return lines[0]


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("exit") / "in.mp4", frames=6)


@pytest.mark.parametrize(
    "args, words",
    [
        (["video", "IN", "OUT", "--temporal", "sideways"], "sideways"),
        (["video", "IN", "OUT", "--codec", "foo"], "Invalid value for '--codec': 'foo' is not one of"),
        (["video", "IN"], "Missing argument 'OUT'"),
        (["colourise"], "No such command"),
        (["video", "IN", "OUT", "--no-such-flag"], "--no-such-flag"),
        (["image", "IN", "OUT", "--threads", "-1"], "--threads"),
    ],
)
def test_usage_errors_exit_2_in_one_line(args, words, clip, tmp_path):
    args = [str(clip) if a == "IN" else str(tmp_path / "o.mp4") if a == "OUT" else a for a in args]
    r = subprocess.run([sys.executable, "-m", "streamcolor", *args], capture_output=True, text=True, env=ENV)
    assert r.returncode == 2
    assert words in one_line(r.stderr)
    assert r.stdout == ""


@pytest.mark.parametrize(
    "args, words",
    [
        (["video", "MISSING", "OUT"], "input not found"),
        (["video", "IN", "NOWHERE"], "output folder does not exist"),
        (["image", "IN", "OUT"], "not an image"),
    ],
)
def test_input_and_output_errors_exit_1_in_one_line(args, words, clip, tmp_path):
    subs = {"IN": str(clip), "OUT": str(tmp_path / "o.png"), "MISSING": str(tmp_path / "missing.mp4")}
    subs["NOWHERE"] = str(tmp_path / "nowhere" / "o.mp4")
    r = subprocess.run(
        [sys.executable, "-m", "streamcolor", *[subs.get(a, a) for a in args]], capture_output=True, text=True, env=ENV
    )
    assert r.returncode == 1
    assert words in one_line(r.stderr)
    assert leftovers(tmp_path, set()) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EIO])
def test_os_errors_while_writing_are_one_line_and_leave_nothing(code, clip, tmp_path, monkeypatch, capsys):
    def fail(self, frame):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(VideoSink, "_encode_video", fail)
    assert cli.run(["video", str(clip), str(tmp_path / "o.mp4"), "--threads", "2"]) == 1
    line = one_line(capsys.readouterr().err)
    assert os.strerror(code) in line and "o.mp4" in line
    assert leftovers(tmp_path, set()) == []


def test_a_real_write_failure_mid_run(clip, tmp_path):
    """The kernel refuses the write (file size limit: EFBIG, as a full disk gives ENOSPC):
    one line, exit 1, neither OUT nor the partial file left."""

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (8_000, 8_000))

    out = tmp_path / "o.mkv"
    r = subprocess.run(
        [sys.executable, "-m", "streamcolor", "video", str(clip), str(out), "--codec", "ffv1", "--threads", "2"],
        capture_output=True,
        text=True,
        env=ENV,
        preexec_fn=small_files,
    )
    assert r.returncode == 1, r.stderr
    assert "File too large" in one_line(r.stderr)
    assert leftovers(tmp_path, set()) == []


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs Linux's sysfs, where no one may create files")
def test_a_folder_no_one_may_write_is_refused_before_work(clip, tmp_path, capsys):
    # sysfs refuses to create files even for root, for whom chmod changes nothing
    assert cli.run(["video", str(clip), "/sys/streamcolor-test.mp4"]) == 1
    assert "cannot write in /sys" in one_line(capsys.readouterr().err)
    assert cli.run(["image", str(clip), "/sys/"]) == 1
    capsys.readouterr()


def test_internal_error_is_one_line_and_exit_3(clip, tmp_path, monkeypatch, capsys):
    def bug(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(file_commands, "colorize_video", bug)
    monkeypatch.delenv("STREAMCOLOR_DEBUG", raising=False)
    assert cli.run(["video", str(clip), str(tmp_path / "o.mp4")]) == 3
    line = one_line(capsys.readouterr().err)
    assert "internal error: RuntimeError('a bug')" in line and "STREAMCOLOR_DEBUG=1" in line
    monkeypatch.setenv("STREAMCOLOR_DEBUG", "1")
    with pytest.raises(RuntimeError):
        cli.run(["video", str(clip), str(tmp_path / "o.mp4")])


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_signals_end_the_progress_line_and_leave_no_output(sig, code, word, tmp_path):
    """The input is a FIFO that the test holds open after some frames, so the run is
    surely mid-way (progress drawn, partial file open) when the signal comes; stderr is a
    terminal so that the progress bar is drawn."""
    ts = make_video(tmp_path / "feed.ts", frames=30, audio=False)
    fifo = tmp_path / "in.ts"
    os.mkfifo(fifo)
    release = threading.Event()

    def feed():
        with open(fifo, "wb") as f:
            f.write(ts.read_bytes())
            f.flush()
            release.wait(120)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    out = tmp_path / "out.mp4"
    master, slave = pty.openpty()
    cmd = [sys.executable, "-m", "streamcolor", "video", str(fifo), str(out), "--temporal", "off", "--threads", "2"]
    proc = subprocess.Popen(cmd, stderr=slave, stdout=subprocess.DEVNULL, env=ENV)
    os.close(slave)
    seen = b""
    try:
        while b" fps" not in seen:  # the progress line has been drawn
            chunk = os.read(master, 4096)
            assert chunk, seen
            seen += chunk
        proc.send_signal(sig)
        release.set()  # EOF on the FIFO: the decode thread stops reading
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child has closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        assert proc.wait(timeout=120) == code
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = seen.decode()
    assert "Traceback" not in text
    # the bar is erased ("\r" + clear to end of line) before the last line, which stands alone
    last = text.rsplit("\r\x1b[K", 1)[1]
    assert last.strip() == f"streamcolor: {word}; unfinished output deleted", repr(text)
    assert text.endswith("\n")
    assert not out.exists() and not (tmp_path / "out.partial.mp4").exists()
