"""The hints file the studio edits: read, replaced whole by the page, saved atomically, with a
version the page's edits are checked against."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from streamcolor.errors import ConfigError, OutputError
from streamcolor.hints.file import HintFile, parse_hints


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


class HintsDocument:
    """The hints file the studio edits: its TOML text, the last good HintFile, and where it is
    saved (on every accepted change, atomically: NAME.partial then a rename).

    An existing file is taken only when it is a hints file (it parses); a file that changed on
    disk since the studio read or wrote it is not overwritten (ConfigError/OutputError lines)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock = threading.Lock()
        self.text = ""
        self.hints = HintFile()
        self.error: str | None = None  # the last refused PUT's line (cleared by a good one)
        self.version = 0
        self._on_disk: str | None = None  # what the file held when last read or written
        if self.path.exists():
            if not self.path.is_file():
                raise ConfigError(f"hints path is not a file: {self.path}")
            try:
                text = self.path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise ConfigError(
                    f"cannot read hints file {self.path}: {getattr(e, 'strerror', None) or e}; "
                    "give --hints another path"
                ) from None
            try:
                self.hints = parse_hints(text, self.path)
            except ConfigError as e:
                raise ConfigError(f"{e} (the studio edits only a valid hints file; fix it or give --hints)") from None
            self.text = self._on_disk = text

    def put(self, text: str) -> HintFile:
        """Take new TOML text: parsed, then saved. Raises ConfigError (one line with the file's
        line) and keeps the last good hints; OutputError when it cannot be saved."""
        with self.lock:
            try:
                hints = parse_hints(text, self.path)
            except ConfigError as e:
                self.error = _one_line(str(e))
                raise
            self._save(text)
            self.text, self.hints, self.error = text, hints, None
            self.version += 1
            return hints

    def _save(self, text: str) -> None:
        try:
            now = self.path.read_text(encoding="utf-8") if self.path.exists() else None
        except (OSError, UnicodeDecodeError):
            now = ""
        if now is not None and now != self._on_disk:
            raise OutputError(f"{self.path} changed on disk since the studio read it; not overwritten")
        tmp = self.path.with_name(self.path.name + ".partial")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as e:
            raise OutputError(f"cannot save the hints to {self.path}: {e.strerror or e}") from None
        finally:
            tmp.unlink(missing_ok=True)
        self._on_disk = text

    def snapshot(self) -> tuple[HintFile, int]:
        with self.lock:
            return self.hints, self.version
