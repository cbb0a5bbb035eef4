"""`mlxm edit NAME`: correct a model's inferred metadata (overlays that survive re-probe, update, re-import)."""

from __future__ import annotations

import click

from entrypoints.cli import completion
from entrypoints.cli.base import echo_json, get_container

FIELD_CHOICES = ("type", "family", "tags", "description", "display-name")


def _value(value) -> str:
    if isinstance(value, dict):  # a tags overlay
        parts = [f"+{t}" for t in value.get("add") or ()] + [f"-{t}" for t in value.get("remove") or ()]
        return " ".join(parts)
    if isinstance(value, list):
        return ", ".join(value) or "(none)"
    return "(none)" if value in (None, "") else str(value)


def mark(data: dict, key: str) -> str:
    """What `mlxm show` appends to an overridden or confirmed field."""
    override = (data.get("overrides") or {}).get(key)
    if override is not None:
        return f"  [edited; inferred: {_value(override.get('inferred'))}]"
    if key in (data.get("confirmed") or ()):
        return "  [confirmed]"
    return ""


@click.command("edit")
@click.argument("name", shell_complete=completion.complete_model)
@click.option("--type", "model_type", type=click.Choice(("text-gen", "vision", "embeddings", "audio")),
              help="The model's type.")
@click.option("--family", help="The model family (e.g. qwen2_vl).")
@click.option("--tag", "tags", multiple=True, help="Add a tag (repeatable); it stays whatever is inferred.")
@click.option("--untag", "untags", multiple=True, help="Hide a tag (repeatable), inferred or added.")
@click.option("--description", help="The description.")
@click.option("--display-name", help="The name shown for the model.")
@click.option("--reset", "resets", multiple=True, type=click.Choice(FIELD_CHOICES),
              help="Drop your override of FIELD (repeatable): the inferred value is back.")
@click.option("--confirm", "confirms", multiple=True, type=click.Choice(("type", "family")),
              help="Confirm the inferred FIELD is right (repeatable): settles needs-review.")
@click.option("--force", is_flag=True, help="On a type change, convert the model's profiles that no longer fit.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def edit(ctx: click.Context, name: str, model_type, family, tags, untags, description, display_name, resets,
         confirms, force: bool, as_json: bool) -> None:
    """Correct what import, probe or a pull inferred about NAME.

    Each value you set is kept over the inferred one (re-probe, update and re-import change only
    what lies beneath); `mlxm show NAME` marks it, `--reset FIELD` drops it.
    """
    from application.library.metadata_edit import MetadataEdit
    from entrypoints.http.library.model_schemas import ModelDetailDTO

    container = get_container(ctx)
    request = MetadataEdit(model_type=model_type, family=family, description=description, display_name=display_name,
                           add_tags=tuple(tags), remove_tags=tuple(untags), reset=tuple(resets),
                           confirm=tuple(confirms), force=force)
    before = container.library_service().show(name)
    result = container.metadata_edit_service().edit(name, request)
    if result.model.model_type != before.model_type:
        from entrypoints.cli.inference.server_client import unload_from_running_server

        # A running server loaded it as the old type: the next request loads it as the new one.
        unload_from_running_server(ctx, result.model.model_id)
    data = ModelDetailDTO.from_domain(result.model, result.overlays).model_dump(mode="json")
    if as_json:
        data.pop("files", None)
        echo_json({"model": data, "manifest": result.manifest, "notes": result.notes,
                   "converted_profiles": [{"name": c.name, "from_type": c.from_type.value, "to_type": c.to_type.value,
                                           "dropped": list(c.dropped)} for c in result.conversions]})
        return
    click.echo(f"Updated {result.model.model_id}")
    for key in ("type", "family", "display_name", "description", "tags"):
        value = data.get(key)
        if value or mark(data, key):
            click.echo(f"  {key.replace('_', ' ') + ':':<14}{_value(value)}{mark(data, key)}")
    if data.get("review_reasons"):
        click.echo(f"  {'review:':<14}{'; '.join(data['review_reasons'])}")
    for conversion in result.conversions:
        dropped = f"; dropped {', '.join(conversion.dropped)}" if conversion.dropped else ""
        click.echo(f"Converted profile {conversion.name} ({conversion.from_type.value} -> "
                   f"{conversion.to_type.value}){dropped}")
    for note in result.notes:
        click.echo(f"Note: {note}")
