"""`streamcolor studio`, `streamcolor bench` and `streamcolor engines build|list`."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from streamcolor.api import ColorizeConfig
from streamcolor.commands.options import (
    Backend,
    BackendOpt,
    Interrupted,
    ModelOpt,
    Precision,
    PrecisionOpt,
    ThreadsOpt,
    _err,
    _size,
)
from streamcolor.errors import StreamcolorError
from streamcolor.model import DEFAULT_MODEL


def studio(
    film: Annotated[Path, typer.Argument(metavar="FILM", help="The video to colour.")],
    hints: Annotated[
        Path | None,
        typer.Option(help="The hints file to edit, saved on every change [default: FILM.hints.toml beside FILM]."),
    ] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free one).", min=0, max=65535)] = 8000,
    threads: ThreadsOpt = 0,
    browser: Annotated[
        bool | None,
        typer.Option(
            "--browser/--no-browser", help="Open the page [default: when run from a terminal].", show_default=False
        ),
    ] = None,
) -> None:
    """Colour a film shot by shot in the browser (127.0.0.1 only), see each hint land, then render."""
    from streamcolor.studio import Studio, StudioServer

    stopped, rendering, saved = None, False, None
    try:
        with Studio(film, hints, threads or None) as st, StudioServer(st, port) as server:
            saved = st.doc.path
            _err(f"studio: {server.url}  (hints saved to {saved} on every change; Ctrl-C stops)")
            if browser or (browser is None and sys.stdout.isatty() and sys.stderr.isatty()):
                import webbrowser

                webbrowser.open(server.url)
            try:
                while True:  # the server runs in its own thread; Ctrl-C or SIGTERM ends this
                    time.sleep(3600)
            except (Interrupted, KeyboardInterrupt) as e:  # the way to stop: said in one line below
                stopped = e
                rendering = st.render is not None and st.render.status.state == "running"
    except StreamcolorError as e:
        _err(str(e))
        raise typer.Exit(e.exit_code) from None
    if stopped is not None:  # leaving the `with` stopped a render under way and deleted its file
        term = getattr(stopped, "signum", None) == signal.SIGTERM
        render = "; the render under way was stopped and its unfinished output deleted" if rendering else ""
        _err(f"{'terminated' if term else 'interrupted'}; the studio stopped, the hints are saved in {saved}{render}")
        raise typer.Exit(128 + (signal.SIGTERM if term else signal.SIGINT))


def bench(
    backend: BackendOpt = Backend.auto,
    precision: PrecisionOpt = None,
    threads: ThreadsOpt = 0,
    frames: Annotated[int, typer.Option(help="Frames per size in the end-to-end runs.", min=8, max=1000)] = 48,
) -> None:
    """Measure speed on this machine in under a minute: model only, then end to end at 480p/720p/1080p."""
    from streamcolor.bench import run_bench

    try:
        cfg = ColorizeConfig(
            backend=backend.value, threads=threads or None, precision=precision.value if precision else None
        )
        run_bench(cfg, frames=frames, print_line=typer.echo)
    except StreamcolorError as e:
        _err(str(e))
        raise typer.Exit(e.exit_code) from None


engines_app = typer.Typer(help="Build and list cached TensorRT engines.", no_args_is_help=True)


EngineDirOpt = Annotated[
    Path | None,
    typer.Option("--dir", help="Engine cache ($STREAMCOLOR_ENGINE_DIR, ./engines, or ~/.cache/streamcolor/engines)."),
]


@engines_app.command("build")
def engines_build(
    model: ModelOpt = DEFAULT_MODEL,
    precision: Annotated[Precision, typer.Option(help="Engine precision.")] = Precision.fp16,
    batch: Annotated[int, typer.Option(help="Largest batch the engine runs.", min=1, max=64)] = 4,
    size: Annotated[str, typer.Option(help="Video frame size the engine is for (WxH).")] = "1920x1080",
    input_size: Annotated[
        str | None, typer.Option(help="Network input size (WxH) instead of --size (the rebuild commands use it).")
    ] = None,
    directory: EngineDirOpt = None,
) -> None:
    """Build a TensorRT engine ahead of time (the first video run would otherwise build it)."""
    from streamcolor.engines.cache import default_dir
    from streamcolor.engines.tensorrt_engine import build_engine, engine_spec
    from streamcolor.model import load_card

    try:
        card = load_card(model)
        hw = _size(input_size, "--input-size") if input_size else card.input_size(*_size(size, "--size"))
        spec = engine_spec(card, hw, batch, precision.value)
        path = build_engine(card, spec, directory or default_dir(), log=lambda m: _err(m))
    except StreamcolorError as e:
        _err(str(e))
        raise typer.Exit(e.exit_code) from None
    typer.echo(str(path))


@engines_app.command("list")
def engines_list(directory: EngineDirOpt = None) -> None:
    """Show the cached engines and whether each still matches its model file."""
    from streamcolor.engines.cache import default_dir, list_engines, weights_sha256

    folder = directory or default_dir()
    rows = list_engines(folder)
    typer.echo(f"engines in {folder}: {len(rows)}")
    models = {p.stem: p for p in DEFAULT_MODEL.parent.glob("*.onnx")}
    for plan, spec in rows:
        if spec is None:
            typer.echo(f"  {plan.name}  BROKEN (no valid .json beside it: delete and rebuild)")
            continue
        h, w = spec.input_hw
        model = models.get(spec.model_name)
        state = "ok"
        if model is not None and weights_sha256(model) != spec.model_sha256:
            state = "STALE (the model file changed: rebuild)"
        typer.echo(
            f"  {plan.name}  {spec.model_name} {w}x{h} batch<={spec.batch} {spec.precision} "
            f"{spec.gpu} (sm {spec.compute_capability}) TensorRT {spec.trt_version}  {state}"
        )
