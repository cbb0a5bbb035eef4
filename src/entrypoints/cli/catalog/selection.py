from __future__ import annotations

import click

from entrypoints.cli import completion
from entrypoints.cli.base import echo_json, get_container


@click.command("select")
@click.argument("name", required=False, shell_complete=completion.complete_pullable)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def select(ctx, name: str | None, as_json: bool) -> None:
    """Select the default model (an alias is stored as its canonical id); no NAME shows it."""
    service = get_container(ctx).selection_service()
    result = service.select(name) if name else service.current()
    if as_json:
        echo_json({"model_id": result.model_id, "changed": result.changed, "reason": result.reason})
        return
    click.echo(result.model_id if not name else f"Selected {result.model_id}")
