"""Typed errors: the library raises these, the CLI turns them into one line and an exit code."""


class StreamcolorError(Exception):
    """Base class; the message is one line meant for the person running the command."""

    exit_code = 1


class InputError(StreamcolorError):
    """The input cannot be used: missing, unreadable, no video, no frames."""


class InputNotYetThere(InputError):
    """A network input that sent nothing or refused the connection: its sender may not have
    started yet (a live run waits for it; anything else reports it as an InputError)."""


class OutputError(StreamcolorError):
    """The output cannot be written: folder missing, not writable, same as the input."""


class ConfigError(StreamcolorError):
    """A flag value or model card that cannot be used."""

    exit_code = 2


class NotAvailableError(StreamcolorError):
    """A mode or backend this installation cannot run (not installed, no GPU, not built yet)."""

    exit_code = 2
