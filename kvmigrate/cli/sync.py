"""``kvmigrate sync``: make a standby equal its source, once or every DURATION."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from kvmigrate.cli import flags
from kvmigrate.cli.look import show_plan
from kvmigrate.cli.move import copy_options
from kvmigrate.cli.runner import EXIT_INTERRUPTED, handle_errors, run_until_signal, setup_logging
from kvmigrate.engine import Engine
from kvmigrate.errors import UsageError
from kvmigrate.options import CopyOptions
from kvmigrate.report.run import print_summary, summary_json
from kvmigrate.report.text import safe
from kvmigrate.summary import RunSummary

_DURATION = re.compile(r"^(\d+)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | None) -> float | None:
    if text is None:
        return None
    found = _DURATION.match(text.strip())
    if not found or int(found[1]) == 0:
        raise UsageError(f"--every {text!r}: give a duration such as 30s, 15m, 1h or 1d")
    return float(int(found[1]) * _SECONDS[found[2]])


def run_sync(options: CopyOptions, output: str, every: float | None) -> None:
    """One sync, or one every ``every`` seconds until SIGTERM/Ctrl-C (which ends the wait at once).

    Each run's summary is printed once, as the run ends (``-o json``: one document per run); the exit code is the
    last run's.
    """
    err_console, out_console = Console(stderr=True), Console()

    def show(summary: RunSummary) -> None:
        if output == "json":
            click.echo(summary_json(summary))
        else:
            print_summary(out_console, summary)

    async def go(stop: asyncio.Event) -> RunSummary:
        while True:
            engine = Engine(options, stop=stop)
            err_console.print(f"journal: {safe(engine.state_path)}", highlight=False, soft_wrap=True, markup=False)
            summary = await engine.run()
            show(summary)
            if every is None or stop.is_set():
                return summary
            try:
                await asyncio.wait_for(stop.wait(), timeout=every)
            except TimeoutError:
                continue
            return summary

    summary = run_until_signal(go)
    if summary.interrupted:
        click.echo("kvmigrate: interrupted; rerun the same command to finish the sync", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(summary.exit_code)


@click.command()
@click.argument("source")
@click.argument("target")
@flags.sync_mode
@click.option("--delete", is_flag=True, help="Soft-delete (never purge) target objects that are gone from the source.")
@click.option(
    "--max-delete",
    metavar="N|P%",
    help="Refuse the whole deletion step, deleting nothing, when more would go than N objects or P% of the "
    "target's [default: the smaller of 10 and 25%].",
)
@click.option(
    "--deep", is_flag=True, help="Read every object's version lists: finds attribute changes on old versions."
)
@click.option("--every", metavar="DURATION", help="Sync again every DURATION (30s, 15m, 1h); SIGTERM stops cleanly.")
@flags.selection
@flags.pace()
@flags.issuer_credentials
@flags.journal("<source>__<target>.sync.db")
@flags.dry_run(None)
@flags.connection
@flags.output("table", "json")
@handle_errors
def sync(
    source: str,
    target: str,
    every: str | None,
    verbose: bool,
    log_file: Path | None,
    output: str,
    **values: Any,
) -> None:
    """Make TARGET equal SOURCE, and say what changed: new objects, new versions, attribute and tag drift, vault
    settings (rotation policies, contacts, issuers) and, with --delete, deletions.

    Unchanged objects cost no request (the journal remembers what each was synced from); a run with nothing to do
    makes only listing requests. Deletions are soft deletes, refused as a whole beyond --max-delete.

    \b
    Exit codes: 0 converged; 1 something failed or could not follow, the deletion step was refused, or the
                run could not go on (a vault unreachable, refused, denied); 2 bad usage; 130 interrupted.
    """
    setup_logging(verbose, log_file)
    interval = parse_duration(every)
    options = copy_options(source, target, operation="sync", **values)
    if options.dry_run:
        show_plan(options, output)
        return
    run_sync(options, output, interval)
