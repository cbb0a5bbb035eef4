"""Shared CLI plumbing: the container in ctx.obj, JSON output, one-line errors."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

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
                click.echo(f"Error: {_one_line(_describe_file_error(exc))}", err=True)
                ctx.exit(2)
            # Imported on the error path only: the map names the catalog's errors (and so its model).
            from entrypoints.composition.settings import describe_settings_error
            from entrypoints.errors import mapping_for

            mapping = mapping_for(exc)

            if mapping is None and (bad_setting := describe_settings_error(exc)):
                click.echo(f"Error: {_one_line(bad_setting)}", err=True)  # e.g. MLX_MANAGER_AUTH=enabled
                ctx.exit(2)
            if mapping is None:
                if os.environ.get("MLXM_DEBUG"):
                    raise
                click.echo(f"Error: internal error: {type(exc).__name__}: {exc} (set MLXM_DEBUG=1 for details)", err=True)
                ctx.exit(70)
            message = str(exc)
            suggestions = getattr(exc, "suggestions", None)
            if suggestions and "did you mean" not in message:
                message += f"; did you mean: {', '.join(suggestions)}?"
            click.echo(f"Error: {_one_line(message)}", err=True)
            ctx.exit(mapping.exit_code)


def _output_cannot_encode(exc: Exception) -> bool:
    if not isinstance(exc, UnicodeEncodeError):
        return False
    import codecs

    try:
        return codecs.lookup(exc.encoding).name == codecs.lookup(getattr(sys.stdout, "encoding", None) or "").name
    except LookupError:
        return False


_USER_FILE_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)


def _describe_file_error(exc: OSError) -> str:
    reason = exc.strerror or type(exc).__name__
    return f"{reason}: {exc.filename}" if exc.filename else str(exc) or reason


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
