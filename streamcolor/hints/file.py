"""The hints file: user colour hints and reference photos, read and written.

A hint says "this point was this colour" (Zhang et al. 2017, "Real-Time User-Guided Image
Colorization with Learned Deep Priors"); how it reaches the network is hints/planes.py. The
hints file (TOML, read with the standard library's tomllib):

    # every [[hint]]: where, what colour, from when, until when
    [[hint]]
    time = 12.5            # seconds from the start (or  frame = 300); default 0
    at = [0.42, 0.30]      # x, y as fractions of the width and height (or  pixel = [512, 300])
                           # or a stroke along the object: stroke = [[0.40, 0.30], [0.45, 0.52]]
                           # (fractions, as at; pixel_stroke = [[x, y], ...] in pixels)
    color = "#b22222"      # '#rrggbb' or a CSS colour name ("firebrick")
    radius = 4             # pixels of the frame; default 1 % of the short side
    until = "cut"          # "cut" (default: to the next scene cut), "pin" (the whole film:
                           # found again in later shots), or a time in seconds

    [[reference]]          # a colour photo whose colours become hints
    path = "flag.jpg"      # relative to the hints file
    from = 0.0             # optional time range (seconds); default: the whole input
    to = 30.0

Errors name the file, the line and the field, in one line (ConfigError).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamcolor.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, from PyPI
    import tomli as tomllib

UNTIL_CUT, UNTIL_PIN = "cut", "pin"


@dataclass(frozen=True)
class Hint:
    """One user hint.

    x, y:    position; fractions of the width and height in [0, 1] when `pixels` is False,
             else pixels of the frame (x right, y down, 0-based).
    rgb:     (3,) sRGB 0..255 of the colour the user gave.
    time:    seconds from the input's start when the hint starts (frame: a frame index
             instead; one of them is None).
    radius:  pixels of the frame, or None for 1 % of the short side.
    until:   'cut', 'pin', or a time in seconds when it ends.
    line:    the hints file's line of this [[hint]] (0 for hints made in code).
    stroke:  a polyline instead of a point (a scribble, Levin et al. 2004): its vertices
             ((x, y), ...) in the same units as x, y, which are its first vertex; None for a point.
    """

    x: float
    y: float
    rgb: tuple[int, int, int]
    time: float | None = 0.0
    frame: int | None = None
    radius: float | None = None
    until: str | float = UNTIL_CUT
    pixels: bool = False
    line: int = 0
    stroke: tuple[tuple[float, float], ...] | None = None

    def position(self, width: int, height: int) -> tuple[float, float]:
        """-> (x, y) as fractions of the frame."""
        if self.pixels:
            return (self.x + 0.5) / width, (self.y + 0.5) / height
        return self.x, self.y

    def vertices(self, width: int, height: int) -> np.ndarray | None:
        """A stroke's vertices (N, 2) float64 as fractions of the frame (x, y); None for a point."""
        if self.stroke is None:
            return None
        v = np.array(self.stroke, np.float64).reshape(-1, 2)
        return (v + 0.5) / np.array([width, height], np.float64) if self.pixels else v

    def starts_by(self, index: int, seconds: float) -> bool:
        return index >= self.frame if self.frame is not None else seconds >= (self.time or 0.0) - 1e-9

    def ended(self, seconds: float) -> bool:
        return isinstance(self.until, float) and seconds >= self.until


@dataclass(frozen=True)
class Reference:
    """A colour reference photo, for the whole input or for the times [start, end) in seconds."""

    path: Path
    start: float = 0.0
    end: float = float("inf")
    line: int = 0

    def covers(self, seconds: float) -> bool:
        return self.start <= seconds < self.end


@dataclass(frozen=True)
class HintFile:
    hints: tuple[Hint, ...] = ()
    references: tuple[Reference, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.hints or self.references)


def parse_color(value: object) -> tuple[int, int, int]:
    """'#rrggbb', '#rgb' or a CSS colour name (the CSS3 list, via webcolors) -> sRGB 0..255.
    Raises ValueError."""
    import webcolors

    if not isinstance(value, str):
        raise ValueError(f"must be '#rrggbb' or a CSS colour name, got {value!r}")
    v = value.strip()
    try:
        rgb = webcolors.hex_to_rgb(v) if v.startswith("#") else webcolors.name_to_rgb(v.lower())
    except ValueError:
        raise ValueError(f"must be '#rrggbb' or a CSS colour name, got {value!r}") from None
    return int(rgb.red), int(rgb.green), int(rgb.blue)


