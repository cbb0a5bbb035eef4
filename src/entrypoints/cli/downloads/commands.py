"""`mlxm pull`, `mlxm check-updates`, `mlxm update`, `mlxm verify`, `mlxm downloads`."""

from __future__ import annotations

import sys

import click

from entrypoints.cli import completion
from entrypoints.cli.base import ROW_ID, describe_error, echo_json, get_container
from entrypoints.cli.output import human_size, print_table


def _human(n: int | None) -> str:
    return "?" if n is None else human_size(n)  # an unknown size reads "?" in pull and download lines


class _RichProgress:
    """A rich progress bar on stderr fed by the (already throttled) service listener."""

    def __init__(self, label: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            TimeRemainingColumn(), console=Console(stderr=True), transient=False,
        )
        self._task = self._progress.add_task(label, total=None)

    def __enter__(self) -> "_RichProgress":
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def __call__(self, p) -> None:
        self._progress.update(self._task, completed=p.downloaded_bytes, total=p.total_bytes or None,
                              description=getattr(p, "label", None) or self._progress.tasks[0].description)


class _AllModels:
    """One display for `update --all`: the bytes of every model's pull so far, against their sum."""

    def __init__(self, bar) -> None:
        self._bar = bar
        self._by_model: dict[str, tuple[int, int]] = {}

    def __call__(self, p) -> None:
        self._by_model[p.model_id] = (p.downloaded_bytes, p.total_bytes or p.downloaded_bytes)
        from types import SimpleNamespace

        done = sum(d for d, _ in self._by_model.values())
        total = sum(t for _, t in self._by_model.values())
        label = f"update ({len(self._by_model)}) {p.model_id}"
        self._bar(SimpleNamespace(downloaded_bytes=done, total_bytes=total, label=label))


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def __call__(self, p) -> None:
        return None


def _progress_for(label: str, quiet: bool):
    if quiet or not sys.stderr.isatty():
        return _NoProgress()
    return _RichProgress(label)


@click.command("pull")
@click.argument("name", shell_complete=completion.complete_pullable)
@click.option("--json", "as_json", is_flag=True, help="Print the installed model as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--repair", is_flag=True,
              help="When NAME is installed: rehash it and re-fetch only its damaged files (see `mlxm verify`).")
@click.option("--rank", type=click.IntRange(0), default=None,
              help="With --ranks: fetch only this pipeline rank's files (mlxm serve --hosts ... --pipeline); "
                   "tensor parallelism needs every file on every rank.")
@click.option("--ranks", type=click.IntRange(2), default=None, help="Number of ranks the model is split over.")
@click.pass_context
def pull(ctx: click.Context, name: str, as_json: bool, quiet: bool, repair: bool, rank: int | None,
         ranks: int | None) -> None:
    """Download NAME (catalog ID, alias or HF repo `org/name[@revision]`), verified, resumable."""
    shard = None
    if (rank is None) != (ranks is None):
        raise click.UsageError("--rank and --ranks go together")
    if rank is not None:
        from domain.downloads.rank_files import RankShard

        if rank >= ranks:
            raise click.UsageError(f"--rank must be below --ranks ({ranks})")
        shard = RankShard(rank, ranks)
    service = get_container(ctx).download_service()
    service.reconcile_after_crash()
    from application.errors import DownloadCancelled

    try:
        with _progress_for(name, quiet or as_json) as bar:
            if repair and _installed(service, name):
                result = service.repair(name, bar)
            else:
                result = service.pull(name, bar, shard=shard)
    except DownloadCancelled as exc:  # `mlxm downloads pause|cancel` (or the server's API) stopped this pull
        if str(exc) == "pause":
            raise DownloadCancelled(f"the pull of {name} was paused from another mlxm command; "
                                    f"`mlxm pull {name}` continues it") from None
        raise DownloadCancelled(f"the pull of {name} was cancelled from another mlxm command") from None
    model = result.model
    if as_json:
        echo_json({
            "model_id": model.model_id, "repo_id": model.repo_id, "revision": model.revision,
            "local_path": model.local_path, "size_bytes": model.size_bytes,
            "type": model.model_type.value if model.model_type else None, "family": model.family,
            "already_installed": result.already_installed, "notes": result.notes,
            "download_id": result.download.id if result.download else None,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256, "source": f.source} for f in model.files],
        })
        return
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    state = "already installed" if result.already_installed else "installed"
    if repair and not result.already_installed and result.download is not None and result.download.source == "repair":
        state = "repaired"
        repaired = set(result.download.files)
        click.echo(f"{model.model_id} {state} at {model.local_path} (revision {(model.revision or '?')[:12]})")
        _echo_file_sources([f for f in model.files if f.path in repaired])
        return
    click.echo(f"{model.model_id} {state} at {model.local_path} ({_human(model.size_bytes)}, "
               f"revision {(model.revision or '?')[:12]})")
    if not result.already_installed:
        _echo_file_sources(model.files)


