"""`streamcolor stream` and `streamcolor webcam`: live runs, their preview page and their hints."""

from __future__ import annotations

import signal
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from streamcolor.capture import SourceSpec, camera_spec
from streamcolor.commands.options import (
    Backend,
    BackendOpt,
    ModelOpt,
    OverwriteOpt,
    PrecisionOpt,
    Preset,
    ThreadsOpt,
    VividnessOpt,
    _err,
    _hint_file,
    _warn,
)
from streamcolor.config import LiveConfig
from streamcolor.errors import StreamcolorError
from streamcolor.latency import format_summary
from streamcolor.live import LiveControls, check_live_outputs, run_live
from streamcolor.model import DEFAULT_MODEL
from streamcolor.output_plan import EncodeOptions, check_output_path


class LiveTemporal(str, Enum):
    causal = "causal"
    off = "off"


LiveTemporalOpt = Annotated[
    LiveTemporal, typer.Option(help="Flicker filter (causal: reads no future frame, adds no delay).")
]


HostOpt = Annotated[str, typer.Option(help="Preview address (loopback unless --allow-remote).")]


PortOpt = Annotated[int, typer.Option(help="Preview port (0: any free port).", min=0, max=65535)]


AllowRemoteOpt = Annotated[
    bool, typer.Option("--allow-remote", help="Let the preview listen beyond this machine (--host 0.0.0.0).")
]


RecordOpt = Annotated[Path | None, typer.Option(help="Also record the colorized video to this file.")]


LiveHintsOpt = Annotated[
    Path | None,
    typer.Option(
        "--hints",
        help="Colour hints file to apply from the start (one saved from the preview replays that session).",
    ),
]


SaveHintsOpt = Annotated[
    Path | None,
    typer.Option(help="At the end, write the session's hints (--hints and those clicked on the preview) here."),
]


def _live(
    spec: SourceSpec,
    out: str | None,
    cfg: LiveConfig,
    record: Path | None,
    preview: bool,
    host: str,
    port: int,
    allow_remote: bool,
    quiet: bool,
    overwrite: bool = False,
    save_hints: Path | None = None,
) -> None:
    """Run a live session with or without the preview page; print the latency table at the end
    and write the session's hints to save_hints."""
    from streamcolor.preview import PreviewServer

    def started(seconds: float) -> None:
        if not quiet:
            _err(f"first frame out {seconds:.1f} s after start")

    controls = None
    try:
        check_live_outputs(spec, out, record, overwrite, save_hints)
        controls = LiveControls(cfg.temporal, cfg.hints)
        if preview:
            with PreviewServer(host, port, allow_remote, controls) as server:
                _err(f"preview: {server.url}  (Ctrl-C stops)")
                summary = run_live(
                    spec,
                    out,
                    cfg,
                    record,
                    server,
                    warn=_warn,
                    controls=controls,
                    on_first_frame=started,
                    overwrite=overwrite,
                )
        else:
            if not quiet:
                _err("colorizing live (Ctrl-C stops)")
            summary = run_live(
                spec, out, cfg, record, warn=_warn, controls=controls, on_first_frame=started, overwrite=overwrite
            )
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM while waiting for an input that never came
        signum = e.args[0] if e.args and isinstance(e.args[0], int) else signal.SIGINT
        what = "terminated" if signum == signal.SIGTERM else "interrupted"
        _err(f"{what} while waiting for {spec.url}; nothing was written")
        raise typer.Exit(128 + signum) from None
    except StreamcolorError as e:
        _err(str(e))
        if save_hints is not None and controls is not None and controls.hints.given:
            _save_live_hints(save_hints, controls, quiet)  # the hints given before the failure are kept
        raise typer.Exit(e.exit_code) from None
    if not quiet:
        typer.echo(format_summary(summary), err=True)
    if save_hints is not None:
        try:
            _save_live_hints(save_hints, controls, quiet)
        except StreamcolorError as e:
            _err(str(e))
            raise typer.Exit(e.exit_code) from None
    if summary.signum:  # stopped by Ctrl-C or SIGTERM: 130 / 143, as `video` (the recording is finished)
        raise typer.Exit(128 + summary.signum)


def _save_live_hints(path: Path, controls: LiveControls, quiet: bool) -> None:
    """The session's hints as a hints file (the preview's 'save hints' writes the same)."""
    from streamcolor.errors import OutputError
    from streamcolor.hints.file import dump_hints

    session = controls.hints.session()
    try:
        path.write_text(dump_hints(session), encoding="utf-8")
    except OSError as e:
        raise OutputError(f"cannot write the hints to {path}: {e.strerror or e}") from None
    if not quiet:
        _err(f"hints saved: {path} ({len(session.hints)} hint(s))")


