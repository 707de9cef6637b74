"""Summaries for people (a rich table) and for machines (one JSON document)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from kvmigrate.archive import Archive
from kvmigrate.engine import RunSummary
from kvmigrate.models import Action
from kvmigrate.options import ALL_TYPES
from kvmigrate.plan import Plan
from kvmigrate.verify import VerifyReport


def summary_json(summary: RunSummary) -> str:
    return json.dumps(summary.as_dict(), indent=2, sort_keys=False)


def print_summary(console: Console, summary: RunSummary) -> None:
    """The closing table: outcomes per type, then failures (one line each), then totals."""
    data: dict[str, Any] = summary.as_dict()
    title = f"kvmigrate {summary.operation}" + (" (dry run: nothing was written)" if summary.dry_run else "")
    console.print(f"{title}: {summary.source} → {summary.target}", highlight=False, soft_wrap=True)
    table = Table()
    outcomes = sorted({outcome for counts in summary.per_type.values() for outcome in counts})
    table.add_column("type")
    for outcome in outcomes:
        table.add_column(outcome, justify="right")
    for object_type, counts in sorted(summary.per_type.items()):
        table.add_row(object_type, *(str(counts.get(outcome, 0)) for outcome in outcomes))
    if summary.per_type:
        console.print(table)
    else:
        console.print("nothing selected in the source")
    for failure in summary.failures:
        console.print(
            f"[red]failed[/red] {failure.type} {failure.name}: {failure.error}",
            markup=True,
            highlight=False,
            soft_wrap=True,
        )
    for blocked in summary.blocked:
        console.print(
            f"[yellow]blocked[/yellow] {blocked.type} {blocked.name}: {blocked.error}", highlight=False, soft_wrap=True
        )
    for note in summary.notes:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False, soft_wrap=True)
    console.print(
        f"copied {data['copied']}, already copied {data['already_copied']}, skipped {data['skipped']}, "
        f"failed {data['failed']}, done in an earlier run {data['previously_done']}; "
        f"{data['requests']} requests, {data['throttled']} throttled (429), {data['elapsed_seconds']:.1f} s; "
        f"journal {data['state']}",
        highlight=False,
        soft_wrap=True,
    )


#: ``json.dumps(..., indent=2)`` builds a new encoder per call; one item is encoded 100,000 times in a large plan.
_INDENTED = json.JSONEncoder(indent=2)


def write_plan_json(out: TextIO, plan: Plan) -> None:
    """Write ``json.dumps(plan.as_dict(), indent=2)`` to ``out`` one item at a time (no trailing newline).

    Built whole, the document of a 100,000-object plan (a dict per item, then one string) cost about 110 MB on top
    of the plan itself; streamed, it costs one item's text. The bytes are the same.
    """
    out.write(f'{{\n  "source": {json.dumps(plan.source)},\n  "target": {json.dumps(plan.target)},\n  "items": ')
    _write_json_list(out, (item.as_dict() for item in plan.items))
    out.write(',\n  "blocked": ')
    _write_json_list(out, (item.as_dict() for item in plan.blocked()))
    out.write(',\n  "summary": ')
    out.write(_nested(_INDENTED.encode(plan.summary()), depth=1))
    out.write("\n}")


def _write_json_list(out: TextIO, values: Iterator[Any]) -> None:
    """A list that is a value of the top-level object, element by element, as ``indent=2`` lays it out."""
    opening = "[\n    "
    for value in values:
        out.write(opening)
        out.write(_nested(_INDENTED.encode(value), depth=2))
        opening = ",\n    "
    out.write("[]" if opening == "[\n    " else "\n  ]")


def _nested(text: str, *, depth: int) -> str:
    """Indent an ``indent=2`` document to sit ``depth`` levels deep (JSON strings never hold a raw newline)."""
    return text.replace("\n", "\n" + "  " * depth)


def write_plan_markdown(out: TextIO, plan: Plan) -> None:
    """A report fit to paste into a change ticket: summary, warnings, then every object (written line by line)."""
    summary = plan.summary()
    lines = [
        f"# kvmigrate plan: `{plan.source}` → `{plan.target}`",
        "",
        f"{summary['objects']} source objects. Copy would make about "
        + ", ".join(f"{count} requests on `{vault}`" for vault, count in summary["requests"].items())
        + f"; at {plan.rps:g} requests/s per vault that is about {summary['eta_seconds']:g} s.",
        "",
        "| action | " + " | ".join(t.plural for t in ALL_TYPES) + " |",
        "|---|" + "---:|" * len(ALL_TYPES),
    ]
    for action, types in summary["counts"].items():
        lines.append(f"| {action} | " + " | ".join(str(types.get(t.value, 0)) for t in ALL_TYPES) + " |")
    if summary["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {warning}" for warning in summary["warnings"]]
    lines += [
        "",
        "## Objects",
        "",
        "| type | name | versions | enabled | action | reason |",
        "|---|---|---:|---|---|---|",
    ]
    out.writelines(f"{line}\n" for line in lines)
    for item in plan.items:
        out.write(
            f"| {item.type} | `{item.name}` | {'' if item.versions is None else item.versions} | "
            f"{'' if item.enabled is None else str(item.enabled).lower()} | {item.action.value} | "
            f"{item.reason} |\n"
        )


def print_plan(console: Console, plan: Plan, *, limit: int = 200) -> None:
    """The plan as tables: what needs attention first, then counts, then the cost."""
    summary = plan.summary()
    console.print(f"kvmigrate plan: {plan.source} → {plan.target}", highlight=False, soft_wrap=True)
    table = Table()
    for column in ("type", "name", "versions", "enabled", "action", "reason"):
        table.add_column(column, overflow="fold")
    shown = list(islice((i for i in plan.items if i.action is not Action.COPY), limit)) or plan.items[:limit]
    for item in shown:
        table.add_row(
            item.type,
            item.name,
            "" if item.versions is None else str(item.versions),
            "" if item.enabled is None else str(item.enabled).lower(),
            item.action.value,
            item.reason,
        )
    console.print(table)
    hidden = len(plan.items) - len(shown)
    if hidden:
        console.print(f"... and {hidden} more (-o json or -o markdown lists all)", highlight=False)
    counts = Table(title="actions", title_justify="left")
    counts.add_column("action")
    for object_type in ALL_TYPES:
        counts.add_column(object_type.plural, justify="right")
    for action, types in summary["counts"].items():
        counts.add_row(action, *(str(types.get(t.value, 0)) for t in ALL_TYPES))
    console.print(counts)
    for warning in summary["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    requests = ", ".join(f"{count} on {vault}" for vault, count in summary["requests"].items())
    console.print(
        f"copy would make about {requests} requests: about {summary['eta_seconds']:g} s at "
        f"{plan.rps:g} requests/s per vault",
        highlight=False,
        soft_wrap=True,
    )


def verify_json(report: VerifyReport) -> str:
    return json.dumps(report.as_dict(), indent=2)


def print_verify(console: Console, report: VerifyReport) -> None:
    data = report.as_dict()
    for finding in data["missing"]:
        console.print(f"[red]missing[/red]   {finding['type']} {finding['name']}", highlight=False)
    for finding in data["different"]:
        where = f" version {finding['version']}" if "version" in finding else ""
        detail = f" ({finding['detail']})" if "detail" in finding else ""
        console.print(
            f"[red]different[/red] {finding['type']} {finding['name']}{where}: {finding.get('field')}{detail}",
            highlight=False,
        )
    for finding in data["unverified"]:
        where = f" version {finding['version']}" if "version" in finding else ""
        console.print(
            f"[yellow]unverified[/yellow] {finding['type']} {finding['name']}{where}: {finding['detail']}",
            highlight=False,
        )
    verdict = "[green]OK[/green]" if report.ok else "[red]MISMATCH[/red]"
    console.print(
        f"verify {report.source} → {report.target}: {verdict}: {report.matched} matched, "
        f"{len(report.missing)} missing, {len(report.different)} different, "
        f"{len(report.unverified)} unverified",
        highlight=False,
        soft_wrap=True,
    )


def print_archive(console: Console, archive: Archive) -> None:
    state = "complete" if archive.complete else "INCOMPLETE (the backup did not finish; rerun it)"
    console.print(
        f"archive {archive.root}: backup of {archive.source} taken {archive.created} by kvmigrate "
        f"{archive.tool_version}; {state}",
        highlight=False,
        soft_wrap=True,
    )
    table = Table()
    for column in ("type", "name", "versions", "enabled", "bytes", "sha256"):
        table.add_column(column, overflow="fold")
    for entry in sorted(archive.entries.values(), key=lambda e: (e.type.value, e.name.lower())):
        table.add_row(
            entry.type.value,
            entry.name,
            str(len(entry.versions)),
            "" if entry.enabled is None else str(entry.enabled).lower(),
            str(entry.size),
            entry.sha256[:16] + "…",
        )
    console.print(table)
    console.print(f"{len(archive.entries)} objects", highlight=False)