def parse_time(value: object) -> float:
    """Seconds as a number or '[[hh:]mm:]ss[.fff]' -> float seconds >= 0. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"must be seconds or 'hh:mm:ss', got {value!r}")
    if isinstance(value, int | float):
        t = float(value)
    elif isinstance(value, str) and re.fullmatch(r"(\d+:){0,2}\d+(\.\d*)?", value.strip()):
        t = 0.0
        for part in value.strip().split(":"):
            t = t * 60 + float(part)
    else:
        raise ValueError(f"must be seconds or 'hh:mm:ss', got {value!r}")
    if not np.isfinite(t) or t < 0:
        raise ValueError(f"must be a time >= 0, got {value!r}")
    return t


def _pair(value: object, what: str) -> tuple[float, float]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise ValueError(f"must be [x, y] ({what}), got {value!r}")
    return float(value[0]), float(value[1])


class _Lines:
    """Line numbers of tables and keys in the TOML text, for error messages (tomllib gives
    none for values): the n-th [[name]] header and a key's line inside that table."""

    def __init__(self, text: str):
        self.lines = text.splitlines()
        self.headers: list[tuple[int, str]] = []
        for i, line in enumerate(self.lines, 1):
            m = re.match(r"\s*\[\[\s*([A-Za-z0-9_-]+)\s*\]\]", line)
            if m:
                self.headers.append((i, m.group(1)))
            elif re.match(r"\s*\[", line):
                self.headers.append((i, ""))

    def table(self, name: str, n: int) -> tuple[int, int]:
        """(first line, last line) of the n-th [[name]] (0-based)."""
        starts = [i for i, h in self.headers if h == name]
        if n >= len(starts):
            return 0, 0
        after = [i for i, _ in self.headers if i > starts[n]]
        return starts[n], (after[0] - 1 if after else len(self.lines))

    def key(self, name: str, n: int, key: str) -> int:
        first, last = self.table(name, n)
        for i in range(first, last + 1):
            if re.match(rf"\s*{re.escape(key)}\s*=", self.lines[i - 1]):
                return i
        return first


_HINT_KEYS = {"time", "frame", "at", "pixel", "stroke", "pixel_stroke", "color", "colour", "radius", "until"}
_PLACE_KEYS = ("at", "pixel", "stroke", "pixel_stroke")
_REFERENCE_KEYS = {"path", "from", "to"}


