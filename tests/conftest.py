from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from media import make_video  # noqa: E402

from streamcolor.api import ColorizeConfig, make_colorizer  # noqa: E402


@pytest.fixture(scope="session")
def colorizer():
    """The shipped default model, loaded once for the whole session."""
    return make_colorizer(ColorizeConfig(threads=2))


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def vfr_clip(media_dir: Path) -> Path:
    """H.264 + AAC in MP4, variable frame rate, rotated 90 degrees, BT.709 limited range."""
    return make_video(media_dir / "vfr.mp4", frames=15, vfr=True, rotation=90, colorspace=1, color_range=1)
