"""The ``kvmigrate`` command line: a thin layer that turns flags into options and calls the library."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click
from pydantic import ValidationError
from rich.console import Console

from kvmigrate import __version__
from kvmigrate.errors import KvmigrateError
from kvmigrate.models import ObjectType
from kvmigrate.options import DEFAULT_RPS, ConnectionOptions, CopyOptions

if TYPE_CHECKING:
    from kvmigrate.plan import Plan

F = TypeVar("F", bound=Callable[..., Any])
EXIT_INTERRUPTED = 130


def _apply(command: F, decorators: list[Callable[[Any], Any]]) -> F:
    """Apply option decorators in reading order (the first listed is shown first in --help)."""
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def common_options(command: F) -> F:
    """Options every vault command accepts after its name, as in az CLI."""
    decorators = [
        click.option(
            "--ca-bundle",
            type=click.Path(dir_okay=False, path_type=Path),
            envvar="KVMIGRATE_CA_BUNDLE",
            help="Extra CA file (PEM) to trust, e.g. the emulator's. TLS verification is never turned off. "
            "[env: KVMIGRATE_CA_BUNDLE]",
        ),
        click.option("--tenant-id", help="Preferred Azure AD tenant for the credential chain."),
        click.option("-v", "--verbose", is_flag=True, help="Log each step to stderr (never values or tokens)."),
        click.option(
            "--log-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Also write the detailed log here (created 0600).",
        ),
        click.option(
            "-o",
            "--output",
            type=click.Choice(["table", "json", "markdown"]),
            default="table",
            show_default=True,
            help="Output format: a table for people, one JSON document on stdout for "
            "machines, Markdown for a change ticket (plan).",
        ),
    ]
    return _apply(command, decorators)


def selection_options(command: F) -> F:
    """--types/--include/--exclude: which source objects a command looks at."""
    decorators = [
        click.option(
            "--types",
            default="secrets,keys,certificates",
            show_default=True,
            help="Comma-separated subset of secrets,keys,certificates.",
        ),
        click.option(
            "--include", multiple=True, metavar="GLOB", help="Only names matching GLOB (repeatable, case-insensitive)."
        ),
        click.option("--exclude", multiple=True, metavar="GLOB", help="Skip names matching GLOB (repeatable)."),
    ]
    return _apply(command, decorators)


def decision_options(command: F) -> F:
    """How copy treats what the target already holds, and how hard it pushes each vault (copy and plan)."""
    decorators = [
        click.option(
            "--concurrency",
            type=click.IntRange(1, 512),
            default=32,
            show_default=True,
            help="Objects in flight per stage (backup and restore).",
        ),
        click.option(
            "--rps",
            type=click.FloatRange(min=0.1, max=10_000),
            default=DEFAULT_RPS,
            show_default=True,
            help="HTTP attempts per second per vault, retries and auth challenges included. Key Vault "
            "allows 4,000 per 10 s; on a 429 the rate drops to what the vault admitted over the last 10 s (halves if "
            "nothing) and recovers gradually.",
        ),
        click.option(
            "--on-conflict",
            type=click.Choice(["skip", "fail"]),
            default="skip",
            show_default=True,
            help="An active object of the same name in the target (with other versions): skip it, or "
            "count it as failed. Identical version ids count as already copied either way.",
        ),
        click.option(
            "--recover-deleted",
            is_flag=True,
            help="A soft-deleted object of the same name in the target: recover it (then apply --on-conflict).",
        ),
        click.option(
            "--purge-deleted",
            is_flag=True,
            help="A soft-deleted object of the same name in the target: PURGE it (destructive), then restore.",
        ),
    ]
    return _apply(command, decorators)


def mode_options(command: F) -> F:
    """--mode and --latest-only: how objects move (copy, plan, verify)."""
    decorators = [
        click.option(
            "--mode",
            type=click.Choice(["backup", "value", "auto"]),
            default="backup",
            show_default=True,
            help="backup: Key Vault's backup blobs (same subscription and geography; every version keeps "
            "its id). value: recreate secrets and certificates from their values, any subscription, "
            "geography or tenant (keys cannot move). auto: backup, switching to value when the target "
            "refuses blobs.",
        ),
        click.option("--latest-only", is_flag=True, help="Value mode: copy only each object's current version."),
    ]
    return _apply(command, decorators)


def journal_options(command: F) -> F:
    """--state and --restart: where a run journals, and starting over (copy, backup, restore)."""
    decorators = [
        click.option(
            "--state",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Journal file (SQLite) [default: ./.kvmigrate/<source>__<target>.db, named after both ends].",
        ),
        click.option("--restart", is_flag=True, help="Discard the journal and start over."),
    ]
    return _apply(command, decorators)


def run_or_plan(options: CopyOptions, output: str, *, dry_run: bool) -> None:
    """A dry run prints the plan and writes nothing; otherwise the engine runs."""
    if dry_run:
        show_plan(options, output)
    else:
        run_engine(options, output)


@contextlib.contextmanager
def private_file(path: Path) -> Iterator[TextIO]:
    """Open a report file we create (0600) for writing, replacing any old one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.chmod(path, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
    except OSError as exc:
        raise click.UsageError(f"cannot write {path}: {exc.strerror}") from exc


def copy_options(source: str, target: str, **flags: Any) -> CopyOptions:
    """Build CopyOptions from the flags of copy or plan (pydantic validates; errors become usage errors)."""
    connection = ConnectionOptions(ca_bundle=flags.pop("ca_bundle"), tenant_id=flags.pop("tenant_id"))
    return CopyOptions(
        source=source, target=target, types=parse_types(flags.pop("types")), connection=connection, **flags
    )


def setup_logging(verbose: bool, log_file: Path | None) -> None:
    """kvmigrate's own loggers only; azure-core's HTTP logging stays off so no body or header is ever logged."""
    logger = logging.getLogger("kvmigrate")
    logger.setLevel(logging.DEBUG if (verbose or log_file) else logging.WARNING)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.DEBUG if verbose else logging.WARNING)
    stderr.setFormatter(fmt)
    logger.addHandler(stderr)
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.chmod(log_file, 0o600)
        except OSError as exc:
            raise click.UsageError(f"cannot write log file {log_file}: {exc.strerror}") from exc
        handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    logging.getLogger("azure").setLevel(logging.ERROR)


