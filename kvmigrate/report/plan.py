"""The plan for people (tables), for machines (streamed JSON) and for a change ticket (streamed Markdown)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from kvmigrate.models import Action
from kvmigrate.options import ALL_TYPES
from kvmigrate.plan import Plan
from kvmigrate.report.text import safe, say

#: ``json.dumps(..., indent=2)`` builds a new encoder per call; one item is encoded 100,000 times in a large plan.
_INDENTED = json.JSONEncoder(indent=2)


def write_plan_json(out: TextIO, plan: Plan) -> None:
    """Write ``json.dumps(plan.as_dict(), indent=2)`` to ``out`` one item at a time (no trailing newline).

    Built whole, the document of a 100,000-object plan (a dict per item, then one string) cost about 110 MB on top
    of the plan itself; streamed, it costs one item's text. The bytes are the same.
    """
    out.write(
        f'{{\n  "operation": {json.dumps(plan.title)},\n  "source": {json.dumps(plan.source)},\n'
        f'  "target": {json.dumps(plan.target)},\n  "items": '
    )
    _write_json_list(out, (item.as_dict() for item in plan.items))
    out.write(',\n  "blocked": ')
    _write_json_list(out, (item.as_dict() for item in plan.blocked()))
    out.write(',\n  "settings": ')
    _write_json_list(out, iter(plan.settings))
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


def _cell(text: object) -> str:
    """A Markdown table cell: escaped control characters, no pipe that would break the row."""
    return safe(text).replace("|", "\\|")


def write_plan_markdown(out: TextIO, plan: Plan) -> None:
    """A report fit to paste into a change ticket: summary, warnings, then every object (written line by line)."""
    summary = plan.summary()
    lines = [
        f"# kvmigrate plan: `{_cell(plan.source)}` → `{_cell(plan.target)}`",
        "",
        f"{summary['objects']} source objects. The {plan.title} would make about "
        + ", ".join(f"{count} requests on `{_cell(vault)}`" for vault, count in summary["requests"].items())
        + f"; at {plan.rps:g} requests/s per vault that is about {summary['eta_seconds']:g} s.",
        "",
        "| action | " + " | ".join(t.plural for t in ALL_TYPES) + " |",
        "|---|" + "---:|" * len(ALL_TYPES),
    ]
    for action, types in summary["counts"].items():
        lines.append(f"| {action} | " + " | ".join(str(types.get(t.value, 0)) for t in ALL_TYPES) + " |")
    if summary["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {_cell(warning)}" for warning in summary["warnings"]]
    if plan.settings:
        lines += ["", "## Vault settings", "", "| kind | name | action | reason |", "|---|---|---|---|"]
        lines += [
            f"| {_cell(s['kind'])} | `{_cell(s['name'])}` | {_cell(s['action'])} | {_cell(s['reason'])} |"
            for s in plan.settings
        ]
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
            f"| {item.type} | `{_cell(item.name)}` | {'' if item.versions is None else item.versions} | "
            f"{'' if item.enabled is None else str(item.enabled).lower()} | {item.action.value} | "
            f"{_cell(item.reason)} |\n"
        )


def print_plan(console: Console, plan: Plan, *, limit: int = 200) -> None:
    """The plan as tables: what needs attention first, then counts, then the cost."""
    summary = plan.summary()
    say(console, f"kvmigrate plan ({plan.title}): {plan.source} → {plan.target}")
    table = Table()
    for column in ("type", "name", "versions", "enabled", "action", "reason"):
        table.add_column(column, overflow="fold")
    shown = list(islice((i for i in plan.items if i.action is not Action.COPY), limit)) or plan.items[:limit]
    for item in shown:
        table.add_row(
            item.type,
            safe(item.name),
            "" if item.versions is None else str(item.versions),
            "" if item.enabled is None else str(item.enabled).lower(),
            item.action.value,
            safe(item.reason),
        )
    console.print(table)
    hidden = len(plan.items) - len(shown)
    if hidden:
        say(console, f"... and {hidden} more (-o json or -o markdown lists all)")
    counts = Table(title="actions", title_justify="left")
    counts.add_column("action")
    for object_type in ALL_TYPES:
        counts.add_column(object_type.plural, justify="right")
    for action, types in summary["counts"].items():
        counts.add_row(action, *(str(types.get(t.value, 0)) for t in ALL_TYPES))
    console.print(counts)
    if plan.settings:
        settings = Table(title="vault settings (no backup blob carries them)", title_justify="left")
        for column in ("kind", "name", "action", "reason"):
            settings.add_column(column, overflow="fold")
        for setting in plan.settings:
            settings.add_row(*(safe(setting[c]) for c in ("kind", "name", "action", "reason")))
        console.print(settings)
    for warning in summary["warnings"]:
        say(console, ("warning:", "yellow"), f" {warning}")
    requests = ", ".join(f"{count} on {vault}" for vault, count in summary["requests"].items())
    say(
        console,
        f"the {plan.title} would make about {requests} requests: about {summary['eta_seconds']:g} s at "
        f"{plan.rps:g} requests/s per vault",
    )
