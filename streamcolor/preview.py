"""The live preview: a local web page with the input and the colorized output side by side,
fps, latency, a switch for the temporal filter, and colour hints: a click on the colour
picture opens a colour picker and sends POST /hint {"x", "y", "color"} (fractions of the
picture, '#rrggbb'), a drag a stroke {"stroke": [[x, y], ...], "color"}; POST /hint/clear
drops them; GET /hints.toml is every hint of the session as a hints file
(streamcolor/hints/file.py), to replay it (--hints).

Bound to 127.0.0.1 unless asked otherwise: a camera feed is private, so serving it beyond
this machine needs --allow-remote. On loopback, requests naming another Host are refused
(a web page elsewhere cannot reach the preview through DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import cv2
import numpy as np

from streamcolor.errors import ConfigError, OutputError
from streamcolor.hints.file import dump_hints, parse_color
from streamcolor.source import GrayFrame, StreamInfo

PREVIEW_WIDTH = 640  # frames are scaled down to this for the page: JPEG cost stays small
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>streamcolor live</title>
<style>
 body { background:#111; color:#ddd; font:15px system-ui, sans-serif; margin:16px; }
 .row { display:flex; gap:12px; } figure { margin:0; flex:1 1 0; max-width:640px; }
 figcaption { padding:4px 0; color:#aaa; }
 img { width:100%; max-width:640px; background:#222; display:block; }
 #stats { margin:10px 0; font-variant-numeric:tabular-nums; } label { cursor:pointer; }
 #out { cursor:crosshair; } #hintbar { margin:10px 0; display:flex; gap:10px; align-items:center; }
 #hintbar a { color:#9cf; } #pick { width:32px; height:24px; padding:0; border:0; background:none; }
</style></head><body>
<div class="row">
 <figure><figcaption>Input</figcaption><img id="in" alt="input"></figure>
 <figure><figcaption>streamcolor (click or drag to give a colour hint)</figcaption>
  <img id="out" alt="colorized" draggable="false"></figure>
</div>
<div id="stats">waiting for frames...</div>
<label><input type="checkbox" id="temporal"> temporal filter (causal: steadies the colour)</label>
<div id="hintbar">
 <input type="color" id="pick" value="#c83c3c" title="hint colour (shift-click the picture to reuse it)">
 <button id="clear" type="button">clear hints</button>
 <a id="save" href="/hints.toml" download="hints.toml">save hints</a>
 <span id="hintinfo">click the colour picture (or drag along something), then pick the colour it should be</span>
</div>
<script>
const sleep = ms => new Promise(r => setTimeout(r, ms));
async function show(name) {
  const img = document.getElementById(name);
  let last = -1;
  for (;;) {
    try {
      const r = await fetch(`/${name}.jpg?after=${last}`, {cache: "no-store"});
      if (r.status !== 200) { await sleep(200); continue; }
      last = Number(r.headers.get("X-Frame"));
      const url = URL.createObjectURL(await r.blob());
      img.onload = () => URL.revokeObjectURL(url);
      img.src = url;
    } catch (e) { await sleep(500); }
  }
}
const box = document.getElementById("temporal");
box.onchange = () => fetch("/control", {method: "POST", headers: {"Content-Type": "application/json"},
  body: JSON.stringify({temporal: box.checked ? "causal" : "off"})});
async function stats() {
  for (;;) {
    try {
      const s = await (await fetch("/stats", {cache: "no-store"})).json();
      document.getElementById("stats").textContent =
        `${s.fps} fps · latency p50 ${s.latency_p50_ms} ms, p99 ${s.latency_p99_ms} ms · ` +
        `${s.frames} frames · ${s.dropped} dropped` + (s.connected ? "" : " · input lost, reconnecting") +
        ` · ${s.hints} hint${s.hints === 1 ? "" : "s"}` +
        (s.hints_state === "failed" ? " (hint model unavailable)" : "");
      if (document.activeElement !== box) box.checked = s.temporal !== "off";
    } catch (e) {}
    await sleep(500);
  }
}
const out = document.getElementById("out"), pick = document.getElementById("pick");
const info = document.getElementById("hintinfo");
let spot = null;  // where the picture was clicked (x, y) or dragged (stroke), waiting for its colour
let drag = null;  // the points of a press on the picture so far
const json = body => ({method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
const xy = v => `${v[0].toFixed(3)}, ${v[1].toFixed(3)}`;
async function hintPost(path, body) {
  try {
    const r = await fetch(path, json(body));
    const text = await r.text();
    if (!r.ok) { info.textContent = text.trim(); return; }
    const s = JSON.parse(text);
    info.textContent = path !== "/hint" ? "hints cleared" : s.hint.stroke ?
      `hint ${s.hints}: a stroke of ${s.hint.stroke.length} points from ${xy(s.hint.stroke[0])}: ${s.hint.color}` :
      `hint ${s.hints} at ${s.hint.x.toFixed(3)}, ${s.hint.y.toFixed(3)}: ${s.hint.color}`;
  } catch (e) { info.textContent = "the preview server does not answer"; }
}
function at(e) {  // -> [x, y] fractions of the picture, or null when it has no size yet
  const r = out.getBoundingClientRect();
  if (!(r.width > 0 && r.height > 0)) return null;
  const c = v => Math.min(1, Math.max(0, v));
  return [c((e.clientX - r.left) / r.width), c((e.clientY - r.top) / r.height), e.clientX, e.clientY];
}
out.addEventListener("mousedown", e => {
  if (e.button !== 0) return;
  const p = at(e);
  if (!p) return;
  e.preventDefault();  // no image drag-and-drop
  drag = [p];
});
window.addEventListener("mousemove", e => {
  if (!drag) return;
  const p = at(e), last = drag[drag.length - 1];
  // keep a point every ~1 % of the picture: a stroke stays a few hundred points at most
  if (p && Math.hypot(p[0] - last[0], p[1] - last[1]) >= 0.01 && drag.length < 500) drag.push(p);
});
window.addEventListener("mouseup", e => {
  if (!drag) return;
  const p = at(e), pts = drag;
  drag = null;
  if (p) pts.push(p);
  // a press that moved under 5 screen pixels is a click: a point; else the drag is a stroke
  const moved = Math.max(...pts.map(q => Math.hypot(q[2] - pts[0][2], q[3] - pts[0][3])));
  spot = moved < 5 ? {x: pts[0][0], y: pts[0][1]} : {stroke: pts.map(q => [q[0], q[1]])};
  if (e.shiftKey) { send(); return; }  // the last colour again
  info.textContent = spot.stroke ? `pick the colour for the stroke of ${spot.stroke.length} points` :
    `pick the colour for ${spot.x.toFixed(3)}, ${spot.y.toFixed(3)}`;
  try { pick.showPicker(); } catch (err) { pick.click(); }
});
function send() {
  if (!spot) return;
  const s = spot; spot = null;
  hintPost("/hint", {...s, color: pick.value});
}
pick.addEventListener("change", send);
document.getElementById("clear").onclick = () => { spot = null; hintPost("/hint/clear", {}); };
show("in"); show("out"); stats();
</script></body></html>
"""


