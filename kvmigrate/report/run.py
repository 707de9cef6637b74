"""The run summary for people (a table and one line per failure) and for machines (one JSON document)."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from kvmigrate.report.text import safe, say
from kvmigrate.summary import RunSummary

#: What each operation calls moving an object, and what a rerun does not do again.
VERBS = {
    "copy": ("copied", "copied"),
    "backup": ("backed up", "backed up"),
    "restore": ("restored", "restored"),
    "sync": ("created", "synced"),
}


#: Skipped objects listed by name in the table (``-o json`` lists every one).
SHOWN_SKIPS = 50


def summary_json(summary: RunSummary) -> str:
    return json.dumps(summary.as_dict(), indent=2, sort_keys=False)


def print_summary(console: Console, summary: RunSummary) -> None:
    """The closing table: outcomes per type, then failures (one line each), then totals."""
    data = summary.as_dict()
    title = f"kvmigrate {summary.operation}" + (" (dry run: nothing was written)" if summary.dry_run else "")
    say(console, f"{title}: {summary.source} → {summary.target}")
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
        say(console, ("failed", "red"), f" {failure.type} {failure.name}: {failure.error}")
    for blocked in summary.blocked:
        say(console, ("blocked", "yellow"), f" {blocked.type} {blocked.name}: {blocked.error}")
    for skipped in summary.skips[:SHOWN_SKIPS]:
        say(console, ("skipped", "yellow"), f" {skipped.type} {skipped.name}: {skipped.error}")
    if len(summary.skips) > SHOWN_SKIPS:
        say(console, f"... and {len(summary.skips) - SHOWN_SKIPS} more skipped (-o json lists all)")
    for pending in summary.pending:
        say(console, ("pending", "yellow"), f" {pending.type} {pending.name}: {pending.error}")
    for setting in summary.settings:
        if setting["action"] not in ("already-copied", "previously-done"):
            style = "red" if setting["action"] in ("failed", "conflict-existing", "needs-credentials") else "cyan"
            detail = f" ({setting['detail']})" if setting.get("detail") else ""
            say(
                console,
                (setting["kind"], style),
                f" {setting['name']}: {setting['action']}: {setting['reason']}{detail}",
            )
    for name in summary.pending_requests:
        say(
            console,
            ("pending", "yellow"),
            f" certificate {name}: has a pending request for a new version, which was not copied; complete the merge "
            "or cancel the request in the source, then rerun",
        )
    for note in summary.notes:
        say(console, ("note:", "yellow"), f" {note}")
    done, _ = VERBS.get(summary.operation, ("copied", "copied"))
    extra = []
    if summary.purged:
        extra.append(f"purged {summary.purged}")
    if summary.recovered:
        extra.append(f"recovered {summary.recovered}")
    if summary.settings:
        moved = sum(1 for setting in summary.settings if setting["action"] in ("copy", "replace"))
        extra.append(f"settings {moved} copied of {len(summary.settings)}")
    if summary.recopied:
        extra.append(f"{summary.recopied} missing in the target {done} again")
    if summary.operation == "sync":
        extra.insert(
            0,
            f"updated {summary.updated} ({data.get('appended_versions', 0)} versions appended, "
            f"{data.get('updated_attributes', 0)} attribute updates), deleted {summary.deleted}",
        )
    say(
        console,
        f"{done} {data['copied']}, already there {data['already_copied']}, skipped {data['skipped']}, "
        f"failed {data['failed']}, done in an earlier run {data['previously_done']}"
        + "".join(f", {item}" for item in extra)
        + f"; {data['requests']} requests, {data['throttled']} throttled (429), {data['elapsed_seconds']:.1f} s"
        + (f"; journal {safe(data['state'])}" if data["state"] else ""),
    )


def interrupted_line(operation: str) -> str:
    _, again = VERBS.get(operation, ("copied", "copied"))
    return f"interrupted; rerun the same command to resume (finished objects are not {again} again)"
