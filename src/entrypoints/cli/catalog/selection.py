from __future__ import annotations

import click

from entrypoints.cli import completion
from entrypoints.cli.base import echo_json, get_container


@click.command("select")
@click.argument("name", required=False, shell_complete=completion.complete_pullable)
@click.option("--pull", "pull_first", is_flag=True, help="Download NAME first when it is not installed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def select(ctx, name: str | None, pull_first: bool, as_json: bool) -> None:
    """Select the default model: `mlxm run "prompt"`, `/api/chat` without a profile and the model name
    `default` use it. An alias is stored as its canonical id; no NAME shows the selection."""
    if name and pull_first:
        from entrypoints.cli.downloads.commands import pull

        ctx.invoke(pull, name=name, as_json=False, quiet=as_json)
    service = get_container(ctx).selection_service()
    result = service.select(name) if name else service.current()
    if as_json:
        echo_json({"model_id": result.model_id, "changed": result.changed, "reason": result.reason})
        return
    click.echo(result.model_id if not name else f"Selected {result.model_id}")
