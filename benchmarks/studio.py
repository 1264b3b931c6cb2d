"""The studio, timed as a user meets it, and screenshots of the page at each step.

    python -m benchmarks.studio                       # 720p film made from the shared clips
    python -m benchmarks.studio --runs 5 --clicks 30 --shots-dir /tmp/studio_shots

The film: the first --frames frames of three 720p colour clips of ../shared/data/video
(dog, cups, juggle), turned gray and joined with hard cuts into one H.264 file at 25 fps
(three shots; made once in a temporary folder). Measured:

- start: from launching `streamcolor studio FILM` (a new process: imports, the hint model,
  opening the film) to the first colorized frame on the page, in headless Chromium already
  running (the page is opened as soon as the command prints its URL; the time ends when the
  page has drawn frame 0). Also to the first GET /api/frame answered, without a browser.
  Median and worst of --runs runs. Target: under 3 s.
- click: a click on the frame (Chromium's input events) to the re-coloured frame drawn on
  the page (the page's own performance.now() around its click handler: the hints file PUT,
  the frame and the hints' places fetched and shown), --clicks clicks at random places and
  colours, hints accumulating (so the last clicks carry --clicks hints). p50/p95/max.
  Target: p95 under 0.5 s.

Screenshots (PNG) of each step go to --shots-dir: opened, a hint given, side by side, the
next shot, the shot preview playing, the render done.
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from benchmarks.common import SHARED, save_result

CLIPS = ("dog_720p_audio.mp4", "cups_720p_audio.mp4", "juggle_720p.mp4")
ROOT = Path(__file__).resolve().parents[1]


def make_film(path: Path, frames: int) -> Path:
    """Three shared 720p clips' first `frames` frames, gray, joined by hard cuts, 25 fps H.264."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=25, options={"preset": "veryfast", "crf": "20"})
        v.width, v.height, v.pix_fmt = 1280, 720, "yuv420p"
        v.time_base = Fraction(1, 25)
        pts = 0
        for name in CLIPS:
            with av.open(str(SHARED / "video" / name)) as c:
                for n, f in enumerate(c.decode(video=0)):
                    if n >= frames:
                        break
                    g = f.reformat(width=1280, height=720, format="gray").to_ndarray()
                    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(g), format="gray").reformat(
                        format="yuv420p"
                    )
                    frame.pts, frame.time_base = pts, Fraction(1, 25)
                    pts += 1
                    for p in v.encode(frame):
                        out.mux(p)
        for p in v.encode():
            out.mux(p)
    return path


