"""`mlxm`: the command-line frontend. Commands stay thin over the application services.

Commands load lazily (click's documented lazy-group pattern): `mlxm list` imports the library
commands only, and shell completion imports no command module it does not complete (issue 19).
`--help` still lists every command, importing them all.
"""

from __future__ import annotations

import gc
import importlib
import sys
import threading

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
# to free next to nothing. Reference counting still frees everything else.
QUICK_COMMANDS = frozenset({"list", "show", "search", "catalog", "select", "profile"})
# Commands that load models and may serve for days get the collector back before they run: model weights
# must never sit in a frozen cycle.
MODEL_COMMANDS = frozenset({"serve", "run", "speak", "transcribe", "embed"})
# Any other command (pull, update, rm, ...) may still run for hours: the collector comes back once its
# start-up (0.3-0.6 s here) is over, with start-up's objects frozen so that no collection walks them again.
# With the collector on from the start, a 1 GB pull spent 40-80 ms in 200 collections while it imported.
COLLECTOR_BACK_AFTER_SECONDS = 1.0
_collector_timer: threading.Timer | None = None


@click.group(cls=LazyMlxmGroup)
@click.version_option(package_name="mlxm", prog_name="mlxm")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Manage and serve local MLX models."""
    global _collector_timer
    command = ctx.invoked_subcommand
    # Only when `main()` turned the collector off: a host process that calls `cli` (tests) keeps its own.
    if command in QUICK_COMMANDS or gc.isenabled() or _collector_timer is not None:
        return
    if command in MODEL_COMMANDS:
        gc.enable()
        return
    _collector_timer = threading.Timer(COLLECTOR_BACK_AFTER_SECONDS, _collector_back)
    _collector_timer.daemon = True
    _collector_timer.start()


def _collector_back() -> None:
    gc.freeze()
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
    global _collector_timer
    if _collector_timer is not None:
        _collector_timer.cancel()
        _collector_timer = None
    if gc.isenabled():
        gc.collect(1)  # what the command made since start-up; a command done within start-up is a quick one
    engines = sys.modules.get("adapters.sqlalchemy.engine")
    if engines is not None:
        engines.dispose_engines()
    gc.freeze()
    gc.enable()
