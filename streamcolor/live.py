"""Live colorization: a camera or a network stream in, colour out with little delay.

Three threads with at most one frame in work per stage:

    capture (demux + decode, no frame threading) --queue of 1--> colorize (batch 1, causal
    filter) --queue of 1--> output (encode to OUT and --record, publish to the preview)

A live source never waits for us: when a stage falls behind, the oldest waiting frame is
dropped and counted instead of building a backlog (delay would grow without bound). A
file without --realtime is not live: it waits for us (backpressure) and nothing is dropped.
Every frame carries perf_counter stamps from its arrival to its output, so latency is
measured per stage, excluding the camera and the network themselves (latency.py).

Colour hints (streamcolor/hints/) come from a --hints file and from clicks on the preview
page (LiveHints). The automatic model runs until the first hint; then the colorize thread
loads the hint model once and runs every frame through it with a HintTracker, causally: a
hint clicked while frame t is shown starts on the next frame colorized.

The stages are pipeline.run_pipeline's with the live Policy; the input is capture.py, the
figures latency.py, the settings config.LiveConfig.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from streamcolor.api import ColorizeConfig, make_colorizer
from streamcolor.capture import LiveCapture, LiveFrame, SourceSpec
from streamcolor.colorizer import Colorizer
from streamcolor.config import LIVE_TEMPORAL, LiveConfig
from streamcolor.errors import ConfigError, InputError, OutputError
from streamcolor.hints.file import HintFile
from streamcolor.hints.live import LiveHints
from streamcolor.hints.tracker import HintTracker
from streamcolor.latency import LatencyStats, LiveSummary
from streamcolor.memory import keep_frame_buffers
from streamcolor.output_plan import check_output_path, is_url
from streamcolor.pipeline import FrameSequencer, Policy, run_pipeline
from streamcolor.probe import has_protocol, no_protocol_line
from streamcolor.sink import VideoSink

CLOCK = Fraction(1, 1000)  # output time base of live streams: milliseconds of arrival time


class LiveControls:
    """Settings the preview page may change while running (read by the colorize thread),
    and the session's colour hints."""

    def __init__(self, temporal: str, hints: HintFile | None = None):
        self.temporal = temporal
        self.hints = LiveHints(hints)

    def set_temporal(self, mode: str) -> None:
        if mode not in LIVE_TEMPORAL:
            raise ConfigError(f"unknown temporal mode '{mode}'; choose one of: {', '.join(LIVE_TEMPORAL)}")
        self.temporal = mode


def run_live(
    spec: SourceSpec,
    out: str | Path | None,
    cfg: LiveConfig | None = None,
    record: Path | None = None,
    preview=None,
    stop: threading.Event | None = None,
    warn: Callable[[str], None] = print,
    colorizer: Colorizer | None = None,
    controls: LiveControls | None = None,
    on_first_frame: Callable[[float], None] | None = None,
    overwrite: bool = False,
    hint_colorizer: Colorizer | None = None,
) -> LiveSummary:
    """Colorize SPEC live into OUT (URL, .m3u8 or file) and/or RECORD and/or the preview,
    until the input ends (files), stop is set, or Ctrl-C. Latency mode: batch 1, no
    frame-threaded decoding, at most one frame in work per stage. on_first_frame gets the
    seconds from the call to the first frame written. Hints: cfg.hints from the start, and
    controls.hints while running (the preview page); hint_colorizer: the hint model's
    colorizer (default: cfg.hints_model, loaded at the first hint)."""
    cfg = cfg or LiveConfig()
    stop = stop or threading.Event()
    if out is None and record is None and preview is None:
        raise ConfigError("nothing to do: give an output, --record, or --preview")
    with _ctrl_c_as_flag() as ctrl_c:
        return _run_live(
            spec,
            out,
            cfg,
            record=record,
            preview=preview,
            stop=stop,
            warn=warn,
            colorizer=colorizer,
            controls=controls,
            ctrl_c=ctrl_c,
            on_first_frame=on_first_frame,
            overwrite=overwrite,
            hint_colorizer=hint_colorizer,
        )


