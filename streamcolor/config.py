"""The settings a file run and a live run share (RunConfig), checked in one place.

api.ColorizeConfig (files, shots, batch, the studio) and live.LiveConfig (cameras, streams)
add their own; both are frozen once built (CLI flag > model card default), and each part of
a run is handed only its own section (`encode` to the sink, `hints` to the tracker...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streamcolor.errors import ConfigError
from streamcolor.hints.file import HintFile
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
