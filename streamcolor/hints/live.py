"""The colour hints of a live session: the --hints file's and those clicked on the preview page."""

from __future__ import annotations

import threading
from dataclasses import replace

from streamcolor.errors import ConfigError
from streamcolor.hints.file import UNTIL_CUT, Hint, HintFile

# vertices of a stroke drawn on the preview page (the page thins a drag to about one every 1 %
# of the picture: a stroke across it and back needs ~200)
MAX_STROKE = 512


class LiveHints:
    """The colour hints of a live session: the --hints file's and those clicked on the preview
    page. The preview server's threads add and clear them, the output thread says which frame
    is shown, the colorize thread pulls them for its HintTracker; a lock keeps them apart.

    A clicked hint is Hint(x, y, rgb, time=<seconds of the latest frame shown>, until='cut'), a
    dragged one the same with the drag's points as its stroke:
    it starts on the next frame colorized. clear() ends every hint started so far at the time
    shown (until = that time, so the saved file replays the session) and bumps `version`:
    the colorize thread then starts a fresh tracker."""

    def __init__(self, file: HintFile | None = None):
        self._lock = threading.Lock()
        self.file = file or HintFile()
        self._from_file: list[Hint] = list(self.file.hints)
        self._clicked: list[Hint] = []
        self._new: list[Hint] = []  # clicked, not yet handed to the tracker
        self.version = 0
        self.count = 0  # hints clicked since the start or the last clear (the page shows it)
        self.given = 0  # hints clicked in all
        self.seconds = 0.0  # time of the latest frame shown (output), on the hints' clock
        self.index = -1  # ... and its index
        self.state = "off"  # "off": the automatic model runs; "on": the hint model; "failed": no hints

    def add(self, x: float, y: float, rgb: tuple[int, int, int], stroke: list | tuple | None = None) -> Hint:
        """A hint at (x, y), fractions of the frame's width and height; or, given `stroke`
        ([[x, y], ...] fractions, 2 to MAX_STROKE points: a drag on the page), a stroke
        starting at its first point (x, y are then ignored). Raises ConfigError."""

        def fraction(v: object) -> bool:
            return isinstance(v, int | float) and not isinstance(v, bool) and 0.0 <= v <= 1.0

        line = None
        if stroke is not None:
            if not isinstance(stroke, list | tuple) or not 2 <= len(stroke) <= MAX_STROKE:
                raise ConfigError(f"a hint stroke is 2 to {MAX_STROKE} points [[x, y], ...], got {str(stroke)[:60]}")
            if not all(isinstance(p, list | tuple) and len(p) == 2 and all(map(fraction, p)) for p in stroke):
                raise ConfigError(f"hint stroke points must be [x, y] fractions in [0, 1], got {str(stroke)[:60]}")
            line = tuple((float(p[0]), float(p[1])) for p in stroke)
            x, y = line[0]
        if not all(fraction(v) for v in (x, y)):
            raise ConfigError(f"hint position must be fractions in [0, 1], got x={x!r}, y={y!r}")
        with self._lock:
            hint = Hint(
                float(x),
                float(y),
                tuple(int(c) for c in rgb),
                time=round(self.seconds, 6),
                until=UNTIL_CUT,
                stroke=line,
            )
            self._clicked.append(hint)
            self._new.append(hint)
            self.count += 1
            self.given += 1
        return hint

    def clear(self) -> None:
        """End every hint started by the frame shown now (the file's later hints still come)."""
        with self._lock:
            t, index = round(self.seconds, 6), self.index

            def ended(h: Hint, clicked: bool) -> Hint | None:
                started = clicked or (h.frame <= index if h.frame is not None else (h.time or 0.0) <= t)
                if not started or (isinstance(h.until, float) and h.until <= t):
                    return h  # still to come, or over already
                if h.frame is not None or (h.time or 0.0) < t:
                    return replace(h, until=t)
                return None  # given on the frame shown now: it never showed

            self._from_file = [e for h in self._from_file if (e := ended(h, False)) is not None]
            self._clicked = [e for h in self._clicked if (e := ended(h, True)) is not None]
            self._new.clear()
            self.version += 1
            self.count = 0

    def shown(self, seconds: float, index: int) -> None:
        with self._lock:
            self.seconds, self.index = seconds, index

    def session(self) -> HintFile:
        """Every hint of the session (the file's, then the clicked ones; cleared ones end
        when they were cleared) and the file's references: what 'save hints' writes."""
        with self._lock:
            return HintFile(tuple(self._from_file + self._clicked), self.file.references)

    def pull(self, seen: int | None) -> tuple[int, HintFile | None, list[Hint]]:
        """For the colorize thread, which built its tracker for version `seen` (None: none
        yet): -> (version, every hint when a fresh tracker is needed else None, new hints)."""
        with self._lock:
            if seen != self.version:
                self._new.clear()
                return self.version, HintFile(tuple(self._from_file + self._clicked), self.file.references), []
            new, self._new = self._new, []
            return self.version, None, new
