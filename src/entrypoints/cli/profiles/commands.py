"""`mlxm profile create|list|show|update|rm`."""

from __future__ import annotations

import click

from entrypoints.cli import completion
from entrypoints.cli.base import echo_json, get_container
from entrypoints.cli.output import print_table

# option name -> (group, field)
_FIELDS = {
    "temperature": ("inference", "temperature"),
    "top_p": ("inference", "top_p"),
    "top_k": ("inference", "top_k"),
    "min_p": ("inference", "min_p"),
    "repetition_penalty": ("inference", "repetition_penalty"),
    "max_tokens": ("inference", "max_tokens"),
    "seed": ("inference", "seed"),
    "stop": ("inference", "stop"),
    "context_length": ("context", "context_length"),
    "system": ("context", "system_prompt"),
    "thinking": ("context", "enable_thinking"),
    "response_format": ("context", "response_format"),
    "voice": ("audio", "voice"),
    "speed": ("audio", "speed"),
    "sample_rate": ("audio", "sample_rate"),
    "language": ("audio", "stt_language"),
}


def _response_format(ctx, param, value):
    """`json_object` / `text`, a JSON Schema (as JSON text), or a whole OpenAI `response_format` object."""
    if value is None:
        return None
    if value in ("json_object", "text"):
        return {"type": value}
    # The HTTP API's parser: 20,000 nested objects were a RecursionError (exit 70), `"\ud800"` a string
    # nothing behind it can store.
    from entrypoints.http.json_body import BodyRefused, load_json

    try:
        parsed = load_json(value.encode("utf-8"))
    except BodyRefused as exc:
        raise click.BadParameter(str(exc).replace("request body is not valid JSON", "not JSON")) from None
    if not isinstance(parsed, dict):
        raise click.BadParameter("give a JSON object (a schema or a response_format)")
    if parsed.get("type") in ("text", "json_object", "json_schema") and ("json_schema" in parsed or len(parsed) == 1):
        return parsed
    return {"type": "json_schema", "json_schema": {"name": "profile", "schema": parsed}}


def _default_options(func):
    options = [
        click.option("--temperature", type=float),
        click.option("--top-p", type=float),
        click.option("--top-k", type=int),
        click.option("--min-p", type=float),
        click.option("--repetition-penalty", type=float),
        click.option("--max-tokens", type=int),
        click.option("--seed", type=int),
        click.option("--stop", multiple=True, help="A stop string (repeatable)."),
        click.option("--context-length", type=int),
        click.option("--system", help="System prompt."),
        click.option("--thinking/--no-thinking", default=None,
                     help="Switch the model's thinking on or off (chat template `enable_thinking`)."),
        click.option("--response-format", callback=_response_format,
                     help='Structured output: "json_object", a JSON Schema, or an OpenAI response_format object.'),
        click.option("--voice", help="TTS voice."),
        click.option("--speed", type=float, help="TTS speed, 0.25-4.0."),
        click.option("--sample-rate", type=int),
        click.option("--language", help="STT language."),
        click.option("--description"),
        click.option("--json", "as_json", is_flag=True, help="Print JSON."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _groups(values: dict) -> dict[str, dict]:
    groups: dict[str, dict] = {}
    for option, (group, field) in _FIELDS.items():
        value = values.get(option)
        if value is None or value == ():
            continue
        groups.setdefault(group, {})[field] = list(value) if isinstance(value, tuple) else value
    return groups


def _profile_json(profile) -> dict:
    from entrypoints.composition.login_service_state import serves_this_home
    from entrypoints.http.profiles.schemas import ProfileResponse

    installed = serves_this_home(get_container(click.get_current_context()).settings().manager.home)
    return ProfileResponse.from_domain(profile, service_installed=installed).model_dump(mode="json")


def _print_profile(profile) -> None:
    data = _profile_json(profile)
    click.echo(f"{profile.name}  ({data['profile_type']} profile for {profile.model_id})")
    if profile.description:
        click.echo(f"  description: {profile.description}")
    at_login = " (login service installed)" if data["launchd_installed"] else (
        " (no login service for this home: `mlxm service install`)" if profile.auto_start else "")
    click.echo(f"  auto_start:  {profile.auto_start}{at_login}")
    for group in ("inference", "context", "audio"):
        values = {k: v for k, v in data[group].items() if v is not None}
        if values:
            click.echo(f"  {group + ':':<12} {', '.join(f'{k}={v}' for k, v in values.items())}")


@click.group("profile")
def profile_group() -> None:
    """Named execution profiles: defaults for one model."""


@profile_group.command("create")
@click.argument("name")
@click.argument("model", shell_complete=completion.complete_model)
@click.option("--auto-start", is_flag=True, help="Preload when the server starts; never evicted.")
@_default_options
@click.pass_context
def create(ctx, name: str, model: str, auto_start: bool, description: str | None, as_json: bool, **values) -> None:
    """Create profile NAME for library MODEL."""
    groups = _groups(values)
    profile = get_container(ctx).profile_service().create(
        name, model, description=description, auto_start=auto_start,
        inference=groups.get("inference"), context=groups.get("context"), audio=groups.get("audio"),
    )
    if as_json:
        echo_json(_profile_json(profile))
        return
    click.echo(f"Created {profile.profile_type.value} profile {profile.name} for {profile.model_id}")


@profile_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_profiles(ctx, as_json: bool) -> None:
    """List profiles."""
    profiles = get_container(ctx).profile_service().list_profiles()
    if as_json:
        echo_json([_profile_json(p) for p in profiles])
        return
    print_table(
        ("Name", "Type", "Model", "Auto-start", "Description"),
        ((p.name, p.profile_type.value, p.model_id, "yes" if p.auto_start else "", p.description) for p in profiles),
        empty="No profiles. Create one with `mlxm profile create NAME MODEL`.",
    )


@profile_group.command("show")
@click.argument("name", shell_complete=completion.complete_profile)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show_profile(ctx, name: str, as_json: bool) -> None:
    """Show a profile."""
    profile = get_container(ctx).profile_service().get(name)
    if as_json:
        echo_json(_profile_json(profile))
        return
    _print_profile(profile)


@profile_group.command("update")
@click.argument("name", shell_complete=completion.complete_profile)
@click.option("--rename", help="A new name.")
@click.option("--model", help="Point the profile at another library model.")
@click.option("--auto-start/--no-auto-start", default=None)
@_default_options
@click.pass_context
def update(ctx, name: str, rename: str | None, model: str | None, auto_start: bool | None, description: str | None,
           as_json: bool, **values) -> None:
    """Update a profile; given fields are merged into its groups."""
    from application.profiles.service import ProfileChanges

    service = get_container(ctx).profile_service()
    current = service.get(name)
    groups = _groups(values)
    merged = {}
    for group, new in groups.items():
        existing = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(getattr(current, group)).items() if v is not None}
        merged[group] = {**existing, **new}
    changes = ProfileChanges(
        name=rename, model=model, description=description, auto_start=auto_start,
        inference=merged.get("inference"), context=merged.get("context"), audio=merged.get("audio"),
    )
    profile = service.update(name, changes)
    if as_json:
        echo_json(_profile_json(profile))
        return
    click.echo(f"Updated {profile.name}")


@profile_group.command("rm")
@click.argument("name", shell_complete=completion.complete_profile)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def rm_profile(ctx, name: str, as_json: bool) -> None:
    """Delete a profile."""
    profile = get_container(ctx).profile_service().delete(name)
    if as_json:
        echo_json({"id": profile.name, "deleted": True})
        return
    click.echo(f"Removed profile {profile.name}")
