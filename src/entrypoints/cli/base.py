"""Shared CLI plumbing: the container in ctx.obj, JSON output, one-line errors."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from domain.paths import is_strictly_inside
from entrypoints.bounds import MAX_SQL_INT

class _SqlInt(click.IntRange):
    """Integers that reach SQL: beyond a 64-bit signed integer they are a usage error, not an OverflowError.
    Help and errors say "a non-negative number" instead of spelling out 2**63 - 1."""

    def __init__(self, minimum: int, description: str) -> None:
        super().__init__(minimum, MAX_SQL_INT)
        self._description = description

    def _describe_range(self) -> str:
        return self._description


OFFSET = _SqlInt(0, "a non-negative number")
ROW_ID = _SqlInt(1, "a positive number")


class Text(click.ParamType):
    """Text a command uses as a name or value: it must be valid Unicode.

    Python decodes argv bytes that are not UTF-8 into lone surrogates (surrogateescape); such a
    "string" fails later in SQLite or a UTF-8 encoder. File paths (click.Path) keep any bytes.
    """

    name = "text"

    def convert(self, value, param, ctx):
        value = click.STRING.convert(value, param, ctx)
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raw = value.encode("utf-8", "surrogateescape")
                self.fail(f"{raw!r} is not valid UTF-8 text", param, ctx)
        return value


TEXT = Text()


def strict_text(command: click.Command) -> click.Command:
    """Every plain-string parameter of `command` (and its sub-commands) becomes TEXT."""
    for param in command.params:
        if param.type is click.STRING:
            param.type = TEXT
    for sub in getattr(command, "commands", {}).values():
        strict_text(sub)
    return command


class MlxmGroup(click.Group):
    """A click group that turns every error into one line and a non-zero exit."""

    def get_command(self, ctx: click.Context, cmd_name: str):
        # Applied when a command is resolved, so commands added by any module are covered.
        command = super().get_command(ctx, cmd_name)
        return strict_text(command) if command is not None else None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except BrokenPipeError:
            raise  # `mlxm list | head -1`: click ends quietly on EPIPE, as other Unix tools do
        except KeyboardInterrupt:
            click.echo("Error: interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:  # noqa: BLE001 - the CLI never shows a traceback to users
            if _output_cannot_encode(exc):
                # e.g. PYTHONIOENCODING=latin-1 and a model description with an emoji
                click.echo(f"Error: standard output's encoding ({exc.encoding}) cannot show {exc.object[exc.start:exc.end]!r}; "
                           "use a UTF-8 locale or PYTHONIOENCODING=utf-8", err=True)
                ctx.exit(2)
            if isinstance(exc, _USER_FILE_ERRORS):
                # A path the user gave that cannot be used is their mistake, not an internal error.
                click.echo(f"Error: {_one_line(_describe_file_error(exc, _home_of(ctx)))}", err=True)
                ctx.exit(2)
            described = describe_error(ctx, exc)
            if described is None:
                from entrypoints.composition.settings import describe_settings_error

                if bad_setting := describe_settings_error(exc):
                    click.echo(f"Error: {_one_line(bad_setting)}", err=True)  # e.g. MLX_MANAGER_AUTH=enabled
                    ctx.exit(2)
                if os.environ.get("MLXM_DEBUG"):
                    raise
                click.echo(f"Error: internal error: {type(exc).__name__}: {exc} (set MLXM_DEBUG=1 for details)", err=True)
                ctx.exit(70)
            message, exit_code = described
            click.echo(f"Error: {message}", err=True)
            ctx.exit(exit_code)


def describe_error(ctx: click.Context, exc: BaseException) -> tuple[str, int] | None:
    """A mapped error's one-line message (without `Error: `) and exit code; None when the map does not know it."""
    # Imported on the error path only: the map names the catalog's errors (and so its model).
    from application.errors import OutOfSpace
    from entrypoints.errors import mapping_for, message_for, recognise

    exc = recognise(exc)  # e.g. a raw "No space left on device" from any write is OutOfSpace
    mapping = mapping_for(exc)
    if mapping is None:
        return None
    message = message_for(exc, _home_of(ctx) if isinstance(exc, OutOfSpace) else None)
    suggestions = getattr(exc, "suggestions", None)
    if suggestions and "did you mean" not in message:
        message += f"; did you mean: {', '.join(suggestions)}?"
    return _one_line(message), mapping.exit_code


