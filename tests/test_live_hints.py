"""Colour hints in live mode: clicks on the preview page (POST /hint), the colorize loop
switching to the hint model at the first hint and applying it causally, 'save hints', and
the stream/webcam --hints/--save-hints flags. The page is driven in a real headless Chromium
through the DevTools protocol on a pipe (no extra packages)."""

from __future__ import annotations

import fcntl
import json
import os
import select
import shlex
import subprocess
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from media import make_video, read_video
from test_live import fetch, find_chromium, gray_scenes, start_sender
from typer.testing import CliRunner

from benchmarks.live_latency import free_udp_port
from streamcolor.api import ColorizeConfig, make_colorizer
from streamcolor.capture import SourceSpec
from streamcolor.cli import app
from streamcolor.config import LiveConfig
from streamcolor.errors import ConfigError
from streamcolor.hints.file import Hint, HintFile, dump_hints, parse_hints
from streamcolor.hints.live import LiveHints
from streamcolor.live import LiveControls, run_live
from streamcolor.model import HINTS_MODEL
from streamcolor.preview import PreviewServer

FAST = LiveConfig(threads=2, read_timeout=0.6)
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def hint_colorizer():
    """The hint model (whatever weights it holds: the tests look at what reaches it)."""
    return make_colorizer(ColorizeConfig(model=HINTS_MODEL, threads=2))


def post(url: str, body: object, headers: dict | None = None) -> tuple[int, bytes]:
    return fetch(url, json.dumps(body).encode(), {**JSON, **(headers or {})})


def plain(h: Hint) -> Hint:
    return replace(h, line=0)


class Recorder:
    """A stand-in for the preview server: keeps what each published frame was, and runs
    `actions[n]` right after the n-th frame (from 0) is shown (as a click arriving then would)."""

    def __init__(self, actions: dict | None = None):
        self.actions = actions or {}
        self.frames: list[dict] = []

    def publish(self, f, info, status) -> None:
        self.frames.append(
            {
                "index": f.index,
                "seconds": f.seconds,
                "hinted": f.hinted,
                "chroma": [c.copy() for c in f.chroma],
                "state": status["hints_state"],
            }
        )
        if len(self.frames) - 1 in self.actions:
            self.actions[len(self.frames) - 1]()


# --- the routes and the session's hints --------------------------------------------------


