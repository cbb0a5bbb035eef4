"""Shared CLI plumbing: the container in ctx.obj, JSON output, one-line errors."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from entrypoints.bounds import MAX_SQL_INT
from entrypoints.errors import mapping_for

# Integers that reach SQL: beyond a 64-bit signed integer they are a usage error, not an OverflowError.
OFFSET = click.IntRange(0, MAX_SQL_INT)
ROW_ID = click.IntRange(1, MAX_SQL_INT)


class MlxmGroup(click.Group):
    """A click group that turns every error into one line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("Error: interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:  # noqa: BLE001 - the CLI never shows a traceback to users
            mapping = mapping_for(exc)
            from entrypoints.settings import describe_settings_error

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


def _one_line(message: str) -> str:
    return " ".join(message.split())


def get_container(ctx: click.Context):
    """The container tests pass with `obj=`; built from the environment otherwise."""
    root = ctx.find_root()
    if root.obj is None:
        from entrypoints.container import Container

        root.obj = Container()
    return root.obj


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()
