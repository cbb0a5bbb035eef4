"""Library commands: list, search, show, rm, import, probe."""

from __future__ import annotations

import click

from entrypoints.cli import completion
from entrypoints.cli.base import OFFSET, echo_json, get_container
from entrypoints.cli.library.recovery_notes import interruptions as _interruptions
from entrypoints.cli.library.recovery_notes import recover_and_report
from entrypoints.cli.output import human_size, print_table, when

TYPES = ("text-gen", "vision", "embeddings", "audio")
CAPABILITIES = ("tools", "thinking", "multi_image", "video", "tts", "stt", "normalized")


def _model_json(model) -> dict:
    from entrypoints.http.library.model_schemas import ModelDTO

    return ModelDTO.from_domain(model).model_dump(mode="json")


def _print_models(models, deleting: frozenset[str] = frozenset()) -> None:
    print_table(
        ("ID", "Type", "Family", "Size", "Status", "Last used"),
        (
            (
                m.model_id,
                m.model_type.value if m.model_type else "-",
                m.family,
                human_size(m.size_bytes),
                "deleting" if m.model_id in deleting else m.status.value,
                when(m.last_used_at),
            )
            for m in models
        ),
        empty="No models yet. Get one with `mlxm pull NAME` or `mlxm import PATH --name NAME`.",
    )


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_models(ctx: click.Context, as_json: bool) -> None:
    """List the models in the library."""
    models = get_container(ctx).library_service().list_models()
    interruptions = _interruptions(ctx)
    for interruption in interruptions:
        click.echo(f"Note: {interruption.message}", err=True)
    # A model whose delete a crash interrupted is being deleted, not installed, until recovery runs.
    deleting = frozenset(i.model_id for i in interruptions if i.kind == "delete")
    if as_json:
        echo_json([{**_model_json(m), **({"status": "deleting"} if m.model_id in deleting else {})}
                   for m in models])
        return
    _print_models(models, deleting)


@click.command("search")
@click.argument("query", required=False, default="")
@click.option("--hub", is_flag=True, help="Search the Hugging Face hub instead of the library (cached).")
@click.option("--type", "model_type", help=f"Only models of this type ({', '.join(TYPES)}; with --hub also a pipeline tag).")
@click.option("--capability", type=click.Choice(CAPABILITIES), help="Only models with this capability.")
@click.option("--author", help="With --hub: only this author's repos (e.g. mlx-community).")
@click.option("--sort", type=click.Choice(("downloads", "likes", "updated")), help="With --hub: order (default downloads).")
@click.option("--limit", default=None, type=click.IntRange(1, 1000), help="At most this many (library 50, hub 20; hub <= 100).")
@click.option("--offset", default=0, type=OFFSET)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def search(ctx, query: str, hub: bool, model_type: str | None, capability: str | None, author: str | None,
           sort: str | None, limit: int | None, offset: int, as_json: bool) -> None:
    """Search the library (prefix match on ids, aliases, family, tags), or the hub with --hub."""
    if hub:
        from entrypoints.cli.catalog.hub_search import hub_search

        hub_search(ctx, query, author=author, model_type=model_type, sort=sort or "downloads", limit=limit or 20,
                   as_json=as_json, capability=capability, offset=offset)
        return
    if author or sort:
        raise click.UsageError("--author and --sort apply to --hub searches")
    if model_type is not None and model_type not in TYPES:
        raise click.UsageError(f"Invalid value for '--type': {model_type!r} is not one of {', '.join(TYPES)}.")
    limit = limit or 50
    page = get_container(ctx).library_service().search(
        text=query, model_type=model_type, capability=capability, limit=limit, offset=offset
    )
    if as_json:
        echo_json({"total": page.total, "data": [_model_json(m) for m in page.items]})
        return
    if not page.items and (query or model_type or capability):
        click.echo("No models match." + ("" if page.total else " (`mlxm list` shows the whole library.)"))
        return
    _print_models(page.items)
    if page.total > len(page.items):
        click.echo(f"({len(page.items)} of {page.total}; use --offset to page)")


