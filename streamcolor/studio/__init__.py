"""The studio: colour a film shot by shot in the browser, see each hint land, then render.

`streamcolor studio FILM [--hints FILE] [--port N]` serves a local page on 127.0.0.1 (the
API under it: streamcolor/studio/server.py). `film.py` finds the shots and reads frames
back, `session.py` holds the hints file being edited, colorizes a frame with its hints, and
runs the shot preview and the render; `page.html` is the page.
"""

from streamcolor.studio.server import StudioServer
from streamcolor.studio.session import Studio, default_hints_path, default_render_path

__all__ = ["Studio", "StudioServer", "default_hints_path", "default_render_path"]
