"""Every command-line flag, defined once; commands pick the groups they take.

Each option's help says which layer handles it (route, engine, rate policy, journal), as ``options.py`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from kvmigrate.models import ObjectType
from kvmigrate.options import DEFAULT_CONCURRENCY, DEFAULT_CREATE_RPS, DEFAULT_RPS, ConnectionOptions

F = TypeVar("F", bound=Callable[..., Any])


def _apply(command: F, decorators: list[Callable[[Any], Any]]) -> F:
    """Apply option decorators in reading order (the first listed is shown first in --help)."""
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def output(*formats: str) -> Callable[[F], F]:
    """``-o/--output`` with the formats this command has (asking for another is a usage error)."""
    helps = {"table": "a table for people", "json": "one JSON document on stdout", "markdown": "Markdown (a ticket)"}

    def decorate(command: F) -> F:
        return click.option(
            "-o",
            "--output",
            type=click.Choice(list(formats)),
            default="table",
            show_default=True,
            help="Output format: " + ", ".join(f"{name} = {helps[name]}" for name in formats) + ".",
        )(command)

    return decorate


def connection(command: F) -> F:
    """Options every vault command accepts after its name, as in az CLI."""
    return _apply(
        command,
        [
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
                help="Also write the detailed log here (created 0600, never through a symbolic link).",
            ),
        ],
    )


def connection_options(values: dict[str, Any]) -> ConnectionOptions:
    """Take ``connection``'s vault flags out of a command's values (``-v`` and ``--log-file`` are its own)."""
    return ConnectionOptions(ca_bundle=values.pop("ca_bundle"), tenant_id=values.pop("tenant_id"))


def selection(command: F) -> F:
    """--types/--include/--exclude: which source objects a command looks at."""
    return _apply(
        command,
        [
            click.option(
                "--types",
                default="secrets,keys,certificates",
                show_default=True,
                help="Comma-separated subset of secrets,keys,certificates.",
            ),
            click.option(
                "--include",
                multiple=True,
                metavar="GLOB",
                help="Only names matching GLOB (repeatable, case-insensitive).",
            ),
            click.option("--exclude", multiple=True, metavar="GLOB", help="Skip names matching GLOB (repeatable)."),
        ],
    )


def pace(concurrency: int = DEFAULT_CONCURRENCY) -> Callable[[F], F]:
    """--concurrency (engine) and --rps (rate policy): how hard a command pushes each vault."""

    def decorate(command: F) -> F:
        return _apply(
            command,
            [
                click.option(
                    "--concurrency",
                    type=click.IntRange(1, 512),
                    default=concurrency,
                    show_default=True,
                    help="Objects in flight at once.",
                ),
                click.option(
                    "--rps",
                    type=click.FloatRange(min=0.1, max=10_000),
                    default=DEFAULT_RPS,
                    show_default=True,
                    help="HTTP attempts per second per vault, retries and auth challenges included. Key Vault "
                    "allows 4,000 per 10 s; on a 429 the rate drops to what the vault admitted over its last 10 s "
                    "window, and climbs back from one window later.",
                ),
            ],
        )

    return decorate


def conflicts(command: F) -> F:
    """How a run treats what the target already holds (copy, restore, plan)."""
    return _apply(
        command,
        [
            click.option(
                "--on-conflict",
                type=click.Choice(["skip", "fail"]),
                default="skip",
                show_default=True,
                help="An object of the same name in the target with other versions: skip it, or count it as "
                "failed. The same versions count as already copied either way.",
            ),
            click.option(
                "--recover-deleted",
                is_flag=True,
                help="A soft-deleted object of the same name in the target: recover it (then compare).",
            ),
            click.option(
                "--purge-deleted",
                is_flag=True,
                help="A soft-deleted object of the same name in the target: PURGE it (destructive), then copy.",
            ),
        ],
    )


COPY_MODES = (
    "backup: Key Vault's backup blobs (same subscription and geography; every version keeps its id). value: recreate "
    "secrets and certificates from their values, any subscription, geography or tenant (keys cannot move). auto: "
    "backup, switching to value when the target refuses blobs."
)


def mode(command: F, *, help: str = COPY_MODES, latest_only: bool = True) -> F:
    """--mode (the route), --latest-only and --create-rps (the value route's create pacing)."""
    decorators = [
        click.option(
            "--mode", type=click.Choice(["backup", "value", "auto"]), default="backup", show_default=True, help=help
        ),
        click.option(
            "--create-rps",
            type=click.FloatRange(min=0.1, max=10_000),
            default=DEFAULT_CREATE_RPS,
            show_default=True,
            help="Value mode: creates and imports per second at the target. Key Vault allows 300 per 10 s per "
            "vault, shared with every other client of the vault.",
        ),
    ]
    if latest_only:
        decorators.insert(
            1, click.option("--latest-only", is_flag=True, help="Value mode: move only each object's current version.")
        )
    return _apply(command, decorators)


def verify_mode(command: F) -> F:
    """verify's --mode (what a copy was made by) and --latest-only."""
    return _apply(
        command,
        [
            click.option(
                "--mode",
                type=click.Choice(["backup", "value"]),
                default="backup",
                show_default=True,
                help="backup: compare by version ids; value: compare values and attributes version by version in "
                "creation order (after copy --mode value, where version ids differ).",
            ),
            click.option("--latest-only", is_flag=True, help="Value mode: compare only each object's current version."),
        ],
    )


def sync_mode(command: F) -> F:
    return mode(
        command,
        help="backup: new objects by backup blob (same subscription and geography; version ids kept), attribute drift "
        "fixed in place; new versions of existing objects cannot follow. value: everything by value (any vault; new "
        "versions appended; keys cannot move). auto: new objects by blob, new versions appended by value.",
        latest_only=False,
    )


def journal(name: str = "<source>__<target>.db") -> Callable[[F], F]:
    """--state and --restart: where a run journals (``name`` in the state folder), and starting over."""
    return lambda command: _apply(
        command,
        [
            click.option(
                "--state",
                type=click.Path(dir_okay=False, path_type=Path),
                help=f"Journal file (SQLite) [default: <state folder>/journals/{name}, where the state folder is "
                "$KVMIGRATE_STATE_DIR, $XDG_STATE_HOME/kvmigrate or ~/.local/state/kvmigrate].",
            ),
            click.option("--restart", is_flag=True, help="Discard the journal and start over."),
        ],
    )


def dry_run(plan_arguments: str | None) -> Callable[[F], F]:
    """--dry-run; ``plan_arguments``: the ``kvmigrate plan`` that prints the same plan (sync has none)."""
    said = f"(as `kvmigrate plan {plan_arguments}`)" if plan_arguments else "of what this sync would change"
    return click.option("--dry-run", is_flag=True, help=f"Print the plan {said}; write nothing.")


def allow_incomplete(command: F) -> F:
    return click.option(
        "--allow-incomplete",
        is_flag=True,
        help="Restore from an archive whose backup did not finish or that lacks blobs (missing ones are reported "
        "failed); without it such a restore exits 1 before writing anything (a plan only warns).",
    )(command)


def parse_types(value: str) -> tuple[ObjectType, ...]:
    try:
        return tuple(dict.fromkeys(ObjectType.parse(part) for part in value.split(",") if part.strip()))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--types") from exc


def issuer_credentials(command: F) -> F:
    """Issuer passwords, which Key Vault never reveals (the settings stage)."""
    return _apply(
        command,
        [
            click.option(
                "--issuer-credentials",
                type=click.Path(dir_okay=False, path_type=Path),
                help="JSON file mapping each certificate issuer name to its password (Key Vault never reveals "
                "them). Keep it 0600; its content is never logged, journaled or printed.",
            ),
            click.option(
                "--allow-missing-issuer-credentials",
                is_flag=True,
                help="Exit 0 even when issuers were created without their password (reported needs-credentials; "
                "a plan only reports them).",
            ),
        ],
    )


def vault_settings(command: F) -> F:
    """How a run treats the parts of a vault no backup blob carries (copy, restore, plan)."""
    return _apply(
        issuer_credentials(command),
        [
            click.option(
                "--replace-settings",
                is_flag=True,
                help="Replace certificate contacts, issuers and key rotation policies that the target holds "
                "otherwise (default: keep them and report skip-existing).",
            ),
        ],
    )
