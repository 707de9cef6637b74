"""The commands that only read: ``plan``, ``verify`` and ``archive inspect``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

import click
from rich.console import Console

from kvmigrate.archive import Archive, is_archive_reference
from kvmigrate.archive.folder import BackupFolder
from kvmigrate.archive.manifest import MANIFEST
from kvmigrate.cli import flags
from kvmigrate.cli.runner import EXIT_INTERRUPTED, handle_errors, run_until_signal, setup_logging
from kvmigrate.files import check_writable_path, private_dir, private_text
from kvmigrate.options import CopyOptions, VerifyOptions
from kvmigrate.plan import Plan, build_plan
from kvmigrate.progress import ProgressDisplay
from kvmigrate.report.archive import folder_json, inspection_json, print_archive, print_folder
from kvmigrate.report.plan import print_plan, write_plan_json, write_plan_markdown
from kvmigrate.report.verify import print_verify, verify_json
from kvmigrate.verify import VerifyReport, verify


def show_plan(options: CopyOptions, output: str, output_file: Path | None = None) -> None:
    """Build the plan, then stream it out: a plan of 100,000 objects is never held as one document."""
    if output_file is not None:
        private_dir(output_file.parent, what="output folder")
        check_writable_path(output_file, what="output file")  # refused before the vaults are read
    plan = run_until_signal(lambda stop: build_plan(options, stop=stop))
    if plan.interrupted:  # a part of a plan read as the whole would mislead: nothing is printed or written
        click.echo(f"kvmigrate: {options.operation} plan interrupted before every object was decided", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if output_file is not None:
        with private_text(output_file, what="output file") as handle:
            write_plan(handle, plan, output)
        click.echo(f"plan written to {output_file}", err=True)
    elif output == "table":
        print_plan(Console(), plan)
    else:
        write_plan(sys.stdout, plan, output)
        if output == "json":
            sys.stdout.write("\n")  # as click.echo added; a file keeps exactly what json.dumps wrote
        sys.stdout.flush()


def write_plan(out: TextIO, plan: Plan, output: str) -> None:
    """Write the plan to ``out`` as JSON or Markdown piece by piece, or as the tables (140 columns, no colour)."""
    if output == "json":
        write_plan_json(out, plan)
    elif output == "markdown":
        write_plan_markdown(out, plan)
    else:
        console = Console(record=True, width=140)
        with console.capture():
            print_plan(console, plan)
        out.write(console.export_text())


@click.command()
@click.argument("source")
@click.argument("target")
@flags.selection
@flags.pace()
@flags.conflicts
@flags.vault_settings
@flags.mode
@flags.allow_incomplete
@click.option(
    "--output-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the plan to this file (0600, never through a symbolic link) instead of stdout.",
)
@flags.connection
@flags.output("table", "json", "markdown")
@handle_errors
def plan(
    source: str, target: str, output_file: Path | None, verbose: bool, log_file: Path | None, output: str, **values: Any
) -> None:
    """Show what `kvmigrate copy SOURCE TARGET` would do, object by object, without writing anything.

    SOURCE may also be an archive folder (from `kvmigrate backup`), or a folder of per-object backup files (az
    keyvault ... backup, Backup-AzKeyVault*, the portal's Download Backup) or one such file: then it shows what
    `kvmigrate restore` would do. The plan is the engine's own dry run, so it decides exactly as the run will.

    It only reads (listings and version lists; by value also the values of objects the target already has),
    under the same per-vault rate limit as copy; never a backup, restore or any write. Actions: copy, resume,
    already-copied, skip-existing / conflict-existing, conflict-deleted, recover-deleted / purge-and-copy,
    too-many-versions, blocked-not-exportable, blocked-disabled, pending, skip-managed, excluded; a sync's dry run
    also update, cannot-follow and delete.

    \b
    Exit codes: 0 the plan was made, whatever it contains; 1 a vault could not be read (unreachable, refused,
                denied); 2 bad usage; 130 interrupted (nothing is shown).
    """
    from kvmigrate.cli.move import copy_options

    setup_logging(verbose, log_file)
    operation = "restore" if is_archive_reference(source) else "copy"
    show_plan(copy_options(source, target, operation=operation, **values), output, output_file)


@click.command(name="verify")
@click.argument("source")
@click.argument("target")
@flags.selection
@click.option("--no-values", is_flag=True, help="Do not read secret values (compare them by version id).")
@flags.verify_mode
@click.option("--one-way", is_flag=True, help="Do not report objects that exist only in the target.")
@flags.pace(concurrency=16)
@flags.connection
@flags.output("table", "json")
@handle_errors
def verify_command(
    source: str, target: str, verbose: bool, log_file: Path | None, output: str, types: str, **values: Any
) -> None:
    """Prove TARGET holds every SOURCE object: same versions, attributes, tags and material.

    Secret values are compared by SHA-256 digest in memory, never printed or written. Keys compare their public
    JWK, certificates their DER. Lists missing and different objects (with the field, never a value), what could
    not be compared (keys and disabled versions in value mode) and objects only in the target (unless
    --one-way). Managed keys and secrets are checked through their certificate.

    \b
    Exit codes: 0 every selected object matches; 1 anything missing, different, unverified, failed or extra,
                or a vault could not be read; 2 bad usage; 130 interrupted (nothing is shown).
    """
    setup_logging(verbose, log_file)
    connection = flags.connection_options(values)
    options = VerifyOptions(
        source=source, target=target, types=flags.parse_types(types), connection=connection, **values
    )
    console = Console()

    async def go(stop: asyncio.Event) -> VerifyReport:
        if output != "table" or not console.is_terminal:
            return await verify(options, stop=stop)
        display = ProgressDisplay(console, lambda: 0)
        with display:
            return await verify(options, events=display, stop=stop)

    report = run_until_signal(go)
    if report.interrupted:  # what was compared so far proves nothing about the rest
        click.echo("kvmigrate: verify interrupted before every object was compared; rerun it", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if output == "json":
        click.echo(verify_json(report))
    else:
        print_verify(console, report)
    sys.exit(0 if report.ok else 1)


@click.group()
def archive() -> None:
    """Look into archives written by `kvmigrate backup`."""


@archive.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--quick", is_flag=True, help="Skip reading every blob to check its SHA-256 (sizes are checked).")
@flags.output("table", "json")
@handle_errors
def inspect(path: Path, quick: bool, output: str) -> None:
    """List what the archive at PATH holds and check that it is whole: every blob present, of its size and SHA-256.

    PATH may also be a folder of per-object backup files (az keyvault ... backup, Backup-AzKeyVault*, the portal's
    Download Backup) or one such file: then it lists each with its type and presumed name.

    \b
    Exit codes: 0 the archive is whole, 1 it is incomplete or a blob does not match, 2 it is damaged or unsafe.
    """
    if not (path / MANIFEST).exists():
        folder = BackupFolder.load(path)  # a folder of az / PowerShell / portal backup files (or one file)
        if output == "json":
            click.echo(folder_json(folder))
        else:
            print_folder(Console(), folder)
        sys.exit(0)
    loaded = Archive.load(path)
    bad = None if quick else loaded.verify_blobs()
    if output == "json":
        click.echo(inspection_json(loaded, bad))
    else:
        print_archive(Console(), loaded, bad)
    sys.exit(0 if loaded.is_whole and not bad else 1)