def test_hint_routes_take_a_click_refuse_bad_requests_and_save_the_session():
    controls = LiveControls("causal")
    with PreviewServer("127.0.0.1", 0, controls=controls) as server:
        controls.hints.shown(1.5, 37)  # the output shows the frame at 1.5 s
        code, body = post(server.url + "hint", {"x": 0.25, "y": 0.75, "color": "#ff8000"})
        assert code == 200, body
        answer = json.loads(body)
        assert answer["hints"] == 1 and answer["hint"] == {"x": 0.25, "y": 0.75, "color": "#ff8000", "time": 1.5}
        assert controls.hints.session().hints == (Hint(0.25, 0.75, (255, 128, 0), time=1.5, until="cut"),)

        bad = [
            ({"x": 0.2, "y": 0.2, "color": "#ff80"}, "color"),
            ({"x": 0.2, "y": 0.2, "color": "no such colour"}, "color"),
            ({"x": 0.2, "y": 0.2, "color": 255}, "color"),
            ({"x": 1.5, "y": 0.2, "color": "#ff0000"}, "position"),
            ({"x": 0.2, "y": -0.1, "color": "#ff0000"}, "position"),
            ({"x": "0.2", "y": 0.2, "color": "#ff0000"}, "position"),
            ({"x": True, "y": 0.2, "color": "#ff0000"}, "position"),
            ({"x": float("nan"), "y": 0.2, "color": "#ff0000"}, "position"),
            ({"x": 0.2, "color": "#ff0000"}, "JSON object"),
            ([0.2, 0.2, "#ff0000"], "JSON object"),
            ({"stroke": [[0.2, 0.2]], "color": "#ff0000"}, "2 to 512 points"),
            ({"stroke": [[0.2, 0.2], [1.2, 0.3]], "color": "#ff0000"}, "fractions in [0, 1]"),
            ({"stroke": [[0.2, 0.2], [0.3]], "color": "#ff0000"}, "fractions in [0, 1]"),
            ({"stroke": "0.2 0.2", "color": "#ff0000"}, "2 to 512 points"),
        ]
        for request, why in bad:
            code, body = post(server.url + "hint", request)
            assert code == 400 and why in body.decode(), (request, body)
            assert body.decode().count("\n") == 1, body  # one line
        code, body = fetch(server.url + "hint", b'{"x": 0.2, "y":', JSON)
        assert code == 400 and body.startswith(b"bad JSON") and body.count(b"\n") == 1
        assert controls.hints.count == 1  # none of those was taken

        # the checks the page already had, for the new routes too
        code, _ = post(server.url + "hint", {"x": 0.5, "y": 0.5, "color": "red"}, {"Host": "evil.example:80"})
        assert code == 403
        code, _ = fetch(server.url + "hints.toml", headers={"Host": "evil.example:80"})
        assert code == 403
        code, _ = post(server.url + "hint", {"x": 0.5, "y": 0.5, "color": "red"}, {"Origin": "http://evil.example"})
        assert code == 403  # another page's request to 127.0.0.1
        assert controls.hints.count == 1

        controls.hints.shown(2.0, 50)
        code, _ = post(server.url + "hint", {"x": 0.5, "y": 0.5, "color": "firebrick"})
        assert code == 200 and controls.hints.count == 2
        code, body = post(server.url + "hint", {"stroke": [[0.1, 0.2], [0.3, 0.4], [0.5, 0.4]], "color": "#0000ff"})
        assert code == 200 and json.loads(body)["hint"]["stroke"] == [[0.1, 0.2], [0.3, 0.4], [0.5, 0.4]]
        assert controls.hints.session().hints[-1].stroke == ((0.1, 0.2), (0.3, 0.4), (0.5, 0.4))
        code, stats = fetch(server.url + "stats")
        assert json.loads(stats)["hints"] == 3

        code, text = fetch(server.url + "hints.toml")
        assert code == 200
        saved = parse_hints(text.decode())
        assert [plain(h) for h in saved.hints] == list(controls.hints.session().hints)
        assert saved.hints[1].rgb == (178, 34, 34) and saved.hints[1].time == 2.0

        controls.hints.shown(3.0, 75)
        code, body = fetch(server.url + "hint/clear", b"{}", JSON)
        assert code == 200 and json.loads(body)["hints"] == 0 and controls.hints.count == 0
        code, text = fetch(server.url + "hints.toml")
        # cleared hints end when they were cleared: the file replays the session
        assert [(h.time, h.until) for h in parse_hints(text.decode()).hints] == [(1.5, 3.0), (2.0, 3.0), (2.0, 3.0)]


def test_clear_ends_the_hints_shown_and_keeps_a_files_later_ones():
    start = Hint(0.1, 0.1, (255, 0, 0), time=0.0)
    later = Hint(0.2, 0.2, (0, 255, 0), time=10.0)
    by_frame = Hint(0.3, 0.3, (0, 0, 255), time=None, frame=5)
    over = Hint(0.4, 0.4, (9, 9, 9), time=0.5, until=1.0)
    hints = LiveHints(HintFile((start, later, by_frame, over)))
    hints.shown(2.0, 50)
    clicked = hints.add(0.5, 0.5, (1, 2, 3))
    hints.shown(4.0, 100)
    now = hints.add(0.6, 0.6, (4, 5, 6))  # given on the frame shown at the clear: it never showed
    assert now.time == 4.0 and hints.count == 2
    with pytest.raises(ConfigError, match=r"fractions in \[0, 1\]"):
        hints.add(1.2, 0.5, (0, 0, 0))
    seen, every, new = hints.pull(None)
    assert every.hints == (start, later, by_frame, over, clicked, now) and new == []
    hints.clear()
    assert hints.version == seen + 1 and hints.count == 0
    assert hints.session().hints == (
        replace(start, until=4.0),
        later,  # still to come
        replace(by_frame, until=4.0),
        over,
        replace(clicked, until=4.0),
    )
    again = parse_hints(dump_hints(hints.session()))
    assert [plain(h) for h in again.hints] == list(hints.session().hints)


