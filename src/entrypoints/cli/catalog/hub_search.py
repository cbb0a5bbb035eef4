"""`mlxm search --hub`: the hub search use case, printed as a table or JSON."""

from __future__ import annotations

import click

from entrypoints.cli.base import echo_json, get_container
from entrypoints.cli.output import human_size, print_table, when


def hub_search(ctx, query: str, *, author, model_type, sort: str, limit: int, as_json: bool, capability,
               offset: int) -> None:
    from application.catalog.hub_search import MAX_LIMIT, HubQuery

    if capability or offset:
        raise click.UsageError("--capability and --offset apply to library searches, not --hub")
    if limit > MAX_LIMIT:
        raise click.UsageError(f"--limit for --hub is at most {MAX_LIMIT}")
    container = get_container(ctx)
    author = author or container.settings().manager.hf_organization  # MLX_MANAGER_HF_ORGANIZATION: the default author
    result = container.hub_search_service().search(
        HubQuery(text=query, author=author, model_type=model_type, sort=sort, limit=limit))
    if as_json:
        echo_json(result.to_dict())
        return
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    print_table(
        ("Repo", "Downloads", "Likes", "Updated", "Pipeline", "Size", "mlxm"),
        (
            (
                m.repo_id, m.downloads, m.likes, when(m.last_modified), m.pipeline_tag, human_size(m.size_bytes),
                _mlxm_column(m),
            )
            for m in result.models
        ),
        empty="No models on the hub match.",
    )
    source = "hub" if result.source == "hub" else f"cache of {when(result.fetched_at)} UTC"
    click.echo(f"({len(result.models)} results from the {source})")


def _mlxm_column(model) -> str:
    if model.library_id:
        return f"in library as {model.library_id}"
    if model.catalog_id:
        return f"catalog: {model.catalog_id}"
    return "-"
