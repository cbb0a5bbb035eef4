"""Library-pipeline commands: `mlxm link preview|apply|clean|list`, `mlxm deps ...`, and the body
of `mlxm import` (the command itself lives with the other library commands)."""

from __future__ import annotations

import click

from entrypoints.cli import completion
from entrypoints.cli.base import ROW_ID, echo_json, get_container
from entrypoints.cli.output import human_size, print_table


# -- import ------------------------------------------------------------------------------------


def import_payload(result) -> dict:
    """The JSON of an import: the model (as `mlxm show --json`) plus what the pipeline found."""
    from entrypoints.http.library.model_schemas import ModelDTO

    data = ModelDTO.from_domain(result.model).model_dump(mode="json")
    data.update(
        created=result.created,
        mode=result.mode,
        content_sha256=result.content_sha256,
        confidence=result.inference.confidence if result.inference else None,
    )
    return data


def run_import(ctx: click.Context, path: str, name: str | None, move: bool, in_place: bool, allow_pickle: bool,
               as_json: bool) -> None:
    """Import PATH through the full pipeline (staging, sha256, inference, atomic install)."""
    from application.library.importing import ImportRequest

    from entrypoints.cli.library.recovery_notes import recover_and_report

    recover_and_report(ctx)  # what a crashed import or delete left behind
    service = get_container(ctx).import_service()
    result = service.import_model(
        ImportRequest(path=path, name=name, move=move, in_place=in_place, allow_pickle=allow_pickle)
    )
    if name is not None and result.created and result.model.model_id != name:
        # Names become safe ids everywhere (import's default, a folder's name, HTTP's `name` too: README,
        # "Import"), so the name is kept as an id rather than refused; the user is told what it became.
        click.echo(f"Note: named {result.model.model_id} (from {name}): model ids are lower-case letters, digits, "
                   "'.', '-' and '_'", err=True)
    if as_json:
        echo_json(import_payload(result))
        return
    model = result.model
    if not result.created:
        click.echo(f"Already in the library as {model.model_id} (same content); nothing imported")
        return
    kind = model.model_type.value if model.model_type else "unknown type"
    confidence = f", confidence {result.inference.confidence:.2f}" if result.inference else ""
    how = {"copy": "copied into", "move": "moved into", "in-place": "registered in place at"}[result.mode]
    click.echo(f"Imported {model.model_id} ({kind}, {model.family or 'unknown family'}, "
               f"{human_size(model.size_bytes)}{confidence}); {how} {model.local_path}")
    if model.review_reasons:
        click.echo("Needs review:")
        for reason in model.review_reasons:
            click.echo(f"  - {reason}")


# -- link ----------------------------------------------------------------------------------------


@click.group("link")
def link_group() -> None:
    """Link library models into other apps' folders (configs in MLX_MANAGER_HOME/mapping-configs/)."""


def _entry_json(entry) -> dict:
    return {"model_id": entry.model_id, "rule_target": entry.rule_target, "path": entry.relative_path,
            "source": entry.source_path, "target": entry.target_path, "action": entry.action.value}


@link_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def link_list(ctx: click.Context, as_json: bool) -> None:
    """The apps that have a mapping config (a broken config is a warning on stderr, not a failure)."""
    from domain.library.mapping import app_mapping_to_dict

    mappings, problems = get_container(ctx).mapping_service().survey_apps()
    # A listing shows what it can: exit 0, the broken configs named on stderr (stdout stays parseable).
    for problem in problems:
        click.echo(f"Warning: {' '.join(str(problem).split())}; left out (fix or remove that file)", err=True)
    if as_json:
        echo_json([app_mapping_to_dict(m) for m in mappings])
        return
    print_table(("App", "Root", "Rules"), ((m.app, m.root, len(m.rules)) for m in mappings),
                empty="No usable mapping configs" if problems
                else "No mapping configs yet: add MLX_MANAGER_HOME/mapping-configs/<app>.json")