def check_live_outputs(
    spec: SourceSpec, out: str | Path | None, record: Path | None, overwrite: bool, save_hints: Path | None = None
) -> None:
    """The file outputs of a live run (OUT when a file or playlist, --record, --save-hints),
    checked before anything starts: writable, not the input, not an existing file unless
    overwrite."""
    if is_url(spec.url) and not has_protocol(spec.url):
        raise InputError(no_protocol_line(spec.url.split("://", 1)[0]))
    for target in (out, record):
        if target is not None and is_url(target) and not has_protocol(str(target)):
            raise OutputError(no_protocol_line(str(target).split("://", 1)[0]))
        if target is not None and not is_url(target):
            check_output_path(Path(target), [] if is_url(spec.url) else [Path(spec.url)], overwrite)
    if save_hints is not None:
        for target in (out, record):
            if target is not None and not is_url(target) and Path(target).resolve() == Path(save_hints).resolve():
                raise OutputError(f"--save-hints names the video output: {save_hints}")
        check_output_path(Path(save_hints), [] if is_url(spec.url) else [Path(spec.url)], overwrite)


@contextlib.contextmanager
def _ctrl_c_as_flag():
    """Ctrl-C sets an event instead of raising KeyboardInterrupt wherever the main thread
    happens to be: a KeyboardInterrupt raised inside a library call (FFmpeg's I/O callback,
    ONNX Runtime's setup) could be lost on a busy machine, and the stream ran on. The main
    loop checks the event at least every hold interval. Outside the main thread (tests,
    embedding) signals are left alone."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    # SIGTERM (a service manager stopping us) ends a live run the same clean way
    def handler(signum, frame) -> None:
        flag.signum = signum  # 130 or 143 at the end, as for files
        flag.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_live(
    spec: SourceSpec,
    out: str | Path | None,
    cfg: LiveConfig,
    *,
    record: Path | None,
    preview,
    stop: threading.Event,
    warn: Callable[[str], None],
    colorizer: Colorizer | None,
    controls: LiveControls | None,
    ctrl_c: threading.Event,
    on_first_frame: Callable[[float], None] | None,
    overwrite: bool = False,
    hint_colorizer: Colorizer | None = None,
) -> LiveSummary:
    """run_live's body, with Ctrl-C already turned into the ctrl_c event."""
    called = time.perf_counter()
    check_live_outputs(spec, out, record, overwrite)
    colorizer = colorizer or make_colorizer(_colorize_config(cfg, cfg.model))
    controls = controls or LiveControls(cfg.temporal, cfg.hints)
    hints = controls.hints
    if cfg.hints and hints.file is not cfg.hints and not hints.session():
        hints = controls.hints = LiveHints(cfg.hints)
    keep_frame_buffers()
    try:
        capture = LiveCapture(spec, cfg, warn, cancelled=lambda: ctrl_c.is_set() or stop.is_set())
    except KeyboardInterrupt:
        if stop.is_set() and not ctrl_c.is_set():  # stopped by the caller while waiting: nothing came
            raise InputError(f"no input from {spec.url}: stopped while waiting for it") from None
        raise KeyboardInterrupt(getattr(ctrl_c, "signum", signal.SIGINT)) from None  # which signal, for the exit code
    info = capture.info
    # live outputs and recordings are 8-bit: the latency path has no deep luma (output_plan.deep_format)
    if spec.live:  # arrival-time clock: monotonic across reconnects and honest about drops
        out_info = replace(info, time_base=CLOCK, other_streams=(), bit_depth=min(info.bit_depth, 8))
    else:
        out_info = replace(info, other_streams=(), bit_depth=min(info.bit_depth, 8))
    chroma_shape = ((info.height + 1) // 2, (info.width + 1) // 2)
    rate = info.average_rate or 25
    enc = replace(cfg.encode, gop=cfg.encode.gop or max(1, round(float(rate) * cfg.gop_seconds)))
    sinks = [VideoSink(t, out_info, enc, warn=warn) for t in (out, record) if t is not None]
    # One frame's work before the first real one: OpenCV builds its Lab tables on first
    # use (~100 ms) and the engine allocates on its first run.
    blank = np.zeros((info.height, info.width), np.uint8)
    ab_blank = colorizer.predict([colorizer.network_input(blank, info.full_range)])[0]
    colorizer.chroma_planes(blank, ab_blank, chroma_shape, info.full_range, info.matrix)
    stats = LatencyStats()

    rate = float(info.average_rate or 25)
    t0: float | None = None  # arrival of the first frame colorized: 0 on the output's clock when live

    def seconds_of(f: LiveFrame) -> float:
        """A frame's time for the hints: a camera's or a network stream's own clock means
        nothing after a reconnect, so those use the arrival time (OUT's and --record's clock);
        a file uses its own timestamps (as `streamcolor video` does: a session replays on it)."""
        if spec.remote:
            return f.t_arrival - t0
        return float(f.pts * info.time_base) if f.pts is not None and info.time_base else f.index / rate

    def hint_model() -> Colorizer | None:
        """The hint model's colorizer, loaded once, at the first hint; None when it cannot be."""
        nonlocal hint_colorizer
        if hint_colorizer is None and hints.state != "failed":
            try:
                if colorizer.card.hints:  # --model is a hint model itself
                    hint_colorizer = colorizer
                else:
                    hint_colorizer = make_colorizer(_colorize_config(cfg, cfg.hints_model))
            except Exception as e:  # noqa: BLE001 - a missing or broken model: go on without hints
                hints.state = "failed"
                warn(f"hints are off: cannot load the hint model {cfg.hints_model}: {_one_line(e)}")
        return hint_colorizer

    def colorize(frames: Iterable[LiveFrame]) -> Iterator[LiveFrame]:
        nonlocal t0
        cv2.setNumThreads(1)  # OpenCV's pool would fight the engine and the encoder for cores
        mode, seq = None, None
        active = colorizer  # the automatic model until a hint arrives
        tracker, seen = None, None  # the HintTracker, and the hints' version it was made for
        for f in frames:
            f.t_start = time.perf_counter()
            if t0 is None:
                t0 = f.t_arrival
            f.seconds = seconds_of(f)
            fresh = controls.temporal != mode  # switched on the preview page: a fresh filter
            if hints.state != "failed":
                seen, every, new = hints.pull(seen)
                made = None
                if every is not None:  # the first frame, or hints cleared: a fresh tracker, if any may apply
                    live = [h for h in every.hints if not h.ended(f.seconds)]
                    made = HintFile(tuple(live), every.references) if live or every.references else None
                    fresh = fresh or tracker is not None or made is not None
                    tracker = None
                elif new and tracker is not None:
                    for h in new:
                        tracker.add(h)
                elif new:  # the first hint clicked: switch to the hint model
                    made = HintFile(tuple(new))
                    fresh = True
                if made is not None:
                    tracker = _tracker(made, hint_model(), info, warn, hints)
            if fresh:
                mode = controls.temporal
                if hints.state != "failed":
                    hints.state = "on" if tracker is not None else "off"
                active = hint_colorizer if tracker is not None else colorizer
                if tracker is not None:
                    kw = dict(batch=1, tracker=tracker, seconds_of=seconds_of, first_index=f.index)
                    seq = FrameSequencer(active, info.full_range, mode, 1, **kw)
                else:
                    interval = cfg.keyframe_interval if mode != "off" else 1
                    seq = FrameSequencer(colorizer, info.full_range, mode, interval, batch=1)
            applied = tracker.stats.applied_frames if tracker is not None else 0
            for g, ab_lo, l_lo in seq.push(f, f.y8):
                if g.interlaced:  # broadcast streams often are: each field's chroma from its own luma
                    g.chroma = active.field_chroma_planes(g.y8, ab_lo, chroma_shape, info.full_range, info.matrix)
                else:
                    g.chroma = active.chroma_planes(g.y8, ab_lo, chroma_shape, info.full_range, info.matrix, l_lo)
            f.hinted = tracker is not None and tracker.stats.applied_frames > applied
            f.t_colored = time.perf_counter()
            yield f

    start = time.perf_counter()
    started = False
    last: LiveFrame | None = None
    last_pts = -1

    def emit(f: LiveFrame) -> None:
        nonlocal last_pts
        if spec.live:  # ms since the first colorized frame's arrival (t0), strictly increasing
            f.pts = max(int(round((f.t_arrival - t0) * 1000)), last_pts + 1)
        last_pts = f.pts if f.pts is not None else last_pts
        for s in sinks:
            s.write(f)

    def hold() -> None:
        """No frame for hold_seconds: while the input is lost, repeat the last picture so
        players downstream keep going."""
        if last is not None and not capture.connected.is_set():
            emit(replace(last, t_arrival=time.perf_counter()))
            stats.held += 1

    def deliver(item: LiveFrame) -> None:
        nonlocal started, last
        first, started = not started, True
        emit(item)
        if first and on_first_frame is not None:
            on_first_frame(time.perf_counter() - called)
        t_out = time.perf_counter()
        stats.add(item, t_out)
        hints.shown(item.seconds, item.index)
        last = item
        if preview is not None:
            preview.publish(item, info, _status(stats, capture, controls))

    # latency mode: one frame waits per stage, at most; a live source drops the oldest
    policy = Policy(
        maxsize=1,
        drop_oldest=spec.live,
        idle_s=cfg.hold_seconds,
        on_idle=hold,
        on_drop=stats.drop,
        stop=stop,
        cancelled=ctrl_c.is_set,
        join_s=cfg.read_timeout + 5,
    )
    try:
        interrupted = not run_pipeline(lambda: capture.run(stop), colorize, deliver, policy)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop.set()
        for s in sinks:
            s.finish()
    return LiveSummary(
        frames_in=capture.frames,
        frames_out=stats.frames_out,
        dropped=stats.dropped,
        held=stats.held,
        reconnects=capture.reconnects,
        seconds=time.perf_counter() - start,
        latency=stats.percentiles(),
        interrupted=interrupted,
        width=info.width,
        height=info.height,
        stats=stats,
        signum=getattr(ctrl_c, "signum", signal.SIGINT) if interrupted else 0,
        lost_at_end=capture.lost,
    )


def _status(stats: LatencyStats, capture: LiveCapture, controls: LiveControls) -> dict:
    recent = np.array(stats.recent_total) * 1000 if stats.recent_total else np.zeros(1)
    return {
        "frames": stats.frames_out,
        "fps": round(stats.fps(), 1),
        "latency_p50_ms": round(float(np.percentile(recent, 50)), 1),
        "latency_p99_ms": round(float(np.percentile(recent, 99)), 1),
        "dropped": stats.dropped,
        "reconnects": capture.reconnects,
        "connected": capture.connected.is_set(),
        "temporal": controls.temporal,
        "hints": controls.hints.count,
        "hints_state": controls.hints.state,
    }


def _colorize_config(cfg: LiveConfig, model: Path) -> ColorizeConfig:
    return ColorizeConfig(
        model=model, backend=cfg.backend, threads=cfg.threads, precision=cfg.precision, vividness=cfg.vividness
    )


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _tracker(
    hf: HintFile, model: Colorizer | None, info, warn: Callable[[str], None], hints: LiveHints
) -> HintTracker | None:
    """A HintTracker for hf on the hint model; None (one warning, hints off) when it cannot be."""
    if model is None:
        return None
    try:
        return HintTracker(hf, model, info.width, info.height, info.full_range)
    except Exception as e:  # noqa: BLE001 - an unreadable reference photo: go on without hints
        hints.state = "failed"
        warn(f"hints are off: {_one_line(e)}")
        return None