def load_hints(path: str | Path) -> HintFile:
    """Read a hints file (module docstring). Raises ConfigError naming the line and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"hints file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read hints file {path}: {getattr(e, 'strerror', None) or e}") from None
    return parse_hints(text, path)


def parse_hints(text: str, path: Path = Path("hints.toml")) -> HintFile:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\s*\(at line (\d+), column \d+\)$", str(e))
        where = f" line {m.group(1)}" if m else ""
        raise ConfigError(f"{path}{where}: not valid TOML: {str(e)[: m.start()] if m else e}") from None
    lines = _Lines(text)
    unknown = sorted(set(doc) - {"hint", "reference"})
    if unknown:
        line = next((i for i, s in enumerate(lines.lines, 1) if re.match(rf"\s*\[*\s*{unknown[0]}\b", s)), 0)
        raise ConfigError(
            f"{path} line {line}: unknown entry '{unknown[0]}' (a hints file holds [[hint]] and [[reference]])"
        )
    for name in ("hint", "reference"):
        if name in doc and not (isinstance(doc[name], list) and all(isinstance(t, dict) for t in doc[name])):
            line = next(
                (i for i, t in enumerate(lines.lines, 1) if re.match(rf"\s*(\[\s*{name}\s*\]|{name}\s*=)", t)), 0
            )
            raise ConfigError(f"{path} line {line}: '{name}' must be [[{name}]] tables (double brackets)")
    hints = tuple(_hint(h, n, lines, path) for n, h in enumerate(doc.get("hint", [])))
    refs = tuple(_reference(r, n, lines, path) for n, r in enumerate(doc.get("reference", [])))
    return HintFile(hints, refs)


def _hint(h: dict, n: int, lines: _Lines, path: Path) -> Hint:
    def fail(key: str, msg: str) -> ConfigError:
        return ConfigError(f"{path} line {lines.key('hint', n, key)}: hint {n + 1}, '{key}' {msg}")

    extra = sorted(set(h) - _HINT_KEYS)
    if extra:
        raise fail(extra[0], f"is not a hint field (fields: {', '.join(sorted(_HINT_KEYS - {'colour'}))})")
    if "time" in h and "frame" in h:
        raise fail("frame", "and 'time' both given: give one")
    time, frame = 0.0, None
    try:
        if "frame" in h:
            if not isinstance(h["frame"], int) or isinstance(h["frame"], bool) or h["frame"] < 0:
                raise ValueError(f"must be a frame index >= 0, got {h['frame']!r}")
            time, frame = None, int(h["frame"])
        elif "time" in h:
            time = parse_time(h["time"])
    except ValueError as e:
        raise fail("frame" if "frame" in h else "time", str(e)) from None
    given = [k for k in _PLACE_KEYS if k in h]
    if len(given) > 1:
        raise fail(
            given[1], f"and '{given[0]}' both given: give one (at/stroke: fractions, pixel/pixel_stroke: pixels)"
        )
    if not given:
        raise fail("at", "or 'pixel' is needed (or 'stroke', a line): where the hint is")
    key = given[0]
    pixels = key.startswith("pixel")
    what = "pixels" if pixels else "fractions of width and height"
    try:
        if key in ("stroke", "pixel_stroke"):
            if not isinstance(h[key], list) or len(h[key]) < 2:
                raise ValueError(f"must be a list of at least 2 points [[x, y], [x, y], ...] ({what}), got {h[key]!r}")
            stroke = tuple(_pair(v, what) for v in h[key])
        else:
            stroke = (_pair(h[key], what),)
    except ValueError as e:
        raise fail(key, str(e)) from None
    if not pixels and not all(0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 for x, y in stroke):
        other = "pixel = [x, y]" if key == "at" else "pixel_stroke = [[x, y], ...]"
        raise fail(key, f"must be fractions in [0, 1], got {h[key]!r} (for pixels write {other})")
    if pixels and not all(x >= 0 and y >= 0 for x, y in stroke):
        raise fail(key, f"must be pixels >= 0, got {h[key]!r}")
    x, y = stroke[0]
    if "colour" in h and "color" in h:
        raise fail("colour", "and 'color' both given: give one")
    ckey = "colour" if "colour" in h else "color"
    if ckey not in h:
        raise fail("color", "is needed: '#rrggbb' or a CSS colour name")
    try:
        rgb = parse_color(h[ckey])
    except ValueError as e:
        raise fail(ckey, str(e)) from None
    radius = h.get("radius")
    if radius is not None and (
        isinstance(radius, bool) or not isinstance(radius, int | float) or not 0 < radius <= 4096
    ):
        raise fail("radius", f"must be pixels in (0, 4096], got {radius!r}")
    until = h.get("until", UNTIL_CUT)
    if until not in (UNTIL_CUT, UNTIL_PIN):
        try:
            until = parse_time(until)
        except ValueError:
            raise fail("until", f"must be 'cut', 'pin' or a time in seconds, got {until!r}") from None
        if time is not None and until <= time:
            raise fail("until", f"ends at {until:g} s, not after the hint's time {time:g} s")
    return Hint(
        x,
        y,
        rgb,
        time,
        frame,
        float(radius) if radius is not None else None,
        until,
        pixels,
        lines.table("hint", n)[0],
        stroke if key in ("stroke", "pixel_stroke") else None,
    )


def _reference(r: dict, n: int, lines: _Lines, path: Path) -> Reference:
    def fail(key: str, msg: str) -> ConfigError:
        return ConfigError(f"{path} line {lines.key('reference', n, key)}: reference {n + 1}, '{key}' {msg}")

    extra = sorted(set(r) - _REFERENCE_KEYS)
    if extra:
        raise fail(extra[0], f"is not a reference field (fields: {', '.join(sorted(_REFERENCE_KEYS))})")
    if not isinstance(r.get("path"), str) or not r["path"]:
        raise fail("path", "is needed: the colour photo's file")
    photo = Path(r["path"]).expanduser()
    if not photo.is_absolute():
        photo = path.parent / photo
    if not photo.is_file():
        raise fail("path", f"names no file: {photo}")
    try:
        start = parse_time(r.get("from", 0.0))
        end = parse_time(r["to"]) if "to" in r else float("inf")
    except ValueError as e:
        raise fail("to" if "to" in r else "from", str(e)) from None
    if end <= start:
        raise fail("to", f"must be after 'from' ({start:g} s)")
    return Reference(photo, start, end, lines.table("reference", n)[0])


# ---- hints as network input ------------------------------------------------------------


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def dump_hints(hf: HintFile) -> str:
    """A HintFile as the hints file's TOML (written by tomli-w): parse_hints(dump_hints(h)) == h
    up to line numbers and paths made absolute."""
    import tomli_w

    doc: dict = {"hint": [], "reference": []}
    for h in hf.hints:
        d: dict = {"frame": h.frame} if h.frame is not None else {"time": h.time or 0.0}
        if h.stroke is not None:
            d["pixel_stroke" if h.pixels else "stroke"] = [[x, y] for x, y in h.stroke]
        else:
            d["pixel" if h.pixels else "at"] = [h.x, h.y]
        d["color"] = _hex(h.rgb)
        if h.radius is not None:
            d["radius"] = h.radius
        d["until"] = h.until
        doc["hint"].append(d)
    for r in hf.references:
        d = {"path": str(Path(r.path).resolve()), "from": r.start}
        if np.isfinite(r.end):
            d["to"] = r.end
        doc["reference"].append(d)
    doc = {k: v for k, v in doc.items() if v}
    return "# streamcolor hints (streamcolor/hints.py)\n" + tomli_w.dumps(doc)
