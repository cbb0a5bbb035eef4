"""`mlxm`: the command-line frontend. Commands stay thin over the application services."""

from __future__ import annotations

import click

from entrypoints.cli.audit.commands import COMMANDS as AUDIT_COMMANDS
from entrypoints.cli.base import MlxmGroup
from entrypoints.cli.catalog.commands import catalog_group
from entrypoints.cli.catalog.remote import COMMANDS as CATALOG_REMOTE_COMMANDS
from entrypoints.cli.catalog.selection import select
from entrypoints.cli.db import db_group
from entrypoints.cli.downloads.commands import COMMANDS as DOWNLOAD_COMMANDS
from entrypoints.cli.identity.commands import COMMANDS as IDENTITY_COMMANDS
from entrypoints.cli.inference.commands import run, speak, transcribe
from entrypoints.cli.inference.server_client import ps, unload
from entrypoints.cli.library.commands import import_model, list_models, probe, rm, search, show
from entrypoints.cli.library.pipelines import COMMANDS as LIBRARY_PIPELINE_COMMANDS
from entrypoints.cli.profiles.commands import profile_group
from entrypoints.cli.routing.commands import COMMANDS as ROUTING_COMMANDS
from entrypoints.cli.serve import serve


@click.group(cls=MlxmGroup)
@click.version_option(package_name="mlxm", prog_name="mlxm")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Manage and serve local MLX models."""


cli.add_command(catalog_group)
for command in CATALOG_REMOTE_COMMANDS:  # signed remote catalog: keygen, sign, verify, status, refresh
    catalog_group.add_command(command)
cli.add_command(serve)
cli.add_command(db_group)
for command in (list_models, search, show, rm, import_model, probe, profile_group, run, speak, transcribe, ps, unload,
                select):
    cli.add_command(command)


for command in DOWNLOAD_COMMANDS:
    cli.add_command(command)

for command in (*IDENTITY_COMMANDS, *ROUTING_COMMANDS, *AUDIT_COMMANDS):  # keys, users, routes, credentials, audit
    cli.add_command(command)

for command in LIBRARY_PIPELINE_COMMANDS:  # library pipelines: link preview|apply|clean, deps
    cli.add_command(command)


def main() -> None:
    cli(prog_name="mlxm")