def stream(
    src: Annotated[
        str, typer.Argument(metavar="IN", help="Live input: rtsp://, http(s)://, udp://, srt://, rtmp://, or a file.")
    ],
    out: Annotated[
        str | None,
        typer.Argument(metavar="[OUT]", help="udp:// (MPEG-TS), srt://, rtmp://, an .m3u8 playlist (HLS), or a file."),
    ] = None,
    realtime: Annotated[bool, typer.Option("--realtime", help="Play a file input at its own pace (as live).")] = False,
    preview: Annotated[bool, typer.Option("--preview", help="Serve the live preview page.")] = False,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    allow_remote: AllowRemoteOpt = False,
    record: RecordOpt = None,
    hints: LiveHintsOpt = None,
    save_hints: SaveHintsOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    backend: BackendOpt = Backend.auto,
    temporal: LiveTemporalOpt = LiveTemporal.causal,
    keyframe_interval: Annotated[
        int, typer.Option(help="Run the network on every n-th frame, carry colour between.", min=1)
    ] = 2,
    crf: Annotated[int, typer.Option(help="H.264 quality (lower is better).", min=0, max=51)] = 23,
    preset: Annotated[Preset, typer.Option(help="H.264 speed preset.")] = Preset.veryfast,
    gop: Annotated[float, typer.Option(help="Seconds between key frames in the output.", min=0.1)] = 1.0,
    read_timeout: Annotated[
        float, typer.Option(help="Seconds without data before the input counts as lost (then reconnect).", min=0.1)
    ] = 2.0,
    threads: ThreadsOpt = 0,
    precision: PrecisionOpt = None,
    vividness: VividnessOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary at the end.")] = False,
) -> None:
    """Colorize a live stream with low delay: drops the oldest frames rather than fall behind, reconnects."""
    if out is None and not preview and record is None:
        _err("give OUT, --record or --preview (or several)")
        raise typer.Exit(2)
    try:
        cfg = LiveConfig(
            model=model,
            backend=backend.value,
            threads=threads or None,
            precision=precision.value if precision else None,
            vividness=vividness,
            temporal=temporal.value,
            keyframe_interval=keyframe_interval,
            encode=EncodeOptions(crf=crf, preset=preset.value, tune="zerolatency"),
            gop_seconds=gop,
            read_timeout=read_timeout,
            hints=_hint_file(hints, None),
        )
    except StreamcolorError as e:
        _err(str(e))
        raise typer.Exit(e.exit_code) from None
    spec = SourceSpec(src, realtime=realtime)
    _live(spec, out, cfg, record, preview, host, port, allow_remote, quiet, overwrite, save_hints)


def webcam(
    device: Annotated[
        str | None, typer.Argument(help="Camera index or path (/dev/video0); default: the first camera.")
    ] = None,
    size: Annotated[str | None, typer.Option(help="Capture size, e.g. 640x480 (default: the camera's).")] = None,
    fps: Annotated[int | None, typer.Option(help="Capture frame rate (default: the camera's).", min=1)] = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    allow_remote: AllowRemoteOpt = False,
    record: RecordOpt = None,
    hints: LiveHintsOpt = None,
    save_hints: SaveHintsOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    backend: BackendOpt = Backend.auto,
    temporal: LiveTemporalOpt = LiveTemporal.causal,
    threads: ThreadsOpt = 0,
    precision: PrecisionOpt = None,
    vividness: VividnessOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary at the end.")] = False,
) -> None:
    """Colorize a camera live, with a preview page (input and output side by side) in your browser."""
    try:
        # before looking for the camera: the refusals cost the user nothing
        for target in (record, save_hints):
            if target is not None:
                check_output_path(target, [], overwrite)
        hint_file = _hint_file(hints, None)
        spec = camera_spec(device, size, fps)
        cfg = LiveConfig(
            model=model,
            backend=backend.value,
            threads=threads or None,
            precision=precision.value if precision else None,
            vividness=vividness,
            temporal=temporal.value,
            hints=hint_file,
        )
    except StreamcolorError as e:
        _err(str(e))
        raise typer.Exit(e.exit_code) from None
    _live(spec, None, cfg, record, True, host, port, allow_remote, quiet, overwrite, save_hints)
