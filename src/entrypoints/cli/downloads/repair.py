"""Output of `mlxm verify [--repair]` and `mlxm pull --repair` (the use case: application/downloads/repair.py)."""

from __future__ import annotations

import re

import click

from entrypoints.cli.base import echo_json
from entrypoints.cli.output import human_size

_DIGEST = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{52}\b")


def short_digests(text: str) -> str:
    """Humans get 12 hex digits of a sha256 (enough to tell two apart); `--json` keeps all 64."""
    return _DIGEST.sub(r"\1…", text)


def echo_report(report) -> None:
    if report.ok:
        click.echo(f"{report.model_id}: ok ({report.checked} files)")
        return
    click.echo(f"{report.model_id}: {len(report.problems)} problem(s)")
    for problem in report.problems:
        click.echo(f"  {short_digests(problem)}")


def verify_and_repair(ctx: click.Context, container, name: str | None, as_json: bool, progress) -> bool:
    """`verify --repair`: report, repair each damaged pulled model, verify again. True when all are ok."""
    updates = container.update_service()
    reports = updates.verify(name)
    outcome: dict[str, dict] = {}
    damaged = [r for r in reports if not r.ok]
    if damaged:
        container.download_service().reconcile_after_crash()
    for report in reports:
        if not as_json:
            echo_report(report)
        if report.ok:
            continue
        if not report.repairable:
            outcome[report.model_id] = {"repaired": [], "repair_error": f"cannot repair: {report.repair}"}
            if not as_json:
                click.echo(f"  cannot repair: {report.repair}")
            continue
        try:
            with progress(f"repair {report.model_id}", as_json) as bar:
                result = container.download_service().repair(report.model_id, bar)
        except Exception as exc:  # noqa: BLE001 - a user-facing failure is reported; the others still repair
            from entrypoints.errors import mapping_for

            if mapping_for(exc) is None:
                raise  # an internal error: the CLI's one error path reports it
            reason = " ".join(str(exc).split())
            outcome[report.model_id] = {"repaired": [], "repair_error": reason}
            if not as_json:
                click.echo(f"  not repaired: {reason}")
            continue
        paths = [] if result.already_installed or result.download is None else list(result.download.files)
        outcome[report.model_id] = {"repaired": paths, "repair_error": None, "bytes_fetched": result.bytes_fetched}
        if not as_json:
            fresh = {f.path: f for f in result.model.files}
            for path in paths:
                click.echo(f"  re-fetched {path} ({human_size(fresh[path].size)} from {fresh[path].source})")
    final = updates.verify(name) if damaged else reports
    if as_json:
        echo_json([{**r.to_dict(), **outcome.get(r.model_id, {"repaired": [], "repair_error": None})} for r in final])
    else:
        for report in final:
            if report.model_id in outcome:
                echo_report(report)
                if report.ok:
                    continue
                click.echo(f"  still damaged; {report.repair}")
    return all(r.ok for r in final)


def echo_verify_hints(reports) -> None:
    """After problems: how to repair them (each model's own way)."""
    for report in reports:
        if not report.ok and report.repair:
            click.echo(f"  repair: {report.repair}")
