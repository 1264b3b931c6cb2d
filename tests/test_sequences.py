"""Image sequences in and out (issue 23): a folder of numbered DPX/TIFF/PNG frames or a
printf pattern as the input, a pattern or a folder as the output; gaps reported, frame
rate stated, finished frames only, a rerun continues."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import make_video, scene
from test_depth import colour_of, luma_of, ramp_quality
from typer.testing import CliRunner

from streamcolor import color
from streamcolor.api import ColorizeConfig, colorize_video
from streamcolor.cli import app
from streamcolor.errors import OutputError
from streamcolor.output_plan import EncodeOptions

W, H = 640, 64
FFV1 = ColorizeConfig(threads=2, encode=EncodeOptions(codec="ffv1"))


def scan_frame(i: int, bits: int = 16) -> np.ndarray:
    """(H, W) uint16 gray at `bits`: a full-range ramp on top, a landscape below."""
    top = (1 << bits) - 1
    y = np.linspace(0, top, W)[None].repeat(H, 0)
    y[H // 2 :] = color.rgb_to_gray(scene(H // 2, W, i).astype(np.float32) / 255.0) * top
    return np.rint(y).astype(np.uint16)


def write_frame(path: Path, codec: str, pix_fmt: str, image: np.ndarray) -> None:
    enc = av.CodecContext.create(codec, "w")
    enc.width, enc.height, enc.pix_fmt = image.shape[1], image.shape[0], pix_fmt
    enc.time_base = Fraction(1, 24)
    enc.open()
    frame = av.VideoFrame(image.shape[1], image.shape[0], pix_fmt)
    planes = [image] * len(frame.planes)  # gray: one plane; gbrp: R = G = B
    for p, data in zip(frame.planes, planes):
        np.frombuffer(p, np.uint16).reshape(p.height, p.line_size // 2)[:, : p.width] = data
    path.write_bytes(b"".join(bytes(p) for p in enc.encode(frame)))


def read_frames(folder: Path, codec: str) -> dict[str, av.VideoFrame]:
    dec = av.CodecContext.create(codec, "r")
    return {p.name: dec.decode(av.Packet(p.read_bytes()))[0] for p in sorted(folder.iterdir())}


def decoded(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


def test_sixteen_bit_tiff_folder_into_ffv1(tmp_path, colorizer):
    scans = tmp_path / "reel"
    scans.mkdir()
    numbers = [101, 102, 104, 105]  # 103 lost in the scan
    for n in numbers:
        write_frame(scans / f"reel_{n:06d}.tif", "tiff", "gray16le", scan_frame(n))
    (scans / "notes.txt").write_text("not a frame")
    warnings = []
    out = tmp_path / "reel.mkv"
    summary = colorize_video(scans, out, FFV1, colorizer=colorizer, warn=warnings.append)
    assert summary.frames == 4 and summary.rate == "24 fps, the default: --fps sets it"
    assert warnings == [f"1 frame(s) missing from {scans}/reel_%06d.tif: 103 (each gap is kept as time)"]
    got = decoded(out)
    assert [round(float(f.time) * 24) for f in got] == [0, 1, 3, 4]  # the gap stays a gap
    assert got[0].format.name == "yuv420p16le"
    for n, f in zip(numbers, got):
        assert np.array_equal(luma_of(f), scan_frame(n))  # gray16 is full-range luma: untouched
        assert colour_of(f) > 3.0
    levels, residual = ramp_quality(luma_of(got[0]), np.linspace(0, 255, W), 16)
    assert levels > 300 and residual < 0.2, (levels, residual)


def test_ten_bit_dpx_pattern_with_start_number_and_rate(tmp_path, colorizer):
    for n in range(8, 14):
        write_frame(tmp_path / f"{n:06d}.dpx", "dpx", "gbrp10le", scan_frame(n, 10))
    out = tmp_path / "scan.mkv"
    summary = colorize_video(
        str(tmp_path / "%06d.dpx"), out, FFV1, colorizer=colorizer, fps=Fraction(25), start_number=10
    )
    assert summary.frames == 4 and summary.rate == "25 fps"  # 10, 11, 12, 13
    got = decoded(out)
    assert len(got) == 4 and got[0].format.name == "yuv420p10le"
    assert [round(float(f.time) * 25) for f in got] == [0, 1, 2, 3]
    levels, residual = ramp_quality(luma_of(got[0]), np.linspace(16, 235, W), 10)  # RGB -> limited-range Y
    assert levels > 300 and residual < 0.2, (levels, residual)
    assert all(colour_of(f) > 3.0 for f in got)


def test_h264_clip_into_tiff_sequence(tmp_path, colorizer):
    src = make_video(tmp_path / "clip.mp4", frames=6)  # with audio
    warnings = []
    summary = colorize_video(src, tmp_path / "frames" / "%04d.tif", colorizer=colorizer, warn=warnings.append)
    assert summary.frames == 6
    assert warnings == ["audio stream #1 has nowhere to go in an image sequence: not written"]
    frames = read_frames(tmp_path / "frames", "tiff")
    assert list(frames) == [f"{n:04d}.tif" for n in range(1, 7)]  # no partial file, no marker left
    for f in frames.values():
        assert f.format.name == "rgb24"
        rgb = f.to_ndarray()[H // 2 :].astype(np.int16)
        assert np.abs(rgb - rgb.mean(axis=2, keepdims=True)).mean() > 3.0


def test_sixteen_bit_sequence_into_a_folder_keeps_names_and_depth(tmp_path, colorizer):
    scans = tmp_path / "scans"
    scans.mkdir()
    for n in (1, 2):
        write_frame(scans / f"f{n:03d}.png", "png", "gray16be", scan_frame(n).byteswap())
    (tmp_path / "colour").mkdir()
    colorize_video(scans, str(tmp_path / "colour") + "/", colorizer=colorizer)
    frames = read_frames(tmp_path / "colour", "png")
    assert list(frames) == ["f001.png", "f002.png"]
    assert frames["f001.png"].format.name == "rgb48be"
    ramp = frames["f001.png"].to_ndarray()[H // 4, :, 1]  # green along the gray ramp
    assert len(np.unique(ramp)) > 300


class Stop(Exception):
    pass


def test_interrupted_sequence_continues_and_finished_one_is_refused(tmp_path, colorizer):
    src = make_video(tmp_path / "clip.mp4", frames=10, audio=False)
    out = str(tmp_path / "frames" / "%03d.png")

    def stop_after_four(p):
        if p.frames == 4:
            raise Stop

    with pytest.raises(Stop):
        colorize_video(src, out, colorizer=colorizer, on_progress=stop_after_four)
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert [n for n in names if n.endswith(".png")] == ["001.png", "002.png", "003.png", "004.png"]
    first = (tmp_path / "frames" / "001.png").stat().st_mtime_ns
    summary = colorize_video(src, out, colorizer=colorizer)  # the same command again
    assert summary.resumed == 5 and summary.frames == 6
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [f"{n:03d}.png" for n in range(1, 11)]
    assert (tmp_path / "frames" / "001.png").stat().st_mtime_ns == first  # finished frames untouched
    with pytest.raises(OutputError, match="output exists: .*001.png and 9 more"):
        colorize_video(src, out, colorizer=colorizer)
    # another input into those frames is refused too, not taken as a run to continue
    other = make_video(tmp_path / "other.mp4", frames=3, audio=False)
    with pytest.raises(OutputError, match="output exists"):
        colorize_video(other, out, colorizer=colorizer)


runner = CliRunner()


@pytest.mark.parametrize(
    "args, words, code",
    [
        (["video", "{tmp}/none_%04d.dpx", "{tmp}/o.mkv"], "input not found: no frames match", 1),
        (["video", "{tmp}/%04d.dpx", "{tmp}/o_%d_%d.tif"], "one %d or %0Nd in its file name", 1),
        (["video", "{tmp}/%04d.dpx", "{tmp}/o_%04d.jpg"], "unknown frame format for 'o_%04d.jpg'", 1),
        (["video", "{tmp}/%04d.dpx", "{tmp}/o.mkv", "--fps", "0"], "--fps must be positive", 2),
        (["video", "{clip}", "{tmp}/o.mkv", "--fps", "24"], "--fps and --start-number are for image sequences", 2),
        (["video", "{tmp}/videos", "{tmp}/o.mp4"], "use: streamcolor batch", 1),
        (["video", "{tmp}", "{tmp}/o.mkv", "--start-number", "50"], "no frames in", 1),  # a folder, all before 50
        (["video", "{tmp}/%04d.dpx", "{tmp}/%04d.dpx", "-y"], "output frames are the input frames", 1),
        (["video", "{tmp}/%04d.dpx", "{tmp}/o_%04d.exr"], ".exr frames are read, not written", 1),
    ],
)
def test_sequence_refusals_are_one_line(args, words, code, tmp_path, vfr_clip):
    write_frame(tmp_path / "0001.dpx", "dpx", "gbrp10le", scan_frame(1, 10))
    (tmp_path / "videos").mkdir()
    make_video(tmp_path / "videos" / "a.mp4", frames=2)
    args = [a.format(tmp=tmp_path, clip=vfr_clip) for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert words in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_cli_summary_names_the_rate(tmp_path):
    for n in (1, 2, 3):
        write_frame(tmp_path / f"s{n}.tif", "tiff", "gray16le", scan_frame(n))
    result = runner.invoke(app, ["video", str(tmp_path / "s%d.tif"), str(tmp_path / "o.mkv"), "--threads", "2"])
    assert result.exit_code == 0, result.output
    assert "colorized 3 frames" in result.output and "image sequence at 24 fps, the default" in result.output


def test_batch_takes_a_folder_of_frames_as_one_film(tmp_path):
    from streamcolor.batch import BatchConfig, run_batch

    reels = tmp_path / "reels"
    (reels / "scan_a").mkdir(parents=True)
    (reels / "photos").mkdir()
    make_video(reels / "clip.mp4", frames=3, audio=False)
    for n in (1, 2, 3):
        write_frame(reels / "scan_a" / f"a_{n:04d}.dpx", "dpx", "gbrp10le", scan_frame(n, 10))
    for name in ("x.png", "y.jpg"):  # photos, not numbered: photos
        import cv2

        cv2.imwrite(str(reels / "photos" / name), scene(32, 48, 0)[..., ::-1])
    out = tmp_path / "out"
    cfg = BatchConfig(colorize=FFV1, container="mkv", workers=1)
    summary = run_batch([str(reels)], out, cfg)
    assert not summary.failed, summary.failed
    assert sorted(str(Path(r.output).relative_to(out)) for r in summary.done) == [
        "clip.mkv",
        "photos/x.png",
        "photos/y.jpg",
        "scan_a.mkv",
    ]
    got = decoded(out / "scan_a.mkv")
    assert len(got) == 3 and got[0].format.name == "yuv420p10le"  # every frame, depth kept
    again = run_batch([str(tmp_path / "reels" / "scan_a" / "a_%04d.dpx")], tmp_path / "out2", cfg)
    assert [Path(r.output).name for r in again.done] == ["scan_a.mkv"]


def with_dpx_header(data: bytes, rate: float, timecode_bcd: int) -> bytes:
    """FFmpeg's DPX (a 1664-byte header: no film or TV header) grown to the standard 2048-byte
    header with the film header's frame rate and the TV header's SMPTE timecode filled in."""
    import struct

    e = ">" if data[:4] == b"SDPX" else "<"
    offset = struct.unpack(e + "I", data[4:8])[0]
    header = bytearray(data[:offset]) + bytearray(2048 - offset)
    body = data[offset:]
    header[4:8] = struct.pack(e + "I", 2048)  # image data offset
    header[16:20] = struct.pack(e + "I", 2048 + len(body))  # file size
    header[808:812] = struct.pack(e + "I", 2048)  # the image element's data offset
    header[1724:1728] = struct.pack(e + "f", rate)  # film header: frame rate
    header[1920:1924] = struct.pack(e + "I", timecode_bcd)  # TV header: SMPTE timecode, BCD
    header[1944:1948] = struct.pack(e + "f", rate)  # TV header: frame rate
    return bytes(header) + body


def test_dpx_header_rate_and_timecode_are_used(tmp_path, colorizer):
    scans = tmp_path / "scan"
    scans.mkdir()
    for n in (1, 2, 3):
        write_frame(scans / f"r{n:05d}.dpx", "dpx", "gbrp10le", scan_frame(n, 10))
        path = scans / f"r{n:05d}.dpx"
        path.write_bytes(with_dpx_header(path.read_bytes(), 25.0, 0x10000000 + n))  # 10:00:00:0n
    out = tmp_path / "reel.mkv"
    summary = colorize_video(scans, out, FFV1, colorizer=colorizer)
    assert summary.rate == "25 fps, the DPX header's"
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert v.metadata.get("TIMECODE", v.metadata.get("timecode")) == "10:00:00:01"
        assert [round(float(f.time) * 25) for f in c.decode(v)] == [0, 1, 2]
    summary = colorize_video(scans, tmp_path / "r24.mkv", FFV1, colorizer=colorizer, fps=Fraction(24))
    assert summary.rate == "24 fps"  # --fps wins over the header


def test_ctrl_c_keeps_the_finished_frames_and_the_same_command_continues(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    src = make_video(tmp_path / "clip.mp4", width=320, height=192, frames=60, audio=False)
    frames = tmp_path / "frames"
    cmd = [sys.executable, "-m", "streamcolor", "video", str(src), str(frames / "%04d.png"), "--threads", "2"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not (frames / "0003.png").exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=60)[1]
    assert p.returncode == 130, err
    assert err.strip().splitlines()[-1] == (
        "streamcolor: interrupted; the finished frames are kept and the one under way deleted: "
        "rerun the same command to continue"
    )
    kept = sorted(f.name for f in frames.glob("*.png"))
    assert 3 <= len(kept) < 60 and not list(frames.glob("*.partial.*"))
    done = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"continued from frame {len(kept) + 1}" in done.stderr
    assert sorted(f.name for f in frames.iterdir()) == [f"{n:04d}.png" for n in range(1, 61)]


def test_exr_linear_light_is_encoded_before_colorizing(tmp_path, colorizer):
    """OpenEXR scans hold linear light as float: read as their luminance, sRGB-encoded at
    16 bits (a mid-gray 0.18 becomes 0.46, as a display shows it), then colorized."""
    rgb = scene(H, W, 0).astype(np.float32) / 255.0
    linear = color.srgb_to_linear(rgb)
    linear[: H // 2] = np.linspace(0.0, 1.5, W, dtype=np.float32)[None, :, None]  # above 1: clipped
    for n in (1, 2):
        enc = av.CodecContext.create("exr", "w")
        enc.width, enc.height, enc.pix_fmt = W, H, "gbrpf32le"
        enc.time_base = Fraction(1, 24)
        enc.open()
        frame = av.VideoFrame(W, H, "gbrpf32le")
        for plane, channel in zip(frame.planes, (1, 2, 0)):  # planes G, B, R
            np.frombuffer(plane, np.float32).reshape(H, plane.line_size // 4)[:, :W] = linear[..., channel]
        (tmp_path / f"s{n:03d}.exr").write_bytes(b"".join(bytes(p) for p in enc.encode(frame)))
    out = tmp_path / "o.mkv"
    colorize_video(str(tmp_path / "s%03d.exr"), out, FFV1, colorizer=colorizer)
    got = decoded(out)
    assert len(got) == 2 and got[0].format.name == "yuv420p16le"
    y = luma_of(got[0])
    want = color.linear_to_srgb(np.clip(linear @ color.RGB_TO_XYZ[1], 0, 1)) * 65535
    assert np.abs(y.astype(np.float64) - want).max() <= 2  # the luminance, encoded: untouched after that
    assert colour_of(got[0]) > 3.0
    with pytest.raises(OutputError, match="frames are read, not written"):
        colorize_video(out, str(tmp_path / "x_%03d.exr"), FFV1, colorizer=colorizer)
