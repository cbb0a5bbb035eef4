"""`mlxm service install | uninstall | status`: run `mlxm serve` at login (launchd on macOS, systemd --user on Linux)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from entrypoints.cli.base import echo_json, get_container


def command_runner():
    """The runner that talks to launchctl/systemctl (tests replace this function, never the host's services)."""
    from adapters.system.login_service import run_command

    return run_command


def login_service(platform: str | None):
    from adapters.system.login_service import LoginService, current_platform

    platform = platform or current_platform()
    if platform not in ("macos", "linux"):
        raise click.ClickException(f"start at login is supported on macOS and Linux, not {platform!r}")
    return LoginService(platform, Path.home(), command_runner())


_platform_option = click.option("--platform", type=click.Choice(["macos", "linux"]), default=None, hidden=True,
                                help="Write the file of this platform (default: this machine's).")


@click.group("service")
def service_group() -> None:
    """Start `mlxm serve` at login (macOS LaunchAgent, Linux systemd --user unit)."""


@service_group.command("install")
@click.option("--no-load", is_flag=True, help="Only write the file; do not load it into launchd/systemd.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_platform_option
@click.pass_context
def install(ctx: click.Context, no_load: bool, as_json: bool, platform: str | None) -> None:
    """Write the service file for this home and settings (every MLX_* variable set now) and load it."""
    from adapters.system.login_service import build_spec, mlxm_executable

    home = get_container(ctx).settings().manager.home
    service = login_service(platform)
    spec = build_spec(home, os.environ, mlxm_executable())
    done = service.install(spec, load=not no_load)
    failed = [line for line in done if " failed (" in line]
    if as_json:
        echo_json({**service.status(ask=False).to_dict(), "actions": done})
    else:
        for line in done:
            click.echo(line)
        click.echo(f"logs: {spec.stdout_log} and {spec.stderr_log}")
        if no_load:
            hint = (f"launchctl load -w {service.path}" if service.platform == "macos"
                    else "systemctl --user daemon-reload && systemctl --user enable --now mlxm.service")
            click.echo(f"not loaded; to start it: {hint}")
    if failed:
        raise click.ClickException(f"the file is written but loading it failed: {failed[0]}")


@service_group.command("uninstall")
@click.option("--no-unload", is_flag=True, help="Only remove the file; do not unload it from launchd/systemd.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_platform_option
def uninstall(no_unload: bool, as_json: bool, platform: str | None) -> None:
    """Stop the service and remove its file (logs stay in the home)."""
    service = login_service(platform)
    done = service.uninstall(unload=not no_unload)
    if as_json:
        echo_json({"path": str(service.path), "removed": bool(done), "actions": done})
        return
    if not done:
        click.echo(f"No service installed ({service.path} does not exist).")
    for line in done:
        click.echo(line)


@service_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_platform_option
def status(as_json: bool, platform: str | None) -> None:
    """Whether the service is installed and loaded, and what it runs (read back from its file)."""
    report = login_service(platform).status()
    if as_json:
        echo_json(report.to_dict())
        return
    if not report.installed:
        click.echo(f"Not installed ({report.path}). Install with `mlxm service install`.")
        return
    loaded = {True: "yes", False: "no", None: "unknown"}[report.loaded]
    click.echo(f"installed: {report.path}")
    click.echo(f"loaded:    {loaded}{f' ({report.detail})' if report.detail else ''}")
    click.echo(f"runs:      {' '.join(report.program)}")
    click.echo(f"home:      {report.home}")
    click.echo(f"logs:      {report.stdout_log}, {report.stderr_log}")
    if report.environment:
        click.echo(f"settings:  {', '.join(sorted(report.environment))}")
