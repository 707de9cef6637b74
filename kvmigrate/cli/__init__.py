"""The ``kvmigrate`` command line: a thin layer that turns flags into options and calls the library.

``flags.py`` defines every flag once, ``runner.py`` how a command runs (logging, signals, one line per failure),
``move.py`` the commands that write (copy, backup, restore), ``sync.py`` the standby's sync, ``look.py`` those that
only read (plan, verify, archive inspect), ``serve.py`` the emulator.
"""

from __future__ import annotations

import click

from kvmigrate import __version__
from kvmigrate.cli.look import archive, plan, verify_command
from kvmigrate.cli.move import backup, copy, restore
from kvmigrate.cli.serve import emulator
from kvmigrate.cli.sync import sync
from kvmigrate.hardening import disable_core_dumps


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="kvmigrate")
def main() -> None:
    """Copy a whole Azure Key Vault - every secret, key and certificate, with every version - into another vault.

    \b
    Typical run:
      kvmigrate plan   contoso-old contoso-new        # what copy would do; writes nothing
      kvmigrate copy   contoso-old contoso-new        # names or https URLs
      kvmigrate verify contoso-old contoso-new        # prove the target holds everything
    Rerun the same command after a failure or Ctrl-C: finished objects are not copied again.
    """
    disable_core_dumps()  # before any command can read a secret


for command in (plan, copy, verify_command, sync, backup, restore, archive, emulator):
    main.add_command(command)
