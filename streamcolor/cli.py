"""The `streamcolor` command: a thin edge that parses flags, calls the library, and turns
typed errors into one line on stderr and an exit code (fastapi-cli's `cli.py` pattern)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Annotated

import typer

from streamcolor import __version__
from streamcolor.commands.batch import batch
from streamcolor.commands.files import image, video
from streamcolor.commands.live import stream, webcam
from streamcolor.commands.options import Interrupted, _err
from streamcolor.commands.tools import bench, engines_app, studio
from streamcolor.errors import StreamcolorError

app = typer.Typer(
    name="streamcolor",
    help="Colorize black-and-white video and photos.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

for command in (video, image, batch, stream, webcam, studio, bench):  # the order `streamcolor --help` lists them
    app.command()(command)
app.add_typer(engines_app, name="engines")


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        typer.echo(f"streamcolor {__version__}")
        raise typer.Exit()


def _raise_interrupted(signum, frame) -> None:
    raise Interrupted(signum)


def _click_usage(e: Exception) -> tuple[str, int] | None:
    """(first line, exit code) of a click usage error, else None.

    typer >= 0.20 vendors click in a private module and older typers use the click package;
    neither exception module is public API, so the error is recognised by the interface every
    click exception has (exit_code and format_message), not by its class."""
    message, code = getattr(e, "format_message", None), getattr(e, "exit_code", None)
    if not callable(message) or not isinstance(code, int) or isinstance(e, StreamcolorError):
        return None
    lines = str(message()).strip().splitlines()
    # typer 0.29 validates choices with a library that prefixes its own "Value error, "
    first = lines[0].replace("Value error, ", "") if lines else type(e).__name__
    return first, code


def _os_error_line(e: OSError) -> str:
    """'cannot write out.mp4: No space left on device' from any OSError (PyAV's included)."""
    what = e.filename or getattr(e, "log", None)
    reason = e.strerror or str(e)
    return f"{reason}: {what}" if isinstance(what, str | os.PathLike) else reason


def run(args: list[str]) -> int:
    """Run the command line with args and return the exit code; every failure is one line on
    stderr: 2 usage, 1 input/output (OS errors such as a full or read-only disk included),
    130 Ctrl-C, 143 SIGTERM, 3 an internal error."""
    signals = (signal.SIGINT, signal.SIGTERM)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in signals} if main_thread else {}
    try:
        # Without standalone mode, click returns the code of typer.Exit instead of exiting.
        code = app(args=args or ["--help"], standalone_mode=False)
    except (Interrupted, KeyboardInterrupt, typer.Abort) as e:
        term = getattr(e, "signum", None) == signal.SIGTERM
        _err(f"{'terminated' if term else 'interrupted'}; unfinished output deleted")
        return 128 + (signal.SIGTERM if term else signal.SIGINT)
    except StreamcolorError as e:
        _err(str(e))
        return e.exit_code
    except OSError as e:  # a full or read-only disk, a permission refused (PyAV's errors are OSErrors too)
        _err(_os_error_line(e))
        return 1
    except Exception as e:
        usage = _click_usage(e)
        if usage is not None:
            _err(usage[0])
            return usage[1]
        if os.environ.get("STREAMCOLOR_DEBUG"):  # a bug: still one line, the traceback on request
            raise
        _err(f"internal error: {e!r} (set STREAMCOLOR_DEBUG=1 for the traceback)")
        return 3
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code if isinstance(code, int) else 0


def main() -> None:
    """Console entry point."""
    sys.exit(run(sys.argv[1:]))
