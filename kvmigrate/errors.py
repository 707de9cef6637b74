"""Every error kvmigrate reports, and the one place where Azure's exceptions become ours.

KvmigrateError                 base; ``exit_code`` is what the CLI exits with, ``str()`` is the one line it prints
├── UsageError                 bad input the user can fix (exit 2): an address, an option, a file
│   └── VaultAddressError      a SOURCE/TARGET that is not a vault name or an https URL
└── VaultError                 a vault answered in a way the run cannot get past (exit 1)
"""

from __future__ import annotations


class KvmigrateError(Exception):
    """Base of every expected failure; the CLI prints ``str(err)`` on one line, without a traceback."""

    exit_code = 1


class UsageError(KvmigrateError):
    """Bad input the user can fix: the message names it and says what to do."""

    exit_code = 2


class VaultAddressError(UsageError):
    """A vault reference that is neither a vault name nor an https URL."""

    def __init__(self, message: str, *, address: str) -> None:
        super().__init__(message)
        self.address = address


class VaultError(KvmigrateError):
    """A vault refused or failed an operation in a way that stops the run."""

    def __init__(self, message: str, *, vault: str) -> None:
        super().__init__(message)
        self.vault = vault