@link_group.command("preview")
@click.argument("app")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def link_preview(ctx: click.Context, app: str, as_json: bool) -> None:
    """What `apply` would do, per target: create, exists, conflict or broken."""
    plan = get_container(ctx).mapping_service().preview(app)
    if as_json:
        echo_json({"app": plan.app, "root": plan.root, "summary": plan.summary,
                   "entries": [_entry_json(e) for e in plan.entries], "problem": plan.problem})
        return
    if plan.problem:
        click.echo(f"Warning: app root is unusable: {plan.problem}; `link apply` will refuse.")
    print_table(("Action", "Model", "Target"), ((e.action.value, e.model_id, e.target_path) for e in plan.entries),
                empty=f"No model matches the rules of {plan.app}.")
    click.echo(", ".join(f"{count} {action}" for action, count in plan.summary.items()))


@link_group.command("apply")
@click.argument("app")
@click.option("--on-conflict", type=click.Choice(["skip", "overwrite", "rename"]), default="skip", show_default=True,
              help="What to do where someone else's file is in the way.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def link_apply(ctx: click.Context, app: str, on_conflict: str, as_json: bool) -> None:
    """Create the links (symlink, else hardlink, else copy) and record each one."""
    from entrypoints.http.library.schemas import LinkApplyDTO

    report = get_container(ctx).mapping_service().apply(app, on_conflict)
    if as_json:
        echo_json(LinkApplyDTO.from_report(report).model_dump(mode="json"))
        return
    rows = [("created", e.model_id, method, e.target_path) for e, method in report.created]
    rows += [("replaced", e.model_id, method, e.target_path) for e, method in report.replaced]
    rows += [("skipped", e.model_id, why, e.target_path) for e, why in report.skipped]
    print_table(("Result", "Model", "How", "Target"), rows, empty="Nothing to do.")
    for key, folder in report.renamed.items():
        click.echo(f"renamed: {key} -> {folder}")
    click.echo(f"{len(report.created)} created, {len(report.replaced)} replaced, {len(report.existing)} already there, "
               f"{len(report.skipped)} skipped")


@link_group.command("clean")
@click.argument("app")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def link_clean(ctx: click.Context, app: str, as_json: bool) -> None:
    """Remove the app's broken links (dangling symlinks)."""
    report = get_container(ctx).mapping_service().clean(app)
    if as_json:
        echo_json({"app": report.app, "removed": report.removed, "forgotten": report.forgotten})
        return
    for path in report.removed:
        click.echo(f"removed {path}")
    for path in report.forgotten:
        click.echo(f"forgot  {path}")
    click.echo(f"{len(report.removed)} broken links removed, {len(report.forgotten)} records forgotten")


# -- deps ----------------------------------------------------------------------------------------


class _DefaultShowGroup(click.Group):
    """`mlxm deps NAME` shows; `mlxm deps bind|unbind|bindings|profiles|add-profile ...` manage."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "show", self.commands["show"], args
        return super().resolve_command(ctx, args)


@click.group("deps", cls=_DefaultShowGroup, no_args_is_help=True)
def deps_group() -> None:
    """What environment a model needs: `mlxm deps NAME` (the dependency-requirements contract)."""


def _python_version(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from domain.library.dependency_model import PYTHON_VERSION_FORMS, is_python_version

    if value is not None and not value.strip():  # `--python ""`: not given (this Python), as before the check
        return None
    if value is not None and not is_python_version(value.strip()):
        raise click.BadParameter(f"{value!r} is not a Python version: use {PYTHON_VERSION_FORMS}", ctx, param)
    return value.strip() if value is not None else None


def _platform(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from domain.library.dependency_model import PLATFORM_FORMS, is_platform

    if value is not None and not value.strip():  # `--platform ""`: not given (this machine), as before the check
        return None
    if value is not None and not is_platform(value):
        raise click.BadParameter(f"{value!r} is not a platform: use {PLATFORM_FORMS}", ctx, param)
    return value.strip() if value is not None else None


def _platform_selector(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from domain.library.dependency_model import PLATFORM_SELECTOR_FORMS, platform_selector

    if not value.strip():  # `--platform ""`: not given, so the default `*` (an empty selector matched everything)
        return "*"
    selector = platform_selector(value)
    if selector is None:  # a typo (`linx`, `darwin-arm`, `lnx*`) would be a binding that never applies, silently
        raise click.BadParameter(f"{value!r} is not a platform selector: use {PLATFORM_SELECTOR_FORMS}", ctx, param)
    return selector


@deps_group.command("show")
@click.argument("name", shell_complete=completion.complete_model)
@click.option("--platform", "platform_", default=None, callback=_platform,
              help="e.g. darwin-arm64 or linux-x86_64 (default: this machine).")
@click.option("--backend", default=None, help="Only bindings for this backend key (e.g. mlx-lm).")
@click.option("--python", "python_version", default=None, callback=_python_version,
              help="The target Python version, e.g. 3.11 or 3.11.7 (default: this one).")
@click.option("--expected-contract-version", type=int, default=None, help="Fail unless the contract version matches.")
@click.option("--strict", is_flag=True, help="Exit non-zero unless the state is resolved.")
@click.option("--json", "as_json", is_flag=True, help="Print the contract JSON.")
@click.pass_context
def deps_show(ctx, name, platform_, backend, python_version, expected_contract_version, strict, as_json) -> None:
    """The requirement groups of NAME's dependency bindings, validated."""
    from application.library.dependencies import platform_context, resolution_to_contract
    from entrypoints.http.library.schemas import DependencyRequirementsDTO

    context = platform_context(platform_, python_version)
    resolution = get_container(ctx).dependency_service().resolve_model_dependency_requirements(
        name, context, backend, expected_contract_version
    )
    contract = DependencyRequirementsDTO.model_validate(resolution_to_contract(resolution)).model_dump(mode="json")
    if as_json:
        echo_json(contract)
    else:
        _print_contract(contract)
    if strict and contract["validation_state"] != "resolved":
        ctx.exit(9)


def _print_contract(contract: dict) -> None:
    click.echo(f"{contract['model_id']}: {contract['validation_state']} "
               f"(platform {contract['platform']}, backend {contract['backend_key'] or 'any'}, "
               f"contract v{contract['dependency_contract_version']})")
    if not contract["requirement_groups"]:
        click.echo("  no dependency bindings (bind one with `mlxm deps bind NAME PROFILE`)")
    for group in contract["requirement_groups"]:
        version = f" v{group['profile_version']}" if group["profile_version"] else ""
        click.echo(f"  binding {group['binding_id']}: profile {group['profile_id']}{version}, "
                   f"{group['environment_kind']}, platform {group['platform_selector']}, "
                   f"backend {group['backend_key']} [{group['validation_state']}]")
        for req in group["requirements"]:
            note = {True: "", False: "  (not on this platform)", None: "  (platform unknown)"}[req["applies"]]
            python = f"  python{req['python_requires']}" if req["python_requires"] else ""
            click.echo(f"    {req['specifier']}{python}{note}")
        for error in group["validation_errors"]:
            click.echo(f"    ! {error['code']} {error['field'] or ''}: {error['message']}")


@deps_group.command("bind")
@click.argument("name", shell_complete=completion.complete_model)
@click.argument("profile")
@click.option("--version", "profile_version", type=ROW_ID, default=None, help="Pin a profile version (default: newest).")
@click.option("--platform", "platform_selector", default="*", show_default=True, callback=_platform_selector,
              help="Platform selector: *, linux, darwin-arm64, linux-*, *-arm64, lin*.")
@click.option("--backend", "backend_key", default="*", show_default=True, help="Backend key, e.g. mlx-lm.")
@click.option("--env", "environment_kind", type=click.Choice(["python-venv", "conda", "system"]),
              default="python-venv", show_default=True)
@click.option("--id", "binding_id", default=None, help="Binding id (default: NAME:PROFILE[:platform][:backend]).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def deps_bind(ctx, name, profile, profile_version, platform_selector, backend_key, environment_kind, binding_id,
              as_json) -> None:
    """Bind dependency PROFILE to model NAME (the profile may be added later: unknown_profile until then)."""
    binding = get_container(ctx).dependency_service().bind(
        name, profile, profile_version=profile_version, platform_selector=platform_selector,
        backend_key=backend_key, environment_kind=environment_kind, binding_id=binding_id,
    )
    if as_json:
        echo_json(_binding_json(binding))
        return
    click.echo(f"Bound {binding.model_id} to {binding.profile_id}"
               f"{' v' + str(binding.profile_version) if binding.profile_version else ''} as {binding.binding_id}")


def _binding_json(binding) -> dict:
    return {"binding_id": binding.binding_id, "model_id": binding.model_id, "profile_id": binding.profile_id,
            "profile_version": binding.profile_version, "environment_kind": binding.environment_kind,
            "platform_selector": binding.platform_selector, "backend_key": binding.backend_key}


@deps_group.command("unbind")
@click.argument("binding_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def deps_unbind(ctx, binding_id, as_json) -> None:
    """Remove a dependency binding."""
    binding = get_container(ctx).dependency_service().unbind(binding_id)
    if as_json:
        echo_json(_binding_json(binding))
        return
    click.echo(f"Removed binding {binding.binding_id}")


@deps_group.command("bindings")
@click.argument("name", required=False, shell_complete=completion.complete_model)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def deps_bindings(ctx, name, as_json) -> None:
    """List dependency bindings (of NAME, or all)."""
    bindings = get_container(ctx).dependency_service().bindings(name)
    if as_json:
        echo_json([_binding_json(b) for b in bindings])
        return
    print_table(("Binding", "Model", "Profile", "Version", "Platform", "Backend"),
                ((b.binding_id, b.model_id, b.profile_id, b.profile_version or "newest", b.platform_selector,
                  b.backend_key) for b in bindings))


@deps_group.command("profiles")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def deps_profiles(ctx, as_json) -> None:
    """List dependency profiles and their pinned requirements."""
    profiles = get_container(ctx).dependency_service().profiles()
    if as_json:
        echo_json([{"profile_id": p.profile_id, "version": p.version, "environment_kind": p.environment_kind,
                    "description": p.description, "requirements": [r.specifier for r in p.requirements]}
                   for p in profiles])
        return
    print_table(("Profile", "Version", "Env", "Requirements"),
                ((p.profile_id, p.version, p.environment_kind, "  ".join(r.specifier for r in p.requirements))
                 for p in profiles))


@deps_group.command("add-profile")
@click.argument("profile_id")
@click.argument("version", type=ROW_ID)
@click.argument("requirements", nargs=-1, required=True)
@click.option("--python-requires", default=None, help="e.g. >=3.10 (applies to every requirement).")
@click.option("--env", "environment_kind", type=click.Choice(["python-venv", "conda", "system"]),
              default="python-venv", show_default=True)
@click.option("--description", default="")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def deps_add_profile(ctx, profile_id, version, requirements, python_requires, environment_kind, description,
                     as_json) -> None:
    """Add an immutable profile version: exact pins like 'mlx[cpu]==0.32.4; sys_platform == "linux"'."""
    profile = get_container(ctx).dependency_service().add_profile(
        profile_id, version, list(requirements), environment_kind=environment_kind,
        python_requires=python_requires, description=description,
    )
    if as_json:
        echo_json({"profile_id": profile.profile_id, "version": profile.version,
                   "environment_kind": profile.environment_kind, "description": profile.description,
                   "requirements": [r.specifier for r in profile.requirements]})
        return
    click.echo(f"Added profile {profile.profile_id} v{profile.version} ({len(profile.requirements)} requirements)")


COMMANDS = (link_group, deps_group)
