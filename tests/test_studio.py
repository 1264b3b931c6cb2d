"""The studio (`streamcolor studio`): its HTTP API on a generated two-shot clip, the hints
file it saves, its refusals, and the page driven in headless Chromium as a user would:
click the frame to give a hint, see it land, move to the second shot, render."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from media import make_shots_video, read_video, scene
from test_live import find_chromium
from test_live_hints import Chromium

from streamcolor.cli import run
from streamcolor.hints.file import load_hints, parse_hints
from streamcolor.studio import Studio, StudioServer, default_hints_path
from training.evaluate import ciede2000

SHOTS = (24, 24)  # two shots made by a hard cut (the second is the negative of the first)
W, H = 160, 96
SPOT = (0.25, 0.8)  # on the ground, away from the moving box
# the hint's chroma (CIE a*, b*): a purple nothing in the clip has; its L* is the pixel's own
HINT_AB = (45.0, -40.0)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_shots_video(tmp_path_factory.mktemp("studio") / "reel.mp4", SHOTS, W, H)


def request(url: str, data: bytes | None = None, method: str | None = None, headers: dict | None = None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def lab_at(jpeg_or_rgb, x: float, y: float) -> np.ndarray:
    """Mean CIE L*a*b* of a 5x5 patch at (x, y) fractions of a JPEG (bytes) or RGB uint8 array."""
    if isinstance(jpeg_or_rgb, bytes):
        bgr = cv2.imdecode(np.frombuffer(jpeg_or_rgb, np.uint8), cv2.IMREAD_COLOR)
        rgb = bgr[..., ::-1]
    else:
        rgb = jpeg_or_rgb
    h, w = rgb.shape[:2]
    cx, cy = int(x * w), int(y * h)
    patch = rgb[cy - 2 : cy + 3, cx - 2 : cx + 3].astype(np.float32) / 255.0
    return cv2.cvtColor(patch, cv2.COLOR_RGB2Lab).reshape(-1, 3).mean(axis=0)


def hint_colour(gray_lightness: float) -> tuple[str, np.ndarray]:
    """('#rrggbb', its L*a*b*): HINT_AB at the pixel's L*, shrunk into the sRGB gamut. The
    studio keeps the film's lightness (only a*b* are the user's), so this is the colour a
    hint can give there."""
    for s in np.linspace(1.0, 0.2, 17):
        lab = np.float32([[[gray_lightness, HINT_AB[0] * s, HINT_AB[1] * s]]])
        rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)[0, 0]
        if (rgb >= 0).all() and (rgb <= 1).all():
            rgb8 = np.round(rgb * 255).astype(np.uint8)
            back = cv2.cvtColor(rgb8[None, None].astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[0, 0]
            return "#{:02x}{:02x}{:02x}".format(*rgb8), back
    raise AssertionError("no colour in gamut")


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    return float(ciede2000(np.asarray(a)[None], np.asarray(b)[None])[0])


def test_api_frame_takes_a_put_hint_saves_it_and_keeps_the_last_good_hints(clip, tmp_path):
    hints_file = tmp_path / "mine.hints.toml"
    with Studio(clip, hints_file, threads=2) as st, StudioServer(st, 0) as server:
        url = server.url
        assert st.film.wait_scanned(60)
        code, body = request(url + "api/shots")
        assert code == 200
        shots = json.loads(body)
        assert shots["complete"] and shots["frames"] == sum(SHOTS)
        assert [(s["start"], s["end"]) for s in shots["shots"]] == [(0, 24), (24, 48)]
        assert shots["shots"][1]["start_s"] == pytest.approx(24 / 25) and shots["shots"][1]["end_s"] == pytest.approx(
            48 / 25
        )

        frame = 5
        code, gray = request(url + f"api/frame?frame={frame}&view=gray")
        assert code == 200
        hexc, want = hint_colour(float(lab_at(gray, *SPOT)[0]))
        code, before = request(url + f"api/frame?frame={frame}")
        assert code == 200 and delta_e(lab_at(before, *SPOT), want) > 15  # not that colour without the hint

        text = f'[[hint]]\nframe = {frame}\nat = [{SPOT[0]}, {SPOT[1]}]\ncolor = "{hexc}"\n'
        code, body = request(url + "api/hints", text.encode(), "PUT")
        assert code == 200 and json.loads(body)["hints"] == 1
        assert hints_file.read_text() == text  # saved at once, as given
        code, after = request(url + f"api/frame?frame={frame}")
        assert code == 200
        assert delta_e(lab_at(after, *SPOT), want) <= 10  # the target: within CIEDE2000 10
        # the same shot's later frames have it (carried along the flow); the next shot does not
        assert delta_e(lab_at(request(url + "api/frame?frame=20")[1], *SPOT), want) < 15
        code, other = request(url + "api/frame?frame=30")
        assert delta_e(lab_at(other, *SPOT), want) > 15

        # a file with an error: one line naming its line; the last good hints stay, on disk too
        bad = text + '\n[[hint]]\nat = [0.5, 0.5]\ncolor = "#12345"\n'
        code, body = request(url + "api/hints", bad.encode(), "PUT")
        assert code == 400 and b"line 8" in body and b"'color'" in body and body.count(b"\n") == 1
        assert request(url + "api/hints")[1].decode() == text and hints_file.read_text() == text
        code, again = request(url + f"api/frame?frame={frame}")
        assert delta_e(lab_at(again, *SPOT), want) <= 10
        code, body = request(url + "api/hints?format=json")
        assert "line 8" in json.loads(body)["error"]

        # a file changed on disk behind the studio's back is not overwritten
        hints_file.write_text("# edited by hand\n" + text)
        code, body = request(url + "api/hints", text.encode(), "PUT")
        assert code == 409 and b"changed on disk" in body and body.count(b"\n") == 1
        assert hints_file.read_text() == "# edited by hand\n" + text
        hints_file.write_text(text)  # as the studio wrote it: taken again

        # other origins refused, as the live preview refuses them (and GETs too here)
        for headers in (
            {"Origin": "http://evil.example"},
            {"Host": "evil.example"},
            {"Sec-Fetch-Site": "cross-site"},
        ):
            assert request(url + "api/hints", b"", "PUT", headers)[0] == 403
            assert request(url + "api/frame?frame=0", headers=headers)[0] == 403
            assert request(url + "api/render", b"{}", "POST", headers)[0] == 403
        assert hints_file.read_text() == text and st.render is None
        same = {"Origin": url.rstrip("/"), "Sec-Fetch-Site": "same-origin"}
        assert request(url + "api/shots", headers=same)[0] == 200

        # bad requests: one line each
        for path, code_wanted in (("api/frame?frame=999", 404), ("api/frame?frame=x", 400), ("api/frame", 400)):
            code, body = request(url + path)
            assert code == code_wanted and body.count(b"\n") == 1, (path, body)


def test_render_and_shot_preview_through_the_api(clip, tmp_path):
    film = tmp_path / "reel.mp4"
    film.write_bytes(clip.read_bytes())
    with Studio(film, threads=2) as st, StudioServer(st, 0) as server:
        url = server.url
        st.film.wait_scanned(60)
        hexc, want = hint_colour(float(lab_at(request(url + "api/frame?frame=10&view=gray")[1], *SPOT)[0]))
        text = f'[[hint]]\nframe = 10\nat = [{SPOT[0]}, {SPOT[1]}]\ncolor = "{hexc}"\n'
        assert request(url + "api/hints", text.encode(), "PUT")[0] == 200
        assert default_hints_path(film).read_text() == text  # FILM.hints.toml beside the film

        code, body = request(url + "api/preview", b'{"shot": 0}', "POST")
        assert code == 202
        status = wait_done(url + "api/preview")
        assert status["state"] == "done" and status["frames"] == SHOTS[0]
        # the hint reaches back to the shot's first frame, as the render does (bidirectional)
        first = request(url + "api/preview/frame?i=0")[1]
        assert delta_e(lab_at(first, *SPOT), want) < 15

        # a render cancelled (the page's cancel; the studio closing does the same): no file left
        code, body = request(url + "api/render", json.dumps({"out": "gone.mp4"}).encode(), "POST")
        assert code == 202
        code, body = request(url + "api/render", b'{"cancel": true}', "POST")
        assert code == 200 and json.loads(body)["state"] == "cancelled"
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("gone")) == []

        code, body = request(url + "api/render", json.dumps({"out": "cut.mkv", "codec": "ffv1"}).encode(), "POST")
        assert code == 202, body
        status = wait_done(url + "api/render")
        assert status["state"] == "done" and status["frames"] == sum(SHOTS) and status["eta_s"] == 0
        video = read_video(tmp_path / "cut.mkv")
        assert len(video["rgb"]) == sum(SHOTS) and video["codec"] == "ffv1"
        assert delta_e(lab_at(video["rgb"][10], *SPOT), want) <= 10
        # an existing output is refused in one line (the page's "replace" box is --overwrite)
        code, body = request(url + "api/render", json.dumps({"out": "cut.mkv"}).encode(), "POST")
        assert code == 409 and b"output exists" in body and body.count(b"\n") == 1


def test_reference_photo_for_one_shot_through_the_api(clip, tmp_path):
    film = tmp_path / "reel.mp4"
    film.write_bytes(clip.read_bytes())
    truth = scene(H, W, 5)  # frame 5 as it was, in colour: the first shot is the scene itself
    photo = cv2.imencode(".png", truth[..., ::-1])[1].tobytes()
    with Studio(film, threads=2) as st, StudioServer(st, 0) as server:
        url = server.url
        st.film.wait_scanned(60)
        before = request(url + "api/frame?frame=5")[1]
        other = request(url + "api/frame?frame=30")[1]

        code, body = request(url + "api/reference?name=still.png", photo, "POST")
        assert code == 200
        path = json.loads(body)["path"]
        assert path == "reel.hints.refs/still.png" and (tmp_path / path).read_bytes() == photo
        code, body = request(url + "api/reference?name=still.png", b"\x89PNG" + photo[4:], "POST")
        assert code == 200 and json.loads(body)["path"] == "reel.hints.refs/still-2.png"  # no file replaced
        assert (tmp_path / path).read_bytes() == photo
        code, body = request(url + "api/reference?name=notes.png", b"not a photo", "POST")
        assert code == 400 and b"not an image" in body and body.count(b"\n") == 1

        text = f'[[reference]]\npath = "{path}"\nfrom = 0\nto = {24 / 25}\n'
        assert request(url + "api/hints", text.encode(), "PUT")[0] == 200
        after = request(url + "api/frame?frame=5")[1]

        def error(jpeg: bytes) -> float:  # mean CIEDE2000 to the truth
            rgb = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
            lab = [cv2.cvtColor(x.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab) for x in (rgb, truth)]
            return float(ciede2000(*lab).mean())

        assert error(after) < error(before) - 5.0  # its colours taken (measured: 20.2 -> 6.3)
        assert request(url + "api/frame?frame=30")[1] == other  # the other shot left alone
        code, body = request(url + f"api/reference?path={path}")
        assert code == 200 and body == photo
        assert request(url + "api/reference?path=../reel.mp4")[0] == 404  # only the hints' references


def test_a_pinned_hint_is_found_again_in_a_later_shot(tmp_path):
    """Shot 3 returns to shot 1's scene (the red box moving right 3 px a frame): a hint pinned
    on the box in shot 1 is on the box again there, in its colour, as the render finds it."""
    film = make_shots_video(tmp_path / "reel.mp4", (24, 24, 24), W, H)
    with Studio(film, threads=2) as st, StudioServer(st, 0) as server:
        url = server.url
        st.film.wait_scanned(60)
        box_x = lambda i: ((i * 3) % (W - W // 4) + W // 8) / W  # noqa: E731 - the box's centre (media.scene)
        box_y = (H // 3 + H // 8) / H
        gray = request(url + "api/frame?frame=60&view=gray")[1]
        hexc, want = hint_colour(float(lab_at(gray, box_x(60), box_y)[0]))
        text = f'[[hint]]\nframe = 5\nat = [{box_x(5)}, {box_y}]\ncolor = "{hexc}"\nuntil = "pin"\n'
        assert request(url + "api/hints", text.encode(), "PUT")[0] == 200
        for i in (48, 60, 70):
            (shown,) = [h["shown"] for h in json.loads(request(url + f"api/hints?format=json&frame={i}")[1])["hints"]]
            assert shown is not None and abs(shown[0] - box_x(i)) < 0.06 and abs(shown[1] - box_y) < 0.06, (i, shown)
        assert delta_e(lab_at(request(url + "api/frame?frame=60")[1], box_x(60), box_y), want) <= 12
        (pin,) = st.hints_for_shot(st.film.shots()[2]).hints  # the shot preview gets it too, where found
        assert pin.frame == 48 and abs(pin.x - box_x(48)) < 0.06


def wait_done(url: str, timeout: float = 120) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = json.loads(request(url)[1])
        if status["state"] != "running":
            return status
        time.sleep(0.2)
    raise TimeoutError(url)


def test_studio_command_refuses_bad_input_in_one_line(clip, tmp_path, capfd):
    def studio(*args: str) -> tuple[int, str]:
        code = run(["studio", *args, "--no-browser", "--threads", "2"])
        err = capfd.readouterr().err
        return code, err

    code, err = studio(str(tmp_path / "missing.mp4"))
    assert code == 1 and "input not found" in err and len(err.strip().splitlines()) == 1
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    code, err = studio(str(junk))
    assert code == 1 and "cannot open" in err and len(err.strip().splitlines()) == 1

    # FILM.hints.toml that is not a hints file: refused, never overwritten
    film = tmp_path / "reel.mp4"
    film.write_bytes(clip.read_bytes())
    unrelated = default_hints_path(film)
    unrelated.write_text("title = 'my notes'\n")
    code, err = studio(str(film))
    assert code == 2 and "line 1" in err and "--hints" in err and len(err.strip().splitlines()) == 1
    assert unrelated.read_text() == "title = 'my notes'\n"
    (tmp_path / "notes.toml").write_text("[[hint]]\nat = [2, 0.5]\ncolor = 'red'\n")
    code, err = studio(str(film), "--hints", str(tmp_path / "notes.toml"))
    assert code == 2 and "line 2" in err and "'at'" in err

    code, err = studio(str(film), "--hints", str(tmp_path / "no such folder" / "h.toml"))
    assert code == 1 and "cannot write in" in err and len(err.strip().splitlines()) == 1

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = studio(str(film), "--hints", str(tmp_path / "new.toml"), "--port", str(port))
    assert code == 1 and f"port {port}" in err and "--port" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "new.toml").exists()


def test_studio_command_serves_until_ctrl_c(clip, tmp_path):
    """One real run of the command: it prints the URL, serves, and Ctrl-C ends it in one line."""
    film = tmp_path / "reel.mp4"
    film.write_bytes(clip.read_bytes())
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "streamcolor", "studio", str(film), "--port", "0", "--no-browser", "--threads", "2"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)
    try:
        line = proc.stderr.readline()
        assert line.startswith("streamcolor: studio: http://127.0.0.1:"), line
        url = line.split()[2]
        code, page = request(url)
        assert code == 200 and b"streamcolor studio" in page
        code, body = request(url + "api/hints", b'[[hint]]\nat = [0.5, 0.5]\ncolor = "navy"\n', "PUT")
        assert code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        proc.wait(20)
    assert proc.returncode == 130 and "interrupted" in rest and "Traceback" not in rest
    # one line, naming where the hints are, and no "unfinished output deleted" when nothing rendered
    assert len(rest.strip().splitlines()) == 1 and str(default_hints_path(film)) in rest and "deleted" not in rest
    assert parse_hints(default_hints_path(film).read_text()).hints[0].rgb == (0, 0, 128)  # nothing lost


SAMPLE = """(() => {{ const img = document.getElementById('frame');
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  const x = Math.floor({x} * c.width) - 2, y = Math.floor({y} * c.height) - 2;
  return Array.from(g.getImageData(x, y, 5, 5).data); }})()"""


# a colour photo (a sky-blue / grass-green picture, made on a canvas) dropped onto shot 2
DROP = """(async () => { const c = document.createElement('canvas'); c.width = 96; c.height = 64;
  const g = c.getContext('2d'); g.fillStyle = '#5a8ce6'; g.fillRect(0, 0, 96, 32);
  g.fillStyle = '#3c8c32'; g.fillRect(0, 32, 96, 32);
  const blob = await new Promise(r => c.toBlob(r, 'image/png'));
  const dt = new DataTransfer(); dt.items.add(new File([blob], 'sky grass.png', {type: 'image/png'}));
  document.querySelector(".shot[data-shot='1']").dispatchEvent(
    new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
  return true; })()"""


def shown_lab(browser: Chromium, x: float, y: float) -> np.ndarray:
    """Mean L*a*b* of the 5x5 pixels of the frame the page shows at (x, y) fractions."""
    px = np.array(browser.js(SAMPLE.format(x=x, y=y)), np.uint8).reshape(5, 5, 4)[..., :3]
    return cv2.cvtColor(px.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3).mean(axis=0)


def box(browser: Chromium, selector: str) -> list[float]:
    """[left, top, width, height] of the element in the window, scrolled into view if needed."""
    return browser.js(
        f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView({{block: 'nearest'}});"
        " const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()"
    )


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium here (.ci/run installs Debian's chromium as root)")
def test_page_in_a_headless_browser_click_hint_next_shot_render(clip, tmp_path):
    film = tmp_path / "reel.mp4"
    film.write_bytes(clip.read_bytes())
    with Studio(film, threads=2) as st, StudioServer(st, 0) as server:
        browser = Chromium(find_chromium(), str(tmp_path / "profile"))
        try:
            browser.open(server.url)
            browser.wait_for("document.getElementById('status').dataset.firstFrame === '1'", 30)
            browser.wait_for("document.querySelectorAll('.shot').length === 2", 30)
            assert browser.js("document.getElementById('frame').dataset.frame") == "0"
            gray = request(server.url + "api/frame?frame=0&view=gray")[1]
            hexc, want = hint_colour(float(lab_at(gray, *SPOT)[0]))
            assert delta_e(shown_lab(browser, *SPOT), want) > 15

            # pick the colour, click the frame there: the frame re-colours
            browser.js(f"document.getElementById('pick').value = '{hexc}'")
            left, top, width, height = box(browser, "#frame")
            browser.click(left + SPOT[0] * width, top + SPOT[1] * height)
            browser.wait_for("document.getElementById('frame').dataset.version === '1'", 20)
            assert delta_e(shown_lab(browser, *SPOT), want) <= 10
            assert browser.js("document.querySelectorAll('.marker').length") == 1
            (hint,) = parse_hints(default_hints_path(film).read_text()).hints  # saved at once
            assert (
                hint.frame == 0
                and hint.until == "cut"
                and hint.rgb == tuple(int(hexc[i : i + 2], 16) for i in (1, 3, 5))
            )
            assert hint.x == pytest.approx(SPOT[0], abs=0.01) and hint.y == pytest.approx(SPOT[1], abs=0.01)

            # undo takes it away, redo gives it back
            browser.click(*centre(box(browser, "#undo")))
            browser.wait_for("document.getElementById('hintinfo').textContent === 'undone'", 10)
            assert parse_hints(default_hints_path(film).read_text()).hints == ()
            browser.click(*centre(box(browser, "#redo")))
            browser.wait_for("document.getElementById('hintinfo').textContent === 'redone'", 10)
            assert len(parse_hints(default_hints_path(film).read_text()).hints) == 1

            # drag the marker elsewhere, recolour it: saved each time; undo twice: as it was
            left, top, width, height = box(browser, "#frame")
            mx, my = left + SPOT[0] * width, top + SPOT[1] * height
            tx, ty = left + 0.6 * width, top + 0.3 * height
            browser.send(
                "Input.dispatchMouseEvent",
                {"type": "mousePressed", "x": mx, "y": my, "button": "left", "clickCount": 1},
            )
            browser.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": tx, "y": ty, "button": "left"})
            browser.send(
                "Input.dispatchMouseEvent",
                {"type": "mouseReleased", "x": tx, "y": ty, "button": "left", "clickCount": 1},
            )
            browser.wait_for("document.getElementById('hintinfo').textContent === 'hint 1 moved'", 10)
            (moved,) = parse_hints(default_hints_path(film).read_text()).hints
            assert (moved.x, moved.y) == (pytest.approx(0.6, abs=0.01), pytest.approx(0.3, abs=0.01))
            browser.js(
                "(() => { const p = document.getElementById('pick'); p.value = '#ffd700';"
                " p.dispatchEvent(new Event('change', {bubbles: true})); })()"
            )
            browser.wait_for("document.getElementById('hintinfo').textContent.includes('recoloured')", 10)
            assert parse_hints(default_hints_path(film).read_text()).hints[0].rgb == (255, 215, 0)
            for _ in range(2):
                browser.js("document.getElementById('hintinfo').textContent = ''")
                browser.click(*centre(box(browser, "#undo")))
                browser.wait_for("document.getElementById('hintinfo').textContent === 'undone'", 10)
            (back,) = parse_hints(default_hints_path(film).read_text()).hints
            assert (back.x, back.y, back.rgb) == (hint.x, hint.y, hint.rgb)

            # a hint "until a time": the picker's duration and its seconds go into the file
            browser.js(
                "(() => { const u = document.getElementById('until'); u.value = 'time';"
                " u.dispatchEvent(new Event('change')); document.getElementById('untiltime').value = '1.5'; })()"
            )
            left, top, width, height = box(browser, "#frame")
            browser.click(left + 0.7 * width, top + 0.2 * height)
            browser.wait_for("document.getElementById('hintinfo').textContent.startsWith('hint 2 at')", 10)
            assert parse_hints(default_hints_path(film).read_text()).hints[1].until == 1.5
            browser.js("document.getElementById('hintinfo').textContent = ''")
            browser.click(*centre(box(browser, "#undo")))
            browser.wait_for("document.getElementById('hintinfo').textContent === 'undone'", 10)
            assert len(parse_hints(default_hints_path(film).read_text()).hints) == 1
            browser.js("document.getElementById('until').value = 'cut'")

            # the second shot: the hint ("this shot") is not on it
            browser.click(*centre(box(browser, ".shot[data-shot='1']")))
            browser.wait_for("document.getElementById('frame').dataset.frame === '24'", 20)
            assert "shot 2" in browser.js("document.getElementById('frameinfo').textContent")
            assert browser.js("document.querySelectorAll('.marker').length") == 0

            # a colour photo dropped onto the second shot: a reference for that shot's times
            browser.js(DROP)
            browser.wait_for("document.getElementById('hintinfo').textContent.startsWith('reference')", 20)
            (ref,) = load_hints(default_hints_path(film)).references
            assert ref.path.is_file() and ref.path.parent.name == "reel.hints.refs"
            assert (ref.start, ref.end) == (pytest.approx(24 / 25), pytest.approx(48 / 25))
            # its thumbnail, served back for sampling colours (once loaded, the layout stays put)
            browser.wait_for(
                "(() => { const i = document.querySelectorAll('#refs img');"
                " return i.length === 1 && i[0].complete && i[0].naturalWidth === 96; })()",
                10,
            )

            browser.click(*centre(box(browser, "#render")))
            browser.wait_for("document.getElementById('renderinfo').textContent.startsWith('written')", 120)
        finally:
            browser.close()
    out = film.with_name("reel.colour.mp4")
    video = read_video(out)
    assert len(video["rgb"]) == sum(SHOTS)  # every frame
    assert delta_e(lab_at(video["rgb"][0], *SPOT), want) <= 12  # where it was put (H.264 4:2:0, CRF 18)
    assert delta_e(lab_at(video["rgb"][30], *SPOT), want) > 15  # and not in the next shot


def centre(b: list[float]) -> tuple[float, float]:
    return b[0] + b[2] / 2, b[1] + b[3] / 2


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium here (.ci/run installs Debian's chromium as root)")
def test_a_drag_on_the_frame_gives_a_stroke_saved_drawn_and_carried(clip, tmp_path):
    film = tmp_path / "reel.mp4"
    film.write_bytes(clip.read_bytes())
    with Studio(film, threads=2) as st, StudioServer(st, 0) as server:
        browser = Chromium(find_chromium(), str(tmp_path / "profile"))
        try:
            browser.open(server.url)
            browser.wait_for("document.getElementById('status').dataset.firstFrame === '1'", 30)
            browser.wait_for("document.querySelectorAll('.shot').length === 2", 30)
            gray = request(server.url + "api/frame?frame=0&view=gray")[1]
            hexc, want = hint_colour(float(lab_at(gray, 0.35, SPOT[1])[0]))
            browser.js(f"document.getElementById('pick').value = '{hexc}'")
            left, top, width, height = box(browser, "#frame")
            # along the ground, left to right
            browser.drag([(left + f * width, top + SPOT[1] * height) for f in np.linspace(0.1, 0.6, 12)])
            browser.wait_for("document.getElementById('frame').dataset.version === '1'", 20)
            (hint,) = parse_hints(default_hints_path(film).read_text()).hints  # saved as a stroke
            assert len(hint.stroke) >= 6 and hint.frame == 0
            assert hint.stroke[0] == pytest.approx((0.1, SPOT[1]), abs=0.01)
            assert hint.stroke[-1] == pytest.approx((0.6, SPOT[1]), abs=0.01)
            assert browser.js("document.querySelectorAll('#strokes polyline').length") == 1
            assert browser.js("document.querySelectorAll('.marker').length") == 1
            assert delta_e(shown_lab(browser, 0.35, SPOT[1]), want) <= 10  # coloured along it, not only at its ends
            # on a later frame of the shot it is there, every vertex carried
            row = st.hints_json(5)["hints"][0]
            assert row["stroke"] and len(row["shown_stroke"]) == len(hint.stroke)
        finally:
            browser.close()
