"""``kvmigrate emulator``: serve local emulated Key Vaults (the only command that imports the emulator)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click


@click.command()
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
    help="Where the CA, its key and the token-signing key are kept (0700; default: a temporary directory). "
    "Emulators that share it trust each other's tokens and share one CA.",
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