def start_studio(film: Path, hints: Path) -> tuple[subprocess.Popen, str, float]:
    """Launch the command; -> (process, its URL, perf_counter at launch)."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "streamcolor", "studio", str(film), "--hints", str(hints), "--port", "0"]
    proc = subprocess.Popen([*cmd, "--no-browser"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    line = proc.stderr.readline()
    if "studio: http" not in line:
        proc.kill()
        raise RuntimeError(f"the studio did not start: {line.strip()}")
    return proc, line.split()[2], t0


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(2)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def screenshot(browser, path: Path | None, scale: float = 1.0, colours: int = 0) -> None:
    """The page's top 1360x720 CSS pixels as PNG, `scale` times that size; colours: a palette
    of that many colours (Pillow's median cut, dithered: about a third of the bytes), 0 keeps
    every colour."""
    if path is None:
        return
    clip = {"x": 0, "y": 0, "width": 1360, "height": 720, "scale": scale}
    data = base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png", "clip": clip}, timeout=30)["data"])
    if colours:
        import io

        from PIL import Image

        img = Image.open(io.BytesIO(data)).convert("RGB").quantize(colours, Image.Quantize.MEDIANCUT)
        img.save(path, optimize=True)
    else:
        path.write_bytes(data)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=100, help="frames taken from each clip (one shot each)")
    ap.add_argument("--runs", type=int, default=5, help="studio starts timed")
    ap.add_argument("--clicks", type=int, default=30, help="clicks timed")
    ap.add_argument("--shots-dir", type=Path, default=None, help="write the page's screenshots (PNG) here")
    ap.add_argument("--shot-scale", type=float, default=1.0, help="screenshots at this share of the page's pixels")
    ap.add_argument("--shot-colours", type=int, default=0, help="screenshots with a palette of this many colours")
    ap.add_argument(
        "--out", type=Path, default=None, help="result JSON (default benchmarks/results/studio_<date>.json)"
    )
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    from test_live import find_chromium  # the tests' DevTools-on-a-pipe driver, no extra packages
    from test_live_hints import Chromium

    exe = find_chromium()
    if exe is None:
        raise SystemExit("benchmarks.studio: needs Chromium (Debian's chromium)")
    if args.shots_dir:
        args.shots_dir.mkdir(parents=True, exist_ok=True)

    def shot(name: str) -> None:
        screenshot(browser, args.shots_dir / name if args.shots_dir else None, args.shot_scale, args.shot_colours)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        film = make_film(tmp / "film720.mp4", args.frames)
        print(f"film: {film.name}, 1280x720, {3 * args.frames} frames, made in {time.perf_counter() - t:.1f} s")
        browser = Chromium(exe, str(tmp / "profile"))
        browser.open("about:blank")
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1360, "height": 820, "deviceScaleFactor": 1, "mobile": False},
        )
        starts_page, starts_api = [], []
        try:
            for run in range(args.runs):
                # without a browser: the first colorized frame answered
                proc, url, t0 = start_studio(film, tmp / f"api{run}.toml")
                try:
                    get(url + "api/frame?frame=0&width=1037")
                    starts_api.append(time.perf_counter() - t0)
                finally:
                    stop(proc)
                # on the page
                proc, url, t0 = start_studio(film, tmp / f"page{run}.toml")
                try:
                    browser.send("Page.navigate", {"url": url})
                    browser.wait_for("document.getElementById('status').dataset.firstFrame === '1'", 60)
                    starts_page.append(time.perf_counter() - t0)
                finally:
                    if run < args.runs - 1:
                        stop(proc)
                print(
                    f"start {run + 1}: first frame on the page {starts_page[-1]:.2f} s, "
                    f"by the API {starts_api[-1]:.2f} s"
                )
            # the last run stays open: clicks and screenshots
            try:
                end = time.monotonic() + 120
                while not json.loads(get(url + "api/shots"))["complete"] and time.monotonic() < end:
                    time.sleep(0.2)
                browser.wait_for(
                    "Array.from(document.querySelectorAll('.shot img')).every(i => i.complete && i.naturalWidth)", 60
                )
                shot("studio_1_opened.png")
                rect = browser.js(
                    "(() => { const r = document.getElementById('frame').getBoundingClientRect();"
                    " return [r.left, r.top, r.width, r.height]; })()"
                )

                def click(x: float, y: float, colour: str) -> None:
                    n = browser.js("window.clickMs.length")
                    browser.js(f"document.getElementById('pick').value = '{colour}'")
                    browser.click(rect[0] + x * rect[2], rect[1] + y * rect[3])
                    browser.wait_for(f"window.clickMs.length === {n + 1}", 30)

                def open_shot(k: int) -> None:
                    browser.js(f"document.querySelector(\".shot[data-shot='{k}']\").click()")
                    browser.wait_for(f"document.getElementById('frameinfo').textContent.includes('shot {k + 1}')", 30)

                click(0.25, 0.52, "#2a4a8a")  # shot 1: the woman's jeans, denim blue
                shot("studio_2_hint.png")
                browser.js("document.querySelector('input[name=view][value=side]').click()")
                browser.wait_for(
                    "!document.getElementById('graypic').hidden && document.getElementById('gray').naturalWidth", 10
                )
                time.sleep(1.0)
                shot("studio_3_side_by_side.png")
                browser.js("document.querySelector('input[name=view][value=color]').click()")
                open_shot(1)
                click(0.52, 0.6, "#1e50d0")  # shot 2: the middle cup, blue
                shot("studio_4_next_shot.png")
                browser.js("document.getElementById('play').click()")
                browser.wait_for("document.getElementById('previewinfo').textContent.startsWith('playing')", 300)
                time.sleep(1.2)
                shot("studio_5_preview.png")
                browser.js("document.getElementById('stop').click()")
                open_shot(2)  # the timed clicks, on shot 3: random places and colours, hints piling up
                rng = np.random.default_rng(0)
                before = browser.js("window.clickMs.length")
                places: list[np.ndarray] = []
                while len(places) < args.clicks:  # apart from each other: a click on a marker picks it up
                    p = rng.uniform(0.08, 0.92, 2)
                    if all(np.abs(p - q).max() > 0.04 for q in places):
                        places.append(p)
                for x, y in places:
                    click(x, y, "#{:02x}{:02x}{:02x}".format(*rng.integers(0, 256, 3)))
                clicks = [v / 1000 for v in browser.js("window.clickMs")[before:]]
                browser.js("document.getElementById('render').click()")
                browser.wait_for(
                    "/^[1-9][0-9]*\\/[0-9]+ frames/.test(document.getElementById('renderinfo').textContent)", 60
                )
                shot("studio_6_rendering.png")
                browser.wait_for("document.getElementById('renderinfo').textContent.startsWith('written')", 600)
                render = json.loads(get(url + "api/render"))
                open_shot(1)
                shot("studio_7_rendered.png")
            finally:
                stop(proc)
        finally:
            browser.close()

    def stats(v: list[float]) -> dict:
        a = np.array(v)
        return {
            "n": len(v),
            "median_s": round(float(np.median(a)), 3),
            "p95_s": round(float(np.percentile(a, 95)), 3),
            "max_s": round(float(a.max()), 3),
        }

    result = {
        "film": {"clips": list(CLIPS), "frames_each": args.frames, "size": "1280x720", "shots": 3},
        "start_to_first_frame_on_page": stats(starts_page),
        "start_to_first_frame_api": stats(starts_api),
        "click_to_recoloured_frame": stats(clicks),
        "click_hints_at_end": args.clicks,
        "render": {k: render.get(k) for k in ("frames", "elapsed_s", "fps")},
        "targets": {"start_s": 3.0, "click_p95_s": 0.5},
    }
    path = save_result("studio", result, args.out)
    print(json.dumps({k: v for k, v in result.items() if k != "film"}, indent=1))
    print(f"saved {path}")
    return result


if __name__ == "__main__":
    main()