@click.command("show")
@click.argument("name", shell_complete=completion.complete_model)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show one library model by id, canonical id, alias or repo id; a profile name shows its model and the profile."""
    from application.errors import NotFound

    container = get_container(ctx)
    interruptions = _interruptions(ctx)
    profile = None
    try:
        model = container.library_service().show(name)
    except NotFound:
        for interruption in interruptions:
            if interruption.kind == "import" and interruption.model_id == name:
                raise NotFound(interruption.message) from None
        profile = _profile_named(container, name)
        if profile is None or not profile.model_id:
            raise
        model = container.library_service().show(profile.model_id)
    interrupted = next((i.message for i in interruptions if i.kind == "delete" and i.model_id == model.model_id), None)
    overlays = container.metadata_edit_service().overlays_of(model.model_id)
    if as_json:
        from entrypoints.http.library.model_schemas import ModelDetailDTO
        from entrypoints.http.profiles.schemas import ProfileResponse

        data = ModelDetailDTO.from_domain(model, overlays).model_dump(mode="json")
        if interrupted:
            data["status"], data["interrupted"] = "deleting", interrupted
        if profile is not None:
            from entrypoints.composition.login_service_state import serves_this_home

            installed = serves_this_home(container.settings().manager.home)  # as `mlxm profile show --json`
            data = {**data, "profile": ProfileResponse.from_domain(profile, service_installed=installed)
                    .model_dump(mode="json")}
        echo_json(data)
        return
    from entrypoints.cli.library.detail import SHOWN_FIELDS, detail_values

    data = detail_values(model, overlays)  # the domain model, not the API's DTO: no pydantic (issue 19)
    if interrupted:
        data["status"] = "deleting"
        click.echo(f"Note: {interrupted}", err=True)
    if profile is not None:
        from entrypoints.http.profiles.schemas import ProfileResponse

        defaults = {k: v for k, v in ProfileResponse.from_domain(profile).model_dump(
            mode="json", include={"inference", "context", "audio"}).items() if v}
        flat = ", ".join(f"{k}={v}" for group in defaults.values() for k, v in group.items() if v is not None)
        click.echo(f"profile {profile.name} ({profile.profile_type.value}) -> {model.model_id}"
                   + (f": {flat}" if flat else ""))
    from entrypoints.cli.library.edit import _value, mark

    click.echo(model.model_id)
    for key in SHOWN_FIELDS:
        if data.get(key) or mark(data, key):  # overridden fields are marked (mlxm edit; --reset FIELD)
            click.echo(f"  {key.replace('_', ' ') + ':':<14}{_value(data.get(key))}{mark(data, key)}")
    click.echo(f"  {'size:':<14}{human_size(model.size_bytes)}")
    if model.aliases:
        click.echo(f"  {'aliases:':<14}{', '.join(model.aliases)}")
    if data["capabilities"]:
        caps = data["capabilities"]
        click.echo(f"  {'capabilities:':<14}{', '.join(f'{k}={v}' for k, v in caps.items())}")
    if model.review_reasons:
        click.echo(f"  {'review:':<14}{'; '.join(model.review_reasons)}")
    click.echo(f"  {'files:':<14}{len(model.files)}")


def _profile_named(container, name: str):
    return container.profile_service().find(name)


@click.command("rm")
@click.argument("name", shell_complete=completion.complete_model)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def rm(ctx: click.Context, name: str, as_json: bool) -> None:
    """Remove a model from the library (its files too, when mlxm created them)."""
    recover_and_report(ctx)  # a crashed delete is settled before a new one
    target = get_container(ctx).library_service().show(name)  # an unknown name fails here, before any request
    from entrypoints.cli.inference.server_client import unload_from_running_server

    unload_from_running_server(ctx, target.model_id)  # a running server must not keep serving deleted files
    removal = get_container(ctx).library_service().remove(name)
    model = removal.model
    if as_json:
        echo_json({"id": model.model_id, "deleted": True, **({"kept": list(removal.kept)} if removal.kept else {})})
        return
    click.echo(f"Removed {model.model_id}")
    for note in removal.kept:
        click.echo(f"Kept {note}")


@click.command("import")
@click.argument("path", type=click.Path(exists=True, file_okay=True, dir_okay=True))
@click.option("--name", default=None, help="The id to register the model under (default: the folder name).")
@click.option("--move", is_flag=True, help="Move the files into the library instead of copying them.")
@click.option("--in-place", is_flag=True, help="Register the folder where it is (mlxm never deletes it).")
@click.option("--allow-pickle", is_flag=True, help="Accept pickle-based weights (.bin .pt .pth .ckpt): they can run code.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def import_model(ctx: click.Context, path: str, name: str | None, move: bool, in_place: bool, allow_pickle: bool,
                 as_json: bool) -> None:
    """Import a model folder or weights file (PATH); `--name` sets its id (usable everywhere a model name is)."""
    # The full pipeline (staging, sha256, inference, atomic install) lives with the library pipelines.
    from entrypoints.cli.library.pipelines import run_import

    run_import(ctx, path, name, move, in_place, allow_pickle, as_json)


@click.command("probe")
@click.argument("name", shell_complete=completion.complete_model)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def probe(ctx: click.Context, name: str, as_json: bool) -> None:
    """Detect a model's capabilities and store them in the library."""
    from application.errors import Unavailable
    from entrypoints.http.library.model_schemas import CapabilitiesDTO

    container = get_container(ctx)
    provider = getattr(container, "probe_service", None)
    if provider is None:
        raise Unavailable("probing is not available in this build")
    model = container.library_service().show(name)
    try:
        result = provider().probe(model.model_id)
    finally:  # the probe runs the model: unload before exit (an engine thread inside MLX aborts it)
        pool = getattr(container, "model_pool", None)
        if pool is not None:
            pool().shutdown()
    caps = getattr(result, "capabilities", result)
    data = CapabilitiesDTO.from_domain(caps)
    warnings = list(getattr(result, "warnings", []) or [])
    payload = {
        "model_id": model.model_id,
        "capabilities": data.model_dump(mode="json") if data else None,
        "sample_output": getattr(result, "sample_output", None),
        "warnings": warnings,
    }
    if as_json:
        echo_json(payload)
        return
    click.echo(model.model_id)
    for key, value in (payload["capabilities"] or {}).items():
        if value is not None:
            click.echo(f"  {key + ':':<24}{value}")
    for warning in warnings:
        click.echo(f"  warning: {warning}")
