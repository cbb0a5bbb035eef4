"""Rendering helpers for the CLI: rich tables (imported lazily) and human sizes."""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Sequence

import click


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]], empty: str = "(none)") -> None:
    rows = [[("-" if cell is None else str(cell)) for cell in row] for row in rows]
    if not rows:
        click.echo(empty)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*headers, box=None, header_style="bold")
    for row in rows:
        table.add_row(*row)
    Console(width=200, soft_wrap=True).print(table)
