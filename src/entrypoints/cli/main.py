"""`mlxm`: the command-line frontend. Commands stay thin over the application services.

Commands load lazily (click's documented lazy-group pattern): `mlxm list` imports the library
commands only, and shell completion imports no command module it does not complete (issue 19).
`--help` still lists every command, importing them all.
"""

from __future__ import annotations

import gc
import importlib
import sys

import click

from entrypoints.cli.base import MlxmGroup

# command name -> (module, attribute). A test checks this table against the modules' commands.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "catalog": ("entrypoints.cli.catalog.remote", "catalog_group_with_remote"),
    "serve": ("entrypoints.cli.serve", "serve"),
    "db": ("entrypoints.cli.db", "db_group"),
    "list": ("entrypoints.cli.library.commands", "list_models"),
    "search": ("entrypoints.cli.library.commands", "search"),
    "show": ("entrypoints.cli.library.commands", "show"),
    "rm": ("entrypoints.cli.library.commands", "rm"),
    "import": ("entrypoints.cli.library.commands", "import_model"),
    "probe": ("entrypoints.cli.library.commands", "probe"),
    "edit": ("entrypoints.cli.library.edit", "edit"),
    "profile": ("entrypoints.cli.profiles.commands", "profile_group"),
    "run": ("entrypoints.cli.inference.commands", "run"),
    "speak": ("entrypoints.cli.inference.commands", "speak"),
    "transcribe": ("entrypoints.cli.inference.commands", "transcribe"),
    "embed": ("entrypoints.cli.inference.embeddings", "embed"),
    "ps": ("entrypoints.cli.inference.server_client", "ps"),
    "unload": ("entrypoints.cli.inference.server_client", "unload"),
    "select": ("entrypoints.cli.catalog.selection", "select"),
    "pull": ("entrypoints.cli.downloads.commands", "pull"),
    "check-updates": ("entrypoints.cli.downloads.commands", "check_updates"),
    "update": ("entrypoints.cli.downloads.commands", "update"),
    "verify": ("entrypoints.cli.downloads.commands", "verify"),
    "downloads": ("entrypoints.cli.downloads.commands", "downloads_group"),
    "keys": ("entrypoints.cli.identity.commands", "keys_group"),
    "users": ("entrypoints.cli.identity.commands", "users_group"),
    "routes": ("entrypoints.cli.routing.commands", "routes_group"),
    "credentials": ("entrypoints.cli.routing.commands", "credentials_group"),
    "audit": ("entrypoints.cli.audit.commands", "audit_group"),
    "link": ("entrypoints.cli.library.pipelines", "link_group"),
    "deps": ("entrypoints.cli.library.pipelines", "deps_group"),
    "service": ("entrypoints.cli.service", "service_group"),
}


class LazyMlxmGroup(MlxmGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS and name not in self.commands:
            module, attribute = LAZY_COMMANDS[name]
            command = getattr(importlib.import_module(module), attribute)
            # A builder (e.g. the catalog group plus its remote-catalog commands) is called once.
            self.add_command(command if isinstance(command, click.Command) else command(), name)
        return super().get_command(ctx, name)


# One-shot commands that read and print (issue 19). `main()` runs them with the cyclic garbage collector
# off: start-up creates ~100k objects that live until exit (modules, classes, ORM mappers, settings), and the
# collector would traverse them again and again while they are made (about a sixth of `mlxm list`'s time),
# to free next to nothing. Reference counting still frees everything else. Any other command (serve, pull,
# run, ...) may run for hours: the collector is back on before it starts.
QUICK_COMMANDS = frozenset({"list", "show", "search", "catalog", "select", "profile"})


@click.group(cls=LazyMlxmGroup)
@click.version_option(package_name="mlxm", prog_name="mlxm")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Manage and serve local MLX models."""
    if ctx.invoked_subcommand not in QUICK_COMMANDS:
        gc.enable()


def main() -> None:
    gc.disable()  # --help, --version and shell completion end before `cli` runs; see QUICK_COMMANDS
    try:
        cli(prog_name="mlxm")
    finally:
        _before_exit()


def _before_exit() -> None:
    """The command is done and the process exits next. At exit the interpreter would collect and free every
    module, class and ORM mapper through the collector, one object at a time: 0.1-0.25 s after a pull, about
    as long as `import sqlalchemy` itself. Frozen, they are left to the OS, which takes the memory back at once
    (Python does not promise finalizers for objects alive at exit). The rest of a normal exit stays: the young
    garbage is collected (its finalizers run), the database connections are closed (WAL checkpoint, without
    importing SQLAlchemy when the command did not use it), then atexit handlers and the flush of stdout/stderr."""
    if gc.isenabled():
        gc.collect(1)  # what a long command left in the young generations; a full pass costs 30-50 ms
    engines = sys.modules.get("adapters.sqlalchemy.engine")
    if engines is not None:
        engines.dispose_engines()
    gc.freeze()
    gc.enable()
