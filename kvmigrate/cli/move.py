"""``copy``, ``backup`` and ``restore``: one engine, three pairs of ends; ``--dry-run`` prints the plan instead."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from kvmigrate.cli import flags
from kvmigrate.cli.look import show_plan
from kvmigrate.cli.runner import EXIT_INTERRUPTED, handle_errors, run_until_signal, setup_logging
from kvmigrate.engine import Engine
from kvmigrate.options import CopyOptions
from kvmigrate.progress import ProgressDisplay
from kvmigrate.report.run import interrupted_line, print_summary, summary_json
from kvmigrate.report.text import safe
from kvmigrate.summary import RunSummary


def copy_options(source: str, target: str, **values: Any) -> CopyOptions:
    """Options from flags (pydantic validates; its errors become one usage line)."""
    connection = flags.connection_options(values)
    return CopyOptions(
        source=source, target=target, types=flags.parse_types(values.pop("types")), connection=connection, **values
    )


def run_engine(options: CopyOptions, output: str) -> None:
    """Run copy, backup or restore with progress and a summary; exit with the run's code."""
    err_console = Console(stderr=True)
    out_console = Console()

    async def go(stop: asyncio.Event) -> RunSummary:
        engine = Engine(options, stop=stop)
        err_console.print(f"journal: {safe(engine.state_path)}", highlight=False, soft_wrap=True, markup=False)
        if output != "table" or not out_console.is_terminal:
            return await engine.run()
        display = ProgressDisplay(out_console, lambda: sum(lim.throttled for lim in engine.limiters.values()))
        engine.subscribe(display)
        with display:
            return await engine.run()

    summary = run_until_signal(go)
    if output == "json":
        click.echo(summary_json(summary))
    else:
        print_summary(out_console, summary)
    if summary.interrupted:
        click.echo(f"kvmigrate: {interrupted_line(options.operation)}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(summary.exit_code)


def run_or_plan(options: CopyOptions, output: str) -> None:
    if options.dry_run:
        show_plan(options, output)
    else:
        run_engine(options, output)


@click.command()
@click.argument("source")
@click.argument("target")
@flags.selection
@flags.pace()
@flags.conflicts
@flags.vault_settings
@flags.mode
@flags.journal()
@flags.dry_run("SOURCE TARGET")
@flags.connection
@flags.output("table", "json")
@handle_errors
def copy(source: str, target: str, verbose: bool, log_file: Path | None, output: str, **values: Any) -> None:
    """Copy every secret, key and certificate (all versions) from SOURCE to TARGET.

    SOURCE and TARGET are vault names (contoso → https://contoso.vault.azure.net) or https URLs. In the default
    backup mode both vaults must be in the same Azure subscription and geography (a Key Vault backup restores
    nowhere else); --mode value crosses subscriptions, geographies and tenants for secrets and certificates.
    Certificates carry their keys and secrets; those are never copied on their own.

    \b
    Exit codes: 0 nothing failed (skips are not failures); 1 some objects or settings failed, an issuer lacks
                its password, or the run could not go on (a vault unreachable, refused, denied); 2 bad usage
                or input; 130 interrupted (rerun the same command to resume).
    """
    setup_logging(verbose, log_file)
    run_or_plan(copy_options(source, target, **values), output)


@click.command()
@click.argument("source")
@click.argument("archive", type=click.Path(file_okay=False, path_type=Path))
@flags.selection
@flags.pace()
@flags.journal("<source>__<archive>.db")
@flags.connection
@flags.output("table", "json")
@handle_errors
def backup(source: str, archive: Path, verbose: bool, log_file: Path | None, output: str, **values: Any) -> None:
    """Back up every object of SOURCE into the folder ARCHIVE (one blob file per object + manifest.json).

    The blobs are Key Vault's own encrypted backups, exactly as returned; they restore only into a vault of the
    same Azure subscription and geography. The folder is 0700 and every file 0600. A rerun continues an
    interrupted backup; finished objects are not backed up again.

    \b
    Exit codes: 0 nothing failed; 1 some objects or settings failed, or the run could not go on (the vault
                unreachable, refused, denied; the archive not writable: disk full); 2 bad usage or input;
                130 interrupted.
    """
    setup_logging(verbose, log_file)
    run_engine(copy_options(source, str(archive), operation="backup", **values), output)


@click.command()
@click.argument("archive", type=click.Path(path_type=Path))
@click.argument("target")
@flags.selection
@flags.pace()
@flags.conflicts
@flags.vault_settings
@flags.allow_incomplete
@flags.journal("<archive>__<target>.db")
@flags.dry_run("ARCHIVE TARGET")
@flags.connection
@flags.output("table", "json")
@handle_errors
def restore(archive: Path, target: str, verbose: bool, log_file: Path | None, output: str, **values: Any) -> None:
    """Restore every object of the folder ARCHIVE (from `kvmigrate backup`) into TARGET.

    ARCHIVE may also be a folder of per-object backup files (az keyvault ... backup, Backup-AzKeyVault*, the
    portal's Download Backup) or one such file: each is restored under the name the target gives it.

    The archive is checked first: a manifest that is damaged or unsafe, or a blob that is a link, not a regular
    file or not of its manifest size, refuses the whole restore (exit 2) before anything is written; an archive
    whose backup did not finish or that lacks blobs is refused (exit 1) unless --allow-incomplete. Each blob's
    SHA-256 is checked before it is sent: a tampered one is reported failed and the others continue.
    Conflicts, journal and resume work as for copy.

    \b
    Exit codes: 0 nothing failed; 1 some objects or settings failed, an issuer lacks its password, an
                incomplete archive, or the run could not go on (the vault unreachable, refused, denied);
                2 bad usage or input (a damaged archive); 130 interrupted.
    """
    setup_logging(verbose, log_file)
    run_or_plan(copy_options(str(archive), target, operation="restore", **values), output)
