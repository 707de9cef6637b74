"""Summaries for people (a rich table) and for machines (one JSON document)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from kvmigrate.engine import RunSummary


def summary_json(summary: RunSummary) -> str:
    return json.dumps(summary.as_dict(), indent=2, sort_keys=False)


def print_summary(console: Console, summary: RunSummary) -> None:
    """The closing table: outcomes per type, then failures (one line each), then totals."""
    data: dict[str, Any] = summary.as_dict()
    title = "kvmigrate copy (dry run: nothing was written)" if summary.dry_run else "kvmigrate copy"
    table = Table(title=f"{title}: {summary.source} → {summary.target}", title_justify="left")
    outcomes = sorted({outcome for counts in summary.per_type.values() for outcome in counts})
    table.add_column("type")
    for outcome in outcomes:
        table.add_column(outcome, justify="right")
    for object_type, counts in sorted(summary.per_type.items()):
        table.add_row(object_type, *(str(counts.get(outcome, 0)) for outcome in outcomes))
    if summary.per_type:
        console.print(table)
    else:
        console.print(f"{title}: nothing selected in {summary.source}")
    for failure in summary.failures:
        console.print(f"[red]failed[/red] {failure.type} {failure.name}: {failure.error}", markup=True,
                      highlight=False, soft_wrap=True)
    console.print(
        f"copied {data['copied']}, already copied {data['already_copied']}, skipped {data['skipped']}, "
        f"failed {data['failed']}, done in an earlier run {data['previously_done']}; "
        f"{data['requests']} requests, {data['throttled']} throttled (429), {data['elapsed_seconds']:.1f} s; "
        f"journal {data['state']}", highlight=False, soft_wrap=True)