def _installed(service, name: str) -> bool:
    from application.errors import NotInstalled

    try:
        return bool(service.installed_models(name))
    except NotInstalled:
        return False


def _echo_file_sources(files) -> None:
    """Which source served each file (failover is per file); reused/adopted files have no source."""
    width = max((len(f.path) for f in files), default=0)
    for f in files:
        click.echo(f"  {f.path:<{width}}  {_human(f.size):>9}  from {f.source or 'already on disk'}")


@click.command("check-updates")
@click.argument("name", required=False, shell_complete=completion.complete_model)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def check_updates(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """Compare installed models with their sources and list newer catalog IDs."""
    reports = get_container(ctx).update_service().check_updates(name)
    _print_update_reports(reports, as_json)
    if any(r.error for r in reports):
        ctx.exit(6)  # as `mlxm update`: a model that could not be checked is a failed source, not "up to date"


def _print_update_reports(reports: list, as_json: bool) -> None:
    if as_json:
        echo_json([r.to_dict() for r in reports])
        return
    if not reports:
        click.echo("no installed models")
    for r in reports:
        if r.error:
            line = f"{r.model_id}: not checked ({r.error})"
        elif r.update_available:
            line = (f"{r.model_id}: update available {(r.installed_revision or '?')[:12]} -> "
                    f"{(r.available_revision or '?')[:12]} ({len(r.changed_files)} changed files)")
        else:
            line = f"{r.model_id}: up to date"
        if r.superseded_by:
            line += f"; superseded by {', '.join(r.superseded_by)}"
        if r.newer_ids:
            line += f"; newer catalog IDs: {', '.join(r.newer_ids)} (suggestion: mlxm pull {r.newer_ids[0]})"
        click.echo(line)


@click.command("update")
@click.argument("name", required=False, shell_complete=completion.complete_model)
@click.option("--all", "all_models", is_flag=True, help="Update every installed model.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def update(ctx: click.Context, name: str | None, all_models: bool, as_json: bool) -> None:
    """Download a newer revision beside the installed one and switch after verification."""
    if bool(name) == all_models:
        raise click.UsageError("give a model NAME or --all")
    container = get_container(ctx)
    container.download_service().reconcile_after_crash()
    with _progress_for(name or "update", as_json) as bar:
        outcomes = container.update_service().update(name, _AllModels(bar) if all_models else bar)
    # Each failure's line and exit code from the one map, as a failed `mlxm pull` (a full disk: 10 + advice).
    failures = {id(o): _described_failure(ctx, o) for o in outcomes if o.error}
    if as_json:
        echo_json([o.to_dict() for o in outcomes])
    else:
        for o in outcomes:
            if o.error:
                click.echo(f"{o.model_id}: not updated ({failures[id(o)][0]})")
            elif o.note:
                click.echo(f"{o.model_id}: skipped ({o.note})")
            elif o.updated:
                click.echo(f"{o.model_id}: updated {(o.old_revision or '?')[:12]} -> {(o.new_revision or '?')[:12]} "
                           f"(fetched {_human(o.bytes_fetched)}, reused {_human(o.bytes_reused)})")
            else:
                click.echo(f"{o.model_id}: up to date")
        updated = [o for o in outcomes if o.updated]
        click.echo(f"{len(updated)} updated, {sum(1 for o in outcomes if not o.updated and not o.error and not o.note)} "
                   f"up to date, {sum(1 for o in outcomes if o.error)} failed; "
                   f"fetched {_human(sum(o.bytes_fetched for o in outcomes))} ({sum(o.bytes_fetched for o in outcomes)} B), "
                   f"reused {_human(sum(o.bytes_reused for o in outcomes))} ({sum(o.bytes_reused for o in outcomes)} B) "
                   f"from installed revisions")
    if failures:
        ctx.exit(_update_exit_code({code for _, code in failures.values()}))


def _described_failure(ctx: click.Context, outcome) -> tuple[str, int]:
    """A model's update failure as (message, exit code); 6 (a failed source) when the map does not know it."""
    described = describe_error(ctx, outcome.exception) if outcome.exception is not None else None
    return described or (outcome.error, 6)


def _update_exit_code(codes: set[int]) -> int:
    """One code for `update --all`: the failures' own when they agree; else a full disk's (10), which must be
    freed before any retry can succeed; else 6, some source failed."""
    from application.errors import OutOfSpace
    from entrypoints.errors import mapping_for

    if len(codes) == 1:
        return next(iter(codes))
    full_disk = mapping_for(OutOfSpace("")).exit_code
    return full_disk if full_disk in codes else 6


@click.command("verify")
@click.argument("name", required=False, shell_complete=completion.complete_model)
@click.option("--repair", is_flag=True,
              help="Re-fetch only the damaged files of pulled models from their sources, verified, then switched in.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def verify(ctx: click.Context, name: str | None, repair: bool, as_json: bool) -> None:
    """Rehash installed files against the recorded sha256s; exits 6 on any mismatch (says how to repair)."""
    from entrypoints.cli.downloads.repair import echo_report, echo_verify_hints, verify_and_repair

    if repair:
        if not verify_and_repair(ctx, get_container(ctx), name, as_json, _progress_for):
            ctx.exit(6)
        return
    reports = get_container(ctx).update_service().verify(name)
    if as_json:
        echo_json([r.to_dict() for r in reports])
    else:
        for r in reports:
            echo_report(r)
        echo_verify_hints(reports)
    if any(not r.ok for r in reports):
        ctx.exit(6)


RECENT_FINISHED = 10  # finished pulls shown without --all
_FINISHED = frozenset({"completed", "failed", "cancelled"})


@click.group("downloads", invoke_without_command=True)
@click.option("--all", "show_all", is_flag=True, help=f"Every past pull, not only active ones and the last {RECENT_FINISHED}.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def downloads_group(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """List active and recent downloads; `pause`, `resume` and `cancel` act on one by id."""
    if ctx.invoked_subcommand is not None:
        return
    service = get_container(ctx).download_service()
    service.reconcile_after_crash()
    rows = service.list()
    hidden = 0
    if not show_all:
        finished = [d for d in rows if d.status.value in _FINISHED]  # a paused pull is not finished
        keep = {id(d) for d in sorted(finished, key=lambda d: d.id or 0, reverse=True)[:RECENT_FINISHED]}
        shown = [d for d in rows if d.status.value not in _FINISHED or id(d) in keep]
        hidden, rows = len(rows) - len(shown), shown
    if as_json:
        echo_json([_download_dict(d) for d in rows])
        return
    print_table(("ID", "Status", "Model", "Bytes", "Error"), (
        (d.id, d.status.value, d.model_id, f"{_human(d.downloaded_bytes)} / {_human(d.total_bytes)}", d.error or "")
        for d in rows
    ), empty="No downloads. Start one with `mlxm pull NAME`.")
    if hidden:
        click.echo(f"({hidden} older finished download(s) hidden; `mlxm downloads --all` shows them)")


def _download_dict(d) -> dict:
    return {"id": d.id, "model_id": d.model_id, "status": d.status.value, "downloaded_bytes": d.downloaded_bytes,
            "total_bytes": d.total_bytes, "revision": d.revision, "source": d.source, "error": d.error,
            "speed_bps": d.speed_bps}


def _download_action(action: str):
    @click.command(action)
    @click.argument("download_id", type=ROW_ID, shell_complete=completion.complete_download)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    def command(ctx: click.Context, download_id: int, as_json: bool) -> None:
        service = get_container(ctx).download_service()
        error = None
        if action == "resume":
            d, error = service.resume_and_wait(download_id)
        else:
            d = getattr(service, action)(download_id)
        failed = action == "resume" and d.status.value == "failed"
        if as_json:
            echo_json(_download_dict(d))
        elif not failed:
            click.echo(f"download {d.id} ({d.model_id}): {d.status.value}")
        if not failed:
            return
        # As a failed `mlxm pull`: the exit code (and advice) of the pull's own error when it failed in this
        # process (a full disk: 10); otherwise only the row's text is known, and the resume did not finish: 6.
        described = describe_error(ctx, error) if error is not None else None
        message, code = described or (" ".join((d.error or "").split()), 6)
        if not as_json:
            click.echo(f"Error: download {d.id} ({d.model_id}) failed: {message}", err=True)
        ctx.exit(code)

    # click read the (empty) docstring when the command was made: set the help itself.
    command.help = _ACTION_HELP[action]
    return command


_ACTION_HELP = {
    "pause": "Pause download DOWNLOAD_ID (its partial files are kept; `resume` continues from them).",
    "resume": "Resume paused, failed or cancelled download DOWNLOAD_ID from the bytes already on disk.",
    "cancel": "Cancel download DOWNLOAD_ID and delete its partial files (an installed revision is untouched).",
}


for _action in ("pause", "resume", "cancel"):
    downloads_group.add_command(_download_action(_action))

COMMANDS = [pull, check_updates, update, verify, downloads_group]
