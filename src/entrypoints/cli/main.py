"""`mlxm`: the command-line frontend. Commands stay thin over the application services."""

from __future__ import annotations

import click

from entrypoints.cli.base import MlxmGroup
from entrypoints.cli.catalog import catalog_group
from entrypoints.cli.serve import serve


@click.group(cls=MlxmGroup)
@click.version_option(package_name="mlxm", prog_name="mlxm")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Manage and serve local MLX models."""


cli.add_command(catalog_group)
cli.add_command(serve)


def main() -> None:
    cli(prog_name="mlxm")
