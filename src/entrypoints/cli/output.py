"""Rendering helpers for the CLI: rich tables (imported lazily) and human sizes."""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Sequence

import click

from domain.sizes import human_size  # noqa: F401 - the CLI's name for it (also used by application messages)


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


MIN_WIDTH = 20  # narrower than this, rich prints empty cells: the IDs still have to show


def console(stderr: bool = False):
    """A rich console as wide as the terminal (or `COLUMNS`); piped output without `COLUMNS` keeps
    long rows on one line (200 columns), so `mlxm list | grep x` still sees whole rows."""
    import os
    import sys

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) < MIN_WIDTH:
        return Console(width=MIN_WIDTH, stderr=stderr)  # COLUMNS=0 printed nothing at all (and exit 0)
    sized = stream.isatty() or columns.isdigit()
    return Console(width=None if sized else 200, stderr=stderr)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]], empty: str = "(none)",
                optional: Sequence[int] = ()) -> None:
    """`optional`: indexes of columns shown elsewhere too (`show`, `--json`), dropped in that order while the
    table would not fit the terminal unfolded."""
    rows = [[("-" if cell is None else str(cell)) for cell in row] for row in rows]
    if not rows:
        click.echo(empty)
        return
    from rich.table import Table
    from rich.text import Text

    out = console()
    keep = list(range(len(headers)))
    for index in optional:
        if _natural_width([headers[i] for i in keep], [[row[i] for i in keep] for row in rows]) <= out.width:
            break
        keep.remove(index)
    headers, rows = [headers[i] for i in keep], [[row[i] for i in keep] for row in rows]
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    for index, header in enumerate(headers):
        # The first column names the row: never cut. Others wrap at spaces, then fold, when the terminal is narrow.
        table.add_column(header, no_wrap=index == 0, overflow="fold", ratio=None if index == 0 else 1)
    for row in rows:
        # Plain text, never rich markup: `mlx[cpu]==0.32.4` must not lose its `[cpu]` as a style tag.
        table.add_row(*(Text(cell) for cell in row))
    out.print(table)


def _natural_width(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]
    return sum(widths) + len(widths) - 1  # one space between columns