# --- the colorize loop -------------------------------------------------------------------


def test_a_clicked_hint_applies_from_the_next_frame_and_clear_drops_it(
    tmp_path, colorizer, hint_colorizer, monkeypatch
):
    clip = make_video(tmp_path / "in.mp4", width=160, height=120, frames=32, audio=False)
    spec = SourceSpec(str(clip))  # a file, not live: nothing is dropped, every frame is published
    base = Recorder()
    run_live(spec, None, FAST, preview=base, colorizer=colorizer, warn=lambda m: None, hint_colorizer=hint_colorizer)
    assert len(base.frames) == 32 and not any(f["hinted"] for f in base.frames)
    assert {f["state"] for f in base.frames} == {"off"}  # no hint: the automatic model all along

    planes = []  # what the hint model was given, per call
    predict_features = hint_colorizer.predict_features

    def spy(inputs, hints=None):
        planes.append(None if hints is None else hints[0])
        return predict_features(inputs, hints)

    monkeypatch.setattr(hint_colorizer, "predict_features", spy)
    controls = LiveControls("causal")
    click, clear = 8, 20
    rec = Recorder({click: lambda: controls.hints.add(0.5, 0.75, (255, 0, 0)), clear: controls.hints.clear})
    warnings: list[str] = []
    s = run_live(
        spec,
        None,
        FAST,
        preview=rec,
        colorizer=colorizer,
        controls=controls,
        warn=warnings.append,
        hint_colorizer=hint_colorizer,
    )
    assert s.frames_out == 32 and not warnings
    hinted = [f["index"] for f in rec.frames if f["hinted"]]
    first = hinted[0]
    # causal: nothing up to the frame shown at the click changes (same model, same picture)...
    assert click < first <= click + 3  # ...the next frame colorized takes it (1-frame queues between stages)
    for a, b in zip(base.frames[: click + 1], rec.frames[: click + 1]):
        assert not a["hinted"] and all(np.array_equal(x, y) for x, y in zip(a["chroma"], b["chroma"]))
    assert not all(np.array_equal(x, y) for x, y in zip(base.frames[first]["chroma"], rec.frames[first]["chroma"]))
    assert hinted == list(range(first, hinted[-1] + 1))  # every frame from then on, until the clear
    assert clear <= hinted[-1] <= clear + 3
    assert rec.frames[first]["state"] == "on" and controls.hints.state == "off"  # back to the automatic model

    # the hint model got the hint where it was clicked, in red (a* > 0), and nothing else
    given = [p for p in planes if p is not None]
    assert len(given) == len(hinted)
    p = given[0]
    ys, xs = np.nonzero(p[2])
    h, w = p.shape[1:]
    assert abs(xs.mean() / w - 0.5) < 0.05 and abs(ys.mean() / h - 0.75) < 0.05
    assert (p[0][p[2] > 0] > 0.1).all()

    # what 'save hints' writes: the hint from the frame shown at the click to the one at the clear
    (hint,) = controls.hints.session().hints
    assert hint.time == pytest.approx(rec.frames[click]["seconds"]) and hint.until == pytest.approx(
        rec.frames[clear]["seconds"]
    )
    assert (hint.x, hint.y, hint.rgb) == (0.5, 0.75, (255, 0, 0))