def run_until_signal(make: Callable[[asyncio.Event], Any]) -> Any:
    """Run a coroutine; the first SIGINT/SIGTERM sets ``stop`` (finish in-flight work), a second cancels."""

    async def runner() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def on_signal() -> None:
            if stop.is_set() and task is not None:
                task.cancel()
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal)
        return await make(stop)

    return asyncio.run(runner())


def handle_errors(command: F) -> F:
    """Map expected failures to one line on stderr and an exit code; no tracebacks."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except KvmigrateError as exc:
            click.echo(f"kvmigrate: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}" for e in exc.errors(include_url=False)
            )
            raise click.UsageError(problems) from exc
        except asyncio.CancelledError:
            click.echo("kvmigrate: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def parse_types(value: str) -> tuple[ObjectType, ...]:
    try:
        return tuple(dict.fromkeys(ObjectType.parse(part) for part in value.split(",") if part.strip()))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--types") from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="kvmigrate")
def main() -> None:
    """Copy a whole Azure Key Vault - every secret, key and certificate, with every version - into another vault.

    \b
    Typical run:
      kvmigrate copy contoso-old contoso-new          # names or https URLs
      kvmigrate copy SRC DST -o json > summary.json   # machine-readable summary
    Rerun the same command after a failure or Ctrl-C: finished objects are not copied again.
    """


@main.command()
@click.argument("source")
@click.argument("target")
@selection_options
@decision_options
@mode_options
@journal_options
@click.option("--dry-run", is_flag=True, help="Print the plan (as `kvmigrate plan` does) and write nothing.")
@common_options
@handle_errors
def copy(
    source: str,
    target: str,
    state: Path | None,
    restart: bool,
    dry_run: bool,
    verbose: bool,
    log_file: Path | None,
    output: str,
    **flags: Any,
) -> None:
    """Copy every secret, key and certificate (all versions) from SOURCE to TARGET by backup and restore.

    SOURCE and TARGET are vault names (contoso → https://contoso.vault.azure.net) or https URLs. In the default
    backup mode both vaults must be in the same Azure subscription and geography (a Key Vault backup restores
    nowhere else); --mode value crosses subscriptions, geographies and tenants for secrets and certificates.
    Certificates carry their keys and secrets; those are never copied on their own.

    \b
    Exit codes: 0 nothing failed (skips are not failures), 1 some objects failed,
                2 bad usage or input, 130 interrupted (rerun the same command to resume).
    """
    setup_logging(verbose, log_file)
    options = copy_options(source, target, state=state, restart=restart, **flags)
    run_or_plan(options, output, dry_run=dry_run)


def run_engine(options: CopyOptions, output: str) -> None:
    """Run copy, backup or restore with progress and a summary; exit with the run's code."""
    from kvmigrate.engine import CopyEngine
    from kvmigrate.progress import ProgressDisplay
    from kvmigrate.report import print_summary, summary_json

    err_console = Console(stderr=True)
    out_console = Console()

    async def go(stop: asyncio.Event) -> Any:
        show_progress = output == "table" and out_console.is_terminal
        engine = CopyEngine(options, stop=stop)
        err_console.print(f"journal: {engine.state_path}", highlight=False, soft_wrap=True)
        if not show_progress:
            return await engine.run()
        display = ProgressDisplay(out_console, lambda: sum(lim.throttled for lim in engine.limiters.values()))
        engine.events = display
        with display:
            return await engine.run()

    summary = run_until_signal(go)
    if output == "json":
        click.echo(summary_json(summary))
    else:
        print_summary(out_console, summary)
    if summary.interrupted:
        click.echo(
            f"kvmigrate: interrupted; rerun the same command to resume (finished objects are not "
            f"{'copied' if options.operation == 'copy' else options.operation + 'd'} again)",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(1 if summary.failed else 0)


def show_plan(options: CopyOptions, output: str, output_file: Path | None = None) -> None:
    """Build the plan, then stream it out: a plan of 100,000 objects is never held as one document."""
    from kvmigrate.planner import build_plan
    from kvmigrate.report import print_plan

    plan = run_until_signal(lambda stop: build_plan(options))
    if output_file is not None:
        with private_file(output_file) as handle:
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
    from kvmigrate.report import print_plan, write_plan_json, write_plan_markdown

    if output == "json":
        write_plan_json(out, plan)
    elif output == "markdown":
        write_plan_markdown(out, plan)
    else:
        console = Console(record=True, width=140)
        with console.capture():
            print_plan(console, plan)
        out.write(console.export_text())


@main.command()
@click.argument("source")
@click.argument("target")
@selection_options
@decision_options
@mode_options
@click.option(
    "--output-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the plan to this file (0600) instead of stdout.",
)
@common_options
@handle_errors
def plan(
    source: str, target: str, output_file: Path | None, verbose: bool, log_file: Path | None, output: str, **flags: Any
) -> None:
    """Show what `kvmigrate copy SOURCE TARGET` would do, object by object, without writing anything.

    SOURCE may also be an archive directory (from `kvmigrate backup`): then it shows what `kvmigrate restore`
    would do.

    It only lists and reads (never backup, restore or any write), under the same per-vault rate limit as copy.
    Actions: copy, already-copied (the target holds the same version ids), skip-existing / conflict-existing
    (an active object of that name), conflict-deleted (soft-deleted in the target), recover-deleted /
    purge-and-copy (with those flags), too-many-versions (more than 500: Key Vault refuses the backup),
    skip-managed (a certificate's key or secret, which travels with the certificate), excluded.

    \b
    -o table (default), json (items + summary with counts, requests, eta_seconds) or markdown (for a
    change ticket). Exit 0 when the plan was made, whatever it contains; 2 on bad usage.
    """
    from kvmigrate.archive import is_archive_reference

    setup_logging(verbose, log_file)
    operation = "restore" if is_archive_reference(source) else "copy"
    show_plan(copy_options(source, target, operation=operation, **flags), output, output_file)


@main.command()
@click.argument("source")
@click.argument("target")
@selection_options
@click.option("--no-values", is_flag=True, help="Do not read secret values (for identities without get).")
@click.option(
    "--mode",
    type=click.Choice(["backup", "value"]),
    default="backup",
    show_default=True,
    help="backup: compare by version ids; value: compare values and attributes version by version in "
    "creation order (after copy --mode value, where version ids differ).",
)
@click.option("--latest-only", is_flag=True, help="Value mode: compare only each object's current version.")
@click.option(
    "--concurrency", type=click.IntRange(1, 512), default=16, show_default=True, help="Objects compared at once."
)
@click.option(
    "--rps",
    type=click.FloatRange(min=0.1, max=10_000),
    default=DEFAULT_RPS,
    show_default=True,
    help="HTTP attempts per second per vault.",
)
@common_options
@handle_errors
def verify(
    source: str,
    target: str,
    types: str,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    no_values: bool,
    mode: str,
    latest_only: bool,
    concurrency: int,
    rps: float,
    ca_bundle: Path | None,
    tenant_id: str | None,
    verbose: bool,
    log_file: Path | None,
    output: str,
) -> None:
    """Prove TARGET holds every SOURCE object: same version ids, attributes, tags and material.

    Secret values are compared by SHA-256 digest in memory, never printed or written (--no-values skips them).
    Keys compare their public JWK, certificates their DER (cer). Managed keys/secrets are checked through
    their certificate. Output lists `missing` and `different` objects (with the field, never a value).

    \b
    Exit codes: 0 everything matches, 1 something is missing or different, 2 bad usage.
    """
    from kvmigrate.report import print_verify, verify_json
    from kvmigrate.verify import verify as run_verify

    setup_logging(verbose, log_file)
    connection = ConnectionOptions(ca_bundle=ca_bundle, tenant_id=tenant_id)
    report = run_until_signal(
        lambda stop: run_verify(
            source,
            target,
            types=parse_types(types),
            include=include,
            exclude=exclude,
            no_values=no_values,
            by_value=mode == "value",
            latest_only=latest_only,
            concurrency=concurrency,
            rps=rps,
            connection=connection,
        )
    )
    if output == "json":
        click.echo(verify_json(report))
    else:
        print_verify(Console(), report)
    sys.exit(0 if report.ok else 1)


@main.command()
@click.argument("source")
@click.argument("archive", type=click.Path(file_okay=False, path_type=Path))
@selection_options
@click.option(
    "--concurrency", type=click.IntRange(1, 512), default=32, show_default=True, help="Objects in flight per stage."
)
@click.option(
    "--rps",
    type=click.FloatRange(min=0.1, max=10_000),
    default=DEFAULT_RPS,
    show_default=True,
    help="HTTP attempts per second on the source vault.",
)
@journal_options
@common_options
@handle_errors
def backup(
    source: str,
    archive: Path,
    state: Path | None,
    restart: bool,
    verbose: bool,
    log_file: Path | None,
    output: str,
    **flags: Any,
) -> None:
    """Back up every object of SOURCE into the directory ARCHIVE (one blob file per object + manifest.json).

    The blobs are Key Vault's own encrypted backups, exactly as returned; they restore only into a vault of the
    same Azure subscription and geography. The directory is 0700 and every file 0600. A rerun continues an
    interrupted backup; finished objects are not backed up again.

    \b
    Exit codes: 0 nothing failed, 1 some objects failed, 2 bad usage or input, 130 interrupted.
    """
    setup_logging(verbose, log_file)
    run_engine(copy_options(source, str(archive), operation="backup", state=state, restart=restart, **flags), output)


@main.command()
@click.argument("archive", type=click.Path(file_okay=False, path_type=Path))
@click.argument("target")
@selection_options
@decision_options
@journal_options
@click.option("--dry-run", is_flag=True, help="Print the plan (as `kvmigrate plan ARCHIVE TARGET`) and write nothing.")
@common_options
@handle_errors
def restore(
    archive: Path,
    target: str,
    state: Path | None,
    restart: bool,
    dry_run: bool,
    verbose: bool,
    log_file: Path | None,
    output: str,
    **flags: Any,
) -> None:
    """Restore every object of the directory ARCHIVE (from `kvmigrate backup`) into TARGET.

    Each blob is checked against the SHA-256 in the manifest before it is sent: a tampered or truncated blob is
    reported as failed and the others continue. Conflicts, journal and resume work as for copy.

    \b
    Exit codes: 0 nothing failed, 1 some objects failed, 2 bad usage or input, 130 interrupted.
    """
    setup_logging(verbose, log_file)
    options = copy_options(str(archive), target, operation="restore", state=state, restart=restart, **flags)
    run_or_plan(options, output, dry_run=dry_run)


@main.group()
def archive() -> None:
    """Look into archives written by `kvmigrate backup`."""


@archive.command()
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, the manifest as JSON for machines.",
)
@handle_errors
def inspect(path: Path, output: str) -> None:
    """List what the archive at PATH holds: source vault, creation time, and every object with its versions."""
    from kvmigrate.archive import Archive
    from kvmigrate.report import print_archive

    loaded = Archive.load(path)
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "source": loaded.source,
                    "created": loaded.created,
                    "complete": loaded.complete,
                    "tool_version": loaded.tool_version,
                    "objects": [e.as_dict() for e in loaded.entries.values()],
                },
                indent=2,
            )
        )
    else:
        print_archive(Console(), loaded)


