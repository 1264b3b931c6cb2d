"""The studio's HTTP server: the page and the API under it, on 127.0.0.1 only.

    GET  /                        the page
    GET  /api/shots               {"frames", "complete", "rate", "width", "height",
                                   "shots": [{"shot", "start", "end", "start_s", "end_s"}]}
                                   (frames: [start, end) indexes; seconds on the render's clock)
    GET  /api/frame?frame=N       frame N colorized with the current hints, JPEG
                                   (&view=gray: the input; &width=W: at most W pixels wide)
    GET  /api/hints               the hints file's content (TOML);
                                   &format=json[&frame=N]: the page's view of it
    PUT  /api/hints               new TOML content: saved at once; a file with errors gets
                                   400 and one line naming its line, the last good hints kept
    POST /api/reference?name=F    a colour photo's bytes: saved beside the hints file, JSON
                                   {"path"} to put in a [[reference]]
    GET  /api/reference?path=P    the photo of a [[reference]] of the current hints
    POST /api/render              JSON {"out", "codec", "overwrite"} (all optional) starts the
                                   render (202); {"cancel": true} stops it
    GET  /api/render              {"state", "frames", "total", "progress", "fps", "eta_s", "out", "error"}
    POST /api/preview             JSON {"shot": K}: colorize shot K as the render would (202)
    GET  /api/preview             its status (as /api/render); /api/preview/frame?i=K: its K-th frame

Errors are one line of text/plain with a 4xx code. Requests from other origins are refused
(403) as the live preview refuses them (a Host that is not a loopback name: DNS rebinding;
an Origin that is not the studio's own page), and, as the studio serves the user's film,
GETs too: a browser's Sec-Fetch-Site other than same-origin or none (another site's <img>).
"""

from __future__ import annotations

import errno
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlparse

from streamcolor.errors import ConfigError, OutputError, StreamcolorError
from streamcolor.studio.session import Studio

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}
MAX_BODY = 1 << 20  # a hints file or a JSON request: at most 1 MiB