def test_hints_file_applies_from_its_time_and_a_missing_hint_model_is_one_warning(tmp_path, colorizer, hint_colorizer):
    clip = make_video(tmp_path / "in.mp4", width=96, height=64, frames=20, audio=False)
    spec = SourceSpec(str(clip))
    hf = HintFile((Hint(0.3, 0.3, (0, 0, 255), time=0.4),))
    rec = Recorder()
    warnings: list[str] = []
    s = run_live(
        spec,
        None,
        replace(FAST, hints=hf),
        preview=rec,
        colorizer=colorizer,
        warn=warnings.append,
        hint_colorizer=hint_colorizer,
    )
    assert s.frames_out == 20 and not warnings
    assert {f["state"] for f in rec.frames} == {"on"}  # the hint model from the start
    assert [f["hinted"] for f in rec.frames] == [f["seconds"] >= 0.4 - 1e-9 for f in rec.frames]

    controls = LiveControls("causal")
    rec = Recorder({3: lambda: controls.hints.add(0.5, 0.5, (0, 255, 0))})
    cfg = replace(FAST, hints_model=tmp_path / "missing.onnx")
    s = run_live(spec, None, cfg, preview=rec, colorizer=colorizer, controls=controls, warn=warnings.append)
    assert s.frames_out == 20 and not any(f["hinted"] for f in rec.frames)
    assert len(warnings) == 1 and "hints are off" in warnings[0] and "\n" not in warnings[0]
    assert controls.hints.state == "failed" and len(controls.hints.session().hints) == 1  # still saved


def test_a_network_streams_hints_are_on_the_recordings_clock(tmp_path, colorizer, hint_colorizer):
    """A camera's or a stream's own timestamps mean nothing after a reconnect: its hints are
    timed by arrival, the clock of OUT and --record, so a saved session replays on the recording."""
    port = free_udp_port()
    controls = LiveControls("causal")
    rec = Recorder({12: lambda: controls.hints.add(0.5, 0.5, (255, 0, 0))})
    stop = threading.Event()
    tx = start_sender(f"udp://127.0.0.1:{port}?pkt_size=1316", gray_scenes(75))
    timer = threading.Timer(2.2, stop.set)  # before the sender ends: no reconnection to wait for
    timer.start()
    record = tmp_path / "rec.mkv"
    run_live(
        SourceSpec(f"udp://127.0.0.1:{port}"),
        None,
        FAST,
        record=record,
        preview=rec,
        stop=stop,
        controls=controls,
        warn=lambda m: None,
        colorizer=colorizer,
        hint_colorizer=hint_colorizer,
    )
    timer.cancel()
    tx.join(5)
    times = read_video(record)["times"]
    assert len(rec.frames) > 20 and len(times) >= len(rec.frames)  # (+ the last frame held, on a slow machine)
    assert np.allclose(times[: len(rec.frames)], [f["seconds"] for f in rec.frames], atol=0.0015)
    (hint,) = controls.hints.session().hints
    shown = 12
    assert hint.time == pytest.approx(times[shown], abs=0.0015)
    first = next(i for i, f in enumerate(rec.frames) if f["hinted"])
    assert shown < first <= shown + 3 and times[first] > hint.time


# --- the command line --------------------------------------------------------------------