def is_loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        raise ConfigError(f"cannot resolve the preview host '{host}'") from None
    return all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


def _host_name(header: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1'; '[::1]:8000' -> '[::1]'."""
    if header.startswith("["):
        return header.split("]")[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class _Latest:
    """The newest frame for the page, JPEG-encoded on demand and at most once."""

    def __init__(self):
        self.cond = threading.Condition()
        self.index = -1
        self.frame: GrayFrame | None = None
        self.info: StreamInfo | None = None
        self.jpeg: dict[str, tuple[int, bytes]] = {}
        self.status: dict = {}

    def jpeg_for(self, side: str, after: int, timeout: float = 2.0) -> tuple[int, bytes] | None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.index > after, timeout):
                return None
            index, frame, info = self.index, self.frame, self.info
            cached = self.jpeg.get(side)
            if cached and cached[0] == index:
                return cached
        data = _encode(frame, info, color=side == "out")
        with self.cond:
            self.jpeg[side] = (index, data)
        return index, data


def _encode(f: GrayFrame, info: StreamInfo, color: bool) -> bytes:
    """JPEG of the gray input or the colorized frame, at most PREVIEW_WIDTH wide."""
    y = f.y8
    h, w = (y.shape[0] // 2) * 2, (y.shape[1] // 2) * 2
    y = y[:h, :w]
    if color and f.chroma is not None:
        u, v = (c[: h // 2, : w // 2] for c in f.chroma)
        # OpenCV's I420 conversion uses BT.601 limited range: near enough for a preview
        i420 = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(h * 3 // 2, w)
        img = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
    else:
        img = y
    if w > PREVIEW_WIDTH:
        img = cv2.resize(img, (PREVIEW_WIDTH, round(h * PREVIEW_WIDTH / w)), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()


class PreviewServer:
    """A context manager serving the page in a background thread; publish() frames to it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8000, allow_remote: bool = False, controls=None):
        self.loopback = is_loopback(host)
        if not self.loopback and not allow_remote:
            raise ConfigError(
                f"refusing to serve the preview on {host}: other machines could watch it; "
                "add --allow-remote if that is what you want"
            )
        self.latest = _Latest()
        self.controls = controls
        handler = _handler(self)
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as e:
            raise OutputError(f"cannot serve the preview on {host}:{port}: {e.strerror or e}") from None
        self.httpd.daemon_threads = True
        name = self.httpd.server_address[0]
        shown = f"[{name}]" if ":" in name else name
        self.url = f"http://{shown}:{self.httpd.server_address[1]}/"
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PreviewServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def publish(self, frame: GrayFrame, info: StreamInfo, status: dict) -> None:
        with self.latest.cond:
            self.latest.index += 1
            self.latest.frame, self.latest.info, self.latest.status = frame, info, status
            self.latest.cond.notify_all()


def _handler(server: PreviewServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet: the terminal shows the run's own lines
            pass

        def _send(self, code: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _host_ok(self) -> bool:
            if not server.loopback:
                return True
            if _host_name(self.headers.get("Host") or "") in _LOCAL_HOSTS:
                return True
            self._send(403, b"forbidden host\n", "text/plain")
            return False

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if not self._host_ok():
                return
            url = urlparse(self.path)
            if url.path == "/":
                self._send(200, PAGE.encode(), "text/html; charset=utf-8")
            elif url.path in ("/in.jpg", "/out.jpg"):
                try:
                    after = int(parse_qs(url.query).get("after", ["-1"])[0])
                except ValueError:
                    after = -1
                got = server.latest.jpeg_for(url.path[1:-4], after)
                if got is None:
                    self._send(503, b"no new frame yet\n", "text/plain", {"Retry-After": "1"})
                else:
                    self._send(200, got[1], "image/jpeg", {"X-Frame": str(got[0])})
            elif url.path == "/hints.toml" and getattr(server.controls, "hints", None) is not None:
                text = dump_hints(server.controls.hints.session())
                headers = {"Content-Disposition": 'attachment; filename="hints.toml"'}
                self._send(200, text.encode(), "application/toml; charset=utf-8", headers)
            elif url.path == "/stats":
                with server.latest.cond:
                    status = dict(server.latest.status)
                status.setdefault("temporal", getattr(server.controls, "temporal", "off"))
                hints = getattr(server.controls, "hints", None)
                status["hints"] = hints.count if hints is not None else 0
                status["hints_state"] = hints.state if hints is not None else "off"
                status["time"] = time.time()
                self._send(200, json.dumps(status).encode(), "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _origin_ok(self) -> bool:
            """A browser names the page that sends a POST: only the preview's own page may
            change anything (a page elsewhere could otherwise post to 127.0.0.1)."""
            origin = self.headers.get("Origin")
            if origin is None or urlparse(origin).netloc == (self.headers.get("Host") or ""):
                return True
            self._send(403, b"forbidden origin\n", "text/plain")
            return False

        def _bad(self, message: str) -> None:
            line = " ".join(str(message).split())
            self._send(400, f"{line}\n".encode(), "text/plain")

        def do_POST(self) -> None:  # noqa: N802
            if not self._host_ok() or not self._origin_ok():
                return
            path = urlparse(self.path).path
            hints = getattr(server.controls, "hints", None)
            if path in ("/hint", "/hint/clear") and hints is not None:
                self._post_hint(path, hints)
                return
            if path != "/control" or server.controls is None:
                self._send(404, b"not found\n", "text/plain")
                return
            try:
                length = min(int(self.headers.get("Content-Length", "0")), 4096)
                body = json.loads(self.rfile.read(length) or b"{}")
                if "temporal" in body:
                    server.controls.set_temporal(str(body["temporal"]))
            except (ValueError, ConfigError) as e:
                self._send(400, f"{e}\n".encode(), "text/plain")
                return
            self._send(200, json.dumps({"temporal": server.controls.temporal}).encode(), "application/json")

        def _post_hint(self, path: str, hints) -> None:
            """POST /hint {"x", "y", "color"} or POST /hint/clear: 400 with one line when the
            request is not one of those."""
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                self._bad("bad Content-Length")
                return
            if length > 65536:  # a stroke of MAX_STROKE points fits
                self._bad("request too long")
                return
            raw = self.rfile.read(length) if length > 0 else b""
            if path == "/hint/clear":
                hints.clear()
                self._send(200, json.dumps({"hints": hints.count}).encode(), "application/json")
                return
            try:
                body = json.loads(raw)
            except ValueError as e:
                self._bad(f"bad JSON: {e}")
                return
            if not isinstance(body, dict) or not ({"x", "y", "color"} <= set(body) or {"stroke", "color"} <= set(body)):
                self._bad(
                    'a hint is a JSON object {"x": 0..1, "y": 0..1, "color": "#rrggbb"} '
                    'or {"stroke": [[x, y], ...], "color": "#rrggbb"}'
                )
                return
            try:
                rgb = parse_color(body["color"])
            except ValueError as e:
                self._bad(f"hint color {e}")
                return
            try:
                hint = hints.add(body.get("x", 0.0), body.get("y", 0.0), rgb, body.get("stroke"))
            except ConfigError as e:
                self._bad(str(e))
                return
            answer = {
                "hints": hints.count,
                "hint": {"x": hint.x, "y": hint.y, "color": "#{:02x}{:02x}{:02x}".format(*hint.rgb), "time": hint.time},
            }
            if hint.stroke is not None:
                answer["hint"]["stroke"] = [list(v) for v in hint.stroke]
            self._send(200, json.dumps(answer).encode(), "application/json")

    return Handler