def _output_cannot_encode(exc: Exception) -> bool:
    if not isinstance(exc, UnicodeEncodeError):
        return False
    import codecs

    try:
        return codecs.lookup(exc.encoding).name == codecs.lookup(getattr(sys.stdout, "encoding", None) or "").name
    except LookupError:
        return False


_USER_FILE_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)


def _home_of(ctx: click.Context) -> str | None:
    """MLX_MANAGER_HOME of this command (None when the settings cannot say): only used on the error path."""
    try:
        container = ctx.find_root().obj
        if container is not None:
            return str(container.settings().manager.home)
        from entrypoints.composition.settings import ManagerSettings

        return str(ManagerSettings().home)
    except Exception:  # noqa: BLE001 - the plain message is printed instead
        return None


def _describe_file_error(exc: OSError, home: str | None = None) -> str:
    blocker = _file_where_a_folder_goes(exc)
    # Only inside the home is the folder mlxm's: elsewhere the path is the user's (e.g. `run --image a/b`).
    if blocker is not None and home is not None and is_strictly_inside(blocker, os.path.abspath(home)):
        # e.g. a file named `staging` or `models` in MLX_MANAGER_HOME: "File exists" told nobody what to do.
        return (f"{blocker} is a file, but mlxm keeps a folder there; move that file away "
                f"(e.g. mv {blocker} {blocker}.moved) and try again")
    reason = exc.strerror or type(exc).__name__
    return f"{reason}: {exc.filename}" if exc.filename else str(exc) or reason


def _file_where_a_folder_goes(exc: OSError) -> str | None:
    """The file (not a folder) that made creating or entering a folder fail, if that is what happened."""
    if isinstance(exc, FileExistsError):
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        # Only a mkdir's "File exists" means a folder was wanted; an exclusive create's means a file was.
        if tb is None or tb.tb_frame.f_code.co_name not in ("mkdir", "makedirs"):
            return None
    elif not isinstance(exc, NotADirectoryError):
        return None
    if not isinstance(exc.filename, (str, bytes, os.PathLike)):
        return None
    path = os.path.abspath(os.fsdecode(exc.filename))
    while True:
        if os.path.lexists(path) and not os.path.isdir(path):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


class OutputFile(click.Path):
    """A file path to write: its folder must already exist and be writable (checked before any work is done)."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, writable=True)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        folder = os.path.dirname(os.path.abspath(os.fsdecode(path)))
        if not os.path.isdir(folder):
            self.fail(f"folder {folder!r} does not exist", param, ctx)
        if not os.access(folder, os.W_OK):
            self.fail(f"folder {folder!r} is not writable", param, ctx)
        return path


OUTPUT_FILE = OutputFile()


class InputFile(click.Path):
    """A file to read whole: it must exist and be a regular file. `/dev/zero` was read until memory ran
    out, and a FIFO without a writer waited forever."""

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        if not os.path.isfile(path):
            self.fail(f"{os.fsdecode(path)!r} is not a regular file", param, ctx)
        return path


INPUT_FILE = InputFile()


def _one_line(message: str) -> str:
    return " ".join(message.split())


def get_container(ctx: click.Context):
    """The container tests pass with `obj=`; built from the environment otherwise."""
    root = ctx.find_root()
    if root.obj is None:
        from entrypoints.composition.container import command_line_container

        root.obj = command_line_container()
    return root.obj


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=json_value))


def json_value(value: Any) -> Any:
    """Times as ISO 8601 with `Z` for UTC, the same form the HTTP API (pydantic) writes."""
    from datetime import date, datetime

    if isinstance(value, datetime):
        text = value.isoformat()
        return text[: -len("+00:00")] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()


def prompt_secret(text: str, *, confirm: bool = False, err: bool = False) -> str:
    """A hidden prompt on a terminal. From a pipe, the line is read as it is: nothing is echoed to a pipe,
    so getpass's "Password input may be echoed" warning would be noise the user cannot act on."""
    if sys.stdin is None:  # started with standard input closed (`<&-`): nothing to read from
        raise click.UsageError(f"no {text.lower()} on standard input (it is closed)")
    if sys.stdin.isatty():
        return click.prompt(text, hide_input=True, confirmation_prompt=confirm, err=err)
    value = sys.stdin.readline().rstrip("\r\n")
    if confirm:
        again = sys.stdin.readline().rstrip("\r\n")
        if again != value:
            raise click.UsageError(f"the two {text.lower()} lines differ")
    if not value:
        raise click.UsageError(f"no {text.lower()} on standard input")
    return value