def test_stream_hints_and_save_hints_replay_with_video(tmp_path):
    clip = make_video(tmp_path / "in.mp4", width=96, height=64, frames=12, audio=False)
    given = tmp_path / "given.toml"
    given.write_text(dump_hints(HintFile((Hint(0.25, 0.5, (200, 30, 30), time=0.2),))))
    saved = tmp_path / "saved.toml"
    runner = CliRunner()
    args = ["stream", str(clip), "--record", str(tmp_path / "rec.mkv"), "--threads", "2", "--quiet"]
    r = runner.invoke(app, [*args, "--hints", str(given), "--save-hints", str(saved)])
    assert r.exit_code == 0, r.output
    assert [plain(h) for h in parse_hints(saved.read_text()).hints] == [
        plain(h) for h in parse_hints(given.read_text()).hints
    ]
    # the saved session replays on the file
    r = runner.invoke(
        app, ["video", str(clip), str(tmp_path / "out.mp4"), "--hints", str(saved), "-q", "--threads", "2"]
    )
    assert r.exit_code == 0, r.output

    # an existing --save-hints file is refused before anything starts, as OUT is
    r = runner.invoke(app, ["stream", str(clip), "--record", str(tmp_path / "r2.mkv"), "--save-hints", str(saved)])
    assert r.exit_code == 1 and "output exists" in r.output and "--overwrite" in r.output
    assert not (tmp_path / "r2.mkv").exists()
    r = runner.invoke(app, ["webcam", "--save-hints", str(saved)])
    assert r.exit_code == 1 and "output exists" in r.output  # before looking for a camera
    r = runner.invoke(
        app, ["stream", str(clip), "--record", str(tmp_path / "r3.mkv"), "--hints", str(tmp_path / "no.toml")]
    )
    assert r.exit_code == 2 and "hints file not found" in r.output and "Traceback" not in r.output
    (tmp_path / "bad.toml").write_text('[[hint]]\nat = [0.5, 0.5]\ncolor = "#zzzzzz"\n')
    r = runner.invoke(app, ["webcam", "--hints", str(tmp_path / "bad.toml")])
    assert r.exit_code == 2 and "line 3" in r.output and len(r.output.strip().splitlines()) == 1


# --- the page in a real browser ----------------------------------------------------------