@main.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file with [defaults] and one [vaults.NAME] table per vault.",
)
@click.option(
    "--vault",
    "vaults",
    multiple=True,
    metavar="NAME=PORT",
    help="Shorthand for a vault with default settings (repeatable).",
)
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write IDENTITY_ENDPOINT, IDENTITY_HEADER, KVMIGRATE_CA_BUNDLE and KVMIGRATE_VAULT_<NAME> here "
    "(atomically, 0600) once every vault accepts connections.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the CA and server certificate are written (default: a temporary directory).",
)
def emulator(config_file: Path | None, vaults: tuple[str, ...], env_file: Path | None, state_dir: Path | None) -> None:
    """Serve local emulated Key Vaults over HTTPS for rehearsals and tests (runs until Ctrl-C).

    \b
    Examples:
      kvmigrate emulator --vault src=8443 --vault dst=8444 --env-file emulator.env
      kvmigrate emulator --config vaults.toml
    """
    # Imported here: the product never imports the emulator; only this command does.
    from kvmigrate.emulator.config import ConfigError, EmulatorConfig
    from kvmigrate.emulator.runner import serve

    if bool(config_file) == bool(vaults):
        raise click.UsageError("pass either --config FILE or one or more --vault NAME=PORT")
    try:
        config = EmulatorConfig.load(config_file) if config_file else EmulatorConfig.from_pairs(list(vaults))
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        asyncio.run(serve(config, env_file=env_file, state_dir=state_dir))
    except OSError as exc:
        raise click.ClickException(f"cannot start the emulator: {exc.strerror or exc}") from exc
