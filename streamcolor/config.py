"""The settings a file run and a live run share (RunConfig), checked in one place, and a
live run's own (LiveConfig).

api.ColorizeConfig (files, shots, batch, the studio) and LiveConfig (cameras, streams)
add their own; both are frozen once built (CLI flag > model card default), and each part of
a run is handed only its own section (`encode` to the sink, `hints` to the tracker...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streamcolor.errors import ConfigError
from streamcolor.hints.file import HintFile
from streamcolor.model import DEFAULT_MODEL, HINTS_MODEL
from streamcolor.output_plan import EncodeOptions


def check_keyframe_interval(interval: int, temporal: str | None) -> None:
    """The one check of a key-frame interval (the network on every interval-th frame, colour
    carried along the flow between). temporal: the run's temporal mode, or None where it may
    change while running (live: 'off' then runs the network on every frame)."""
    if interval < 1:
        raise ConfigError(f"keyframe interval must be at least 1, got {interval}")
    if interval > 1 and temporal == "off":
        raise ConfigError("--keyframe-interval above 1 needs --temporal causal or bidirectional")


@dataclass(frozen=True)
class RunConfig:
    """What every run takes: the model and its engine, the flicker filter and key frames, the
    encoder's settings, the user's hints and the colour strength."""

    model: Path | None = None
    backend: str = "auto"
    temporal: str = "bidirectional"
    # Network on every n-th frame, colour carried along the flow in between. None: 2 with
    # a temporal filter (measured as good as every frame, benchmarks/temporal_quality.py), 1 without.
    keyframe_interval: int | None = None
    threads: int | None = None  # inference threads; None = all cores
    precision: str | None = None  # None: the backend's default (fp16 on GPUs, fp32 for ONNX Runtime)
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    # user hints and reference photos (streamcolor/hints/); they need a hint model
    hints: HintFile | None = None
    # chroma gain on the network's a*b* (Colorizer); None: the model card's default
    vividness: float | None = None

    def __post_init__(self) -> None:
        if self.keyframe_interval is None:
            object.__setattr__(self, "keyframe_interval", 1 if self.temporal == "off" else 2)
        check_keyframe_interval(self.keyframe_interval, None if self.temporal_may_change() else self.temporal)

    def temporal_may_change(self) -> bool:
        """True where the temporal mode may be switched while running (live)."""
        return False


LIVE_TEMPORAL = ("causal", "off")  # bidirectional needs look-ahead frames: not a live mode


@dataclass(frozen=True)
class LiveConfig(RunConfig):
    """A live run's settings: RunConfig's (streamcolor/config.py) with live defaults, and how
    the input and output are kept going."""

    model: Path = DEFAULT_MODEL
    temporal: str = "causal"
    keyframe_interval: int = 2  # network on every 2nd frame, colour carried by the flow between
    encode: EncodeOptions = field(default_factory=lambda: EncodeOptions(crf=23, preset="veryfast", tune="zerolatency"))
    hints: HintFile | None = None  # hints from the start (--hints): the hint model runs from the first frame
    gop_seconds: float = 1.0  # short GOP: a receiver joining late waits at most this long
    read_timeout: float = 2.0  # seconds without data before the input counts as lost
    open_timeout: float = 5.0  # seconds an open may take (probing a stream), at least read_timeout
    max_backoff: float = 8.0  # longest wait between reconnection attempts
    hold_seconds: float = 0.5  # while the input is lost, repeat the last frame this often
    hints_model: Path = HINTS_MODEL  # loaded at the first hint, unless `model` is itself a hint model

    def __post_init__(self) -> None:
        if self.temporal not in LIVE_TEMPORAL:
            raise ConfigError(
                f"temporal mode '{self.temporal}' is not available live; choose one of: {', '.join(LIVE_TEMPORAL)}"
            )
        super().__post_init__()
        if self.read_timeout <= 0 or self.gop_seconds <= 0:
            raise ConfigError("read timeout and GOP length must be positive")

    def temporal_may_change(self) -> bool:
        return True  # the preview page switches it; 'off' then runs every frame
