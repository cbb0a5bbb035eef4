from __future__ import annotations

import click

from domain.catalog.model import catalog_model_to_dict
from entrypoints.cli import completion
from entrypoints.cli.base import echo_json, get_container
from entrypoints.cli.output import print_table


@click.group("catalog", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def catalog_group(ctx: click.Context, as_json: bool) -> None:
    """List the catalog: IDs, aliases, type and sources."""
    if ctx.invoked_subcommand is not None:
        return
    models = get_container(ctx).catalog_service().list_models()
    if as_json:
        echo_json([catalog_model_to_dict(m) for m in models])
        return
    # The repo appears once; each source shows its kind and priority (a mirror serves the same repo). On a
    # narrow terminal the Repo column goes (`catalog show ID` and --json have it) rather than fold mid-word.
    print_table(("ID", "Type", "Aliases", "Repo", "Sources"), (
        (m.id, m.model_type.value, ", ".join(m.aliases), _repo(m), ", ".join(_source_label(s) for s in m.sources))
        for m in models
    ), optional=(3,))


_KIND_NAMES = {"huggingface_repo": "hf", "http_mirror": "mirror"}


def _repo(model) -> str:
    repos = list(dict.fromkeys(s.value for s in model.sources))
    return ", ".join(repos)


def _source_label(source) -> str:
    kind = getattr(source.kind, "value", source.kind)
    label = f"{_KIND_NAMES.get(kind, kind)}:{source.priority}"
    return label if source.enabled else label + " (disabled)"


@catalog_group.command("show")
@click.argument("name", shell_complete=completion.complete_pullable)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def catalog_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Resolve an alias, canonical ID or repo id and print the entry."""
    model = get_container(ctx).catalog_service().show(name)
    data = catalog_model_to_dict(model)
    if as_json:
        echo_json(data)
        return
    click.echo(f"{model.id}  ({model.display_name})")
    click.echo(f"  type:     {model.model_type.value}")
    click.echo(f"  family:   {model.family}")
    click.echo(f"  aliases:  {', '.join(model.aliases) or '-'}")
    for s in model.sources:
        flags = [] if s.enabled else ["disabled"]
        if not s.allow_fallback:
            flags.append("no-fallback")
        click.echo(f"  source:   {s.kind.value} {s.value} (priority {s.priority}{', ' + ', '.join(flags) if flags else ''})")