class Chromium:
    """Headless Chromium driven through the DevTools protocol on a pipe (fd 3 in, fd 4 out,
    one JSON message per NUL): no WebSocket client needed."""

    def __init__(self, exe: str, profile: str):
        to_child, self._w = os.pipe()
        self._r, from_child = os.pipe()
        # above 9 so that the shell's own 3< and 4> cannot clobber them; bash takes fds > 9
        hi = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child, from_child)]
        os.close(to_child)
        os.close(from_child)
        args = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1400,700",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        cmd = f"exec {shlex.join(args)} 3<&{hi[0]} 4>&{hi[1]} {hi[0]}<&- {hi[1]}>&-"
        self.proc = subprocess.Popen(
            ["bash", "-c", cmd],
            pass_fds=hi,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fd in hi:
            os.close(fd)
        self._buf = b""
        self._id = 0
        self.session: str | None = None

    def send(self, method: str, params: dict | None = None, timeout: float = 15) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
            left = end - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError(method)
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                raise EOFError("Chromium closed the pipe")
            self._buf += chunk

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": url})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def js(self, expression: str):
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(r["exceptionDetails"].get("text"))
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                value = self.js(expression)
            except RuntimeError:  # the page is not there yet
                value = None
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(expression)

    def click(self, x: float, y: float) -> None:
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def drag(self, points: list[tuple[float, float]]) -> None:
        """Press at the first point, move through the others, release at the last."""
        (x0, y0), *rest = points
        self.send(
            "Input.dispatchMouseEvent", {"type": "mousePressed", "x": x0, "y": y0, "button": "left", "clickCount": 1}
        )
        for x, y in rest:
            self.send(
                "Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y, "button": "left", "buttons": 1}
            )
        x, y = points[-1]
        self.send(
            "Input.dispatchMouseEvent", {"type": "mouseReleased", "x": x, "y": y, "button": "left", "clickCount": 1}
        )

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
            self.proc.wait(10)
        except (OSError, EOFError, TimeoutError, RuntimeError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(10)
        finally:
            os.close(self._w)
            os.close(self._r)


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium here (.ci/run installs Debian's chromium as root)")
def test_clicking_the_output_in_a_headless_browser_gives_a_hint(tmp_path, colorizer, hint_colorizer):
    clip = make_video(tmp_path / "in.mp4", width=320, height=240, frames=250, audio=False)
    stop = threading.Event()
    controls = LiveControls("causal")
    with PreviewServer("127.0.0.1", 0, controls=controls) as server:
        th = threading.Thread(
            target=run_live,
            args=(SourceSpec(str(clip), realtime=True), None, FAST),
            kwargs=dict(
                preview=server,
                stop=stop,
                warn=lambda m: None,
                colorizer=colorizer,
                controls=controls,
                hint_colorizer=hint_colorizer,
            ),
        )
        th.start()
        browser = Chromium(find_chromium(), str(tmp_path / "profile"))
        try:
            browser.open(server.url)
            box = browser.wait_for(
                "(() => { const i = document.getElementById('out'); if (!i.naturalWidth) return null;"
                " const r = i.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()"
            )
            left, top, width, height = box
            assert width > 100 and height > 50
            browser.click(left + 0.25 * width, top + 0.75 * height)  # opens the colour picker
            browser.wait_for("document.getElementById('hintinfo').textContent.startsWith('pick the colour')", 5)
            assert controls.hints.count == 0  # nothing sent before a colour is picked
            browser.js(
                "(() => { const p = document.getElementById('pick'); p.value = '#00c000';"
                " p.dispatchEvent(new Event('change', {bubbles: true})); })()"
            )
            end = time.monotonic() + 5
            while controls.hints.count == 0 and time.monotonic() < end:
                time.sleep(0.05)
            (hint,) = controls.hints.session().hints
            assert hint.rgb == (0, 192, 0) and hint.until == "cut"
            assert hint.x == pytest.approx(0.25, abs=0.01) and hint.y == pytest.approx(0.75, abs=0.01)
            assert hint.time > 0  # the time of a frame shown
            browser.wait_for("document.getElementById('stats').textContent.includes('1 hint')", 5)
            browser.wait_for("document.getElementById('hintinfo').textContent.includes('#00c000')", 5)
            end = time.monotonic() + 10
            while controls.hints.state != "on" and time.monotonic() < end:
                time.sleep(0.05)
            assert controls.hints.state == "on"  # the colorize loop switched to the hint model

            text = browser.js("fetch(document.getElementById('save').href).then(r => r.text())")
            assert [plain(h) for h in parse_hints(text).hints] == [hint]

            bl, bt, bw, bh = browser.js(
                "(() => { const r = document.getElementById('clear').getBoundingClientRect();"
                " return [r.left, r.top, r.width, r.height]; })()"
            )
            browser.click(bl + bw / 2, bt + bh / 2)
            browser.wait_for("document.getElementById('hintinfo').textContent === 'hints cleared'", 5)
            assert controls.hints.count == 0
            browser.wait_for("document.getElementById('stats').textContent.includes('0 hints')", 5)

            # a drag is a stroke along the points it passed
            browser.drag([(left + f * width, top + (0.2 + 0.5 * f) * height) for f in np.linspace(0.1, 0.6, 12)])
            browser.wait_for("document.getElementById('hintinfo').textContent.includes('the stroke of')", 5)
            browser.js(
                "(() => { const p = document.getElementById('pick'); p.value = '#0000ff';"
                " p.dispatchEvent(new Event('change', {bubbles: true})); })()"
            )
            end = time.monotonic() + 5
            while controls.hints.count == 0 and time.monotonic() < end:
                time.sleep(0.05)
            stroke = controls.hints.session().hints[-1]
            assert stroke.rgb == (0, 0, 255) and len(stroke.stroke) >= 6
            assert stroke.stroke[0] == pytest.approx((0.1, 0.25), abs=0.01)
            assert stroke.stroke[-1] == pytest.approx((0.6, 0.5), abs=0.01)
            text = browser.js("fetch(document.getElementById('save').href).then(r => r.text())")
            assert plain(parse_hints(text).hints[-1]) == stroke
        finally:
            browser.close()
            stop.set()
            th.join(10)