def _host_name(header: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1'; '[::1]:8000' -> '[::1]'."""
    if header.startswith("["):
        return header.split("]")[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def page_html() -> bytes:
    return resources.files("streamcolor.studio").joinpath("page.html").read_bytes()


class StudioServer:
    """A context manager serving `studio` on 127.0.0.1:port in a background thread (port 0:
    any free port). Raises OutputError with one line when the port is taken."""

    def __init__(self, studio: Studio, port: int = 8000, host: str = "127.0.0.1"):
        self.studio = studio
        try:
            self.httpd = ThreadingHTTPServer((host, port), _handler(studio))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise OutputError(f"port {port} on {host} is in use; try --port {port + 1} (or another)") from None
            raise OutputError(f"cannot serve the studio on {host}:{port}: {e.strerror or e}") from None
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}/"
        self._thread: threading.Thread | None = None

    def __enter__(self) -> StudioServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(studio: Studio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet: the terminal shows the studio's own lines
            pass

        def _send(self, code: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
            try:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("X-Content-Type-Options", "nosniff")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the page moved on (a newer frame asked)
                pass

        def _json(self, obj: object, code: int = 200) -> None:
            self._send(code, json.dumps(obj).encode(), "application/json")

        def _line(self, code: int, message: str) -> None:
            self._send(code, (" ".join(str(message).split()) + "\n").encode(), "text/plain; charset=utf-8")

        def _allowed(self) -> bool:
            host = self.headers.get("Host") or ""
            origin = self.headers.get("Origin")
            site = self.headers.get("Sec-Fetch-Site")
            if _host_name(host) not in _LOCAL_HOSTS:
                self._line(403, "forbidden host")
                return False
            if origin is not None and urlparse(origin).netloc != host:
                self._line(403, "forbidden origin")
                return False
            if site is not None and site not in ("same-origin", "none"):
                self._line(403, "forbidden: a request from another site")
                return False
            return True

        def _body(self) -> bytes | None:
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                self._line(400, "bad Content-Length")
                return None
            limit = MAX_BODY if not self.path.startswith("/api/reference") else 32 << 20
            if length < 0 or length > limit:
                self._line(413, f"request too long (at most {limit} bytes)")
                return None
            return self.rfile.read(length) if length else b""

        def _query(self) -> dict[str, str]:
            return {k: v[-1] for k, v in parse_qs(urlparse(self.path).query).items()}

        def _int(self, q: dict, key: str, default: int | None = None) -> int | None:
            if key not in q:
                if default is None:
                    raise ValueError(f"'{key}' is needed (an integer)")
                return default
            try:
                v = int(q[key])
            except ValueError:
                raise ValueError(f"'{key}' must be an integer, got {q[key]!r}") from None
            if v < 0:
                raise ValueError(f"'{key}' must be >= 0, got {v}")
            return v

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if not self._allowed():
                return
            path, q = urlparse(self.path).path, self._query()
            try:
                if path == "/":
                    self._send(200, page_html(), "text/html; charset=utf-8")
                elif path == "/api/shots":
                    f = studio.film
                    shots = f.shots()
                    self._json(
                        {
                            "film": str(studio.film_path),
                            "frames": f.frames,
                            "complete": f.scanned,
                            "rate": f.rate,
                            "width": f.width,
                            "height": f.height,
                            "shots": [s.as_json() for s in shots],
                        }
                    )
                elif path == "/api/frame":
                    view = q.get("view", "color")
                    if view not in ("color", "gray"):
                        raise ValueError(f"'view' must be color or gray, got {view!r}")
                    index = self._int(q, "frame")
                    width = self._int(q, "width", 0) or None
                    try:
                        data = studio.frame_jpeg(index, view, width)
                    except IndexError as e:
                        self._line(404, str(e))
                        return
                    self._send(200, data, "image/jpeg", {"X-Frame": str(index)})
                elif path == "/api/hints":
                    if q.get("format") == "json":
                        frame = self._int(q, "frame", -1)
                        self._json(studio.hints_json(frame if frame >= 0 else None))
                    else:
                        self._send(200, studio.doc.text.encode(), "application/toml; charset=utf-8")
                elif path == "/api/reference":
                    p = studio.reference_file(q.get("path", ""))
                    if p is None or not p.is_file():
                        self._line(404, "no such reference in the hints")
                        return
                    self._send(200, p.read_bytes(), "application/octet-stream")
                elif path == "/api/render":
                    r = studio.render
                    self._json(r.as_json() if r is not None else {"state": "idle"})
                elif path == "/api/preview":
                    p = studio.preview
                    self._json(p.as_json() if p is not None else {"state": "idle"})
                elif path == "/api/preview/frame":
                    p = studio.preview
                    i = self._int(q, "i")
                    if p is None or i >= len(p.jpegs):
                        self._line(404, "that preview frame is not ready")
                        return
                    self._send(200, p.jpegs[i], "image/jpeg")
                else:
                    self._line(404, "not found")
            except ValueError as e:
                self._line(400, str(e))
            except StreamcolorError as e:
                self._line(400, str(e))
            except Exception as e:  # noqa: BLE001 - a bug: one line, never a traceback on the page
                self._line(500, f"internal error: {e!r}")

        def do_PUT(self) -> None:  # noqa: N802
            if not self._allowed():
                return
            if urlparse(self.path).path != "/api/hints":
                self._line(404, "not found")
                return
            body = self._body()
            if body is None:
                return
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                self._line(400, "the hints file must be UTF-8 text")
                return
            try:
                hints = studio.doc.put(text)
            except ConfigError as e:
                self._line(400, str(e))
                return
            except OutputError as e:
                self._line(409, str(e))
                return
            self._json({"hints": len(hints.hints), "references": len(hints.references), "saved": str(studio.doc.path)})

        def do_POST(self) -> None:  # noqa: N802
            if not self._allowed():
                return
            path, q = urlparse(self.path).path, self._query()
            body = self._body()
            if body is None:
                return
            try:
                if path == "/api/reference":
                    saved = studio.save_reference(q.get("name", "reference.png"), body)
                    base = studio.doc.path.parent
                    self._json({"path": str(saved.relative_to(base))})
                    return
                req = json.loads(body or b"{}")
                if not isinstance(req, dict):
                    raise ValueError("the request must be a JSON object")
                if path == "/api/render":
                    if req.get("cancel"):
                        if studio.render is not None:
                            studio.render.cancel()
                        self._json(studio.render.as_json() if studio.render else {"state": "idle"})
                        return
                    codec = req.get("codec", "auto")
                    out = req.get("out")
                    if not isinstance(codec, str) or (out is not None and not isinstance(out, str)):
                        raise ValueError("'out' and 'codec' must be strings")
                    job = studio.start_render(out, codec, bool(req.get("overwrite", False)))
                    self._json(job.as_json(), 202)
                elif path == "/api/preview":
                    shot = req.get("shot")
                    if not isinstance(shot, int) or isinstance(shot, bool):
                        raise ValueError("'shot' must be a shot number")
                    self._json(studio.start_preview(shot).as_json(), 202)
                else:
                    self._line(404, "not found")
            except ValueError as e:  # json's errors are ValueErrors too
                self._line(400, str(e))
            except StreamcolorError as e:
                self._line(409 if "already running" in str(e) or "exists" in str(e) else 400, str(e))
            except Exception as e:  # noqa: BLE001
                self._line(500, f"internal error: {e!r}")

    return Handler
