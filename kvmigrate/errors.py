"""Every error kvmigrate reports, and the one place where Azure's exceptions become ours.

KvmigrateError                   base; ``exit_code`` is what the CLI exits with, ``str()`` the one line it prints
├── UsageError                   bad input the user can fix (exit 2): an address, an option, a file
│   ├── VaultAddressError        a SOURCE/TARGET that is not a vault name or an https URL
│   ├── SameVaultError           source and target are one vault
│   ├── JournalError             the state file is corrupt, of another run, or unwritable (journal.py)
│   └── ArchiveError             the archive has no manifest, is damaged, or of a newer format (archive.py)
├── ArchiveBlobError             one archived blob is missing or fails its SHA-256 (archive.py)
└── VaultError                   a vault refused or failed an operation
    ├── VaultUnreachableError    DNS, connection refused, timeouts: nothing answered (fatal)
    ├── TlsVerificationError     the vault's certificate did not verify (fatal)
    ├── AuthenticationError      401 or no credential (fatal)
    ├── PermissionDeniedError    403 from access policy or RBAC (fatal: every object would fail the same way)
    ├── ObjectConflictError      409: the name is taken (active, soft-deleted, or just purged)
    ├── BlobRefusedError         restore refused: a corrupt blob
    │   └── WrongSecurityDomainError  the target is in another subscription or geography (fatal)
    ├── TooManyVersionsError     backup refused: more than 500 versions
    └── ObjectFailedError        anything else about one object (5xx after retries, 429 after retries, 404...)
"""

from __future__ import annotations

import re
import socket
import ssl
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)


class KvmigrateError(Exception):
    """Base of every expected failure; the CLI prints ``str(err)`` on one line, without a traceback.

    ``is_fatal`` errors stop a run (every other object would fail the same way); the others fail one object.
    """

    exit_code = 1
    is_fatal = False


class UsageError(KvmigrateError):
    """Bad input the user can fix: the message names it and says what to do."""

    exit_code = 2
    is_fatal = True


class VaultAddressError(UsageError):
    """A vault reference that is neither a vault name nor an https URL."""

    def __init__(self, message: str, *, address: str) -> None:
        super().__init__(message)
        self.address = address


class SameVaultError(UsageError):
    """Source and target name the same vault."""


class VaultError(KvmigrateError):
    """A vault refused or failed an operation."""

    def __init__(self, message: str, *, vault: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.vault = vault
        self.status = status
        self.code = code


class VaultUnreachableError(VaultError):
    is_fatal = True


class TlsVerificationError(VaultError):
    is_fatal = True


class AuthenticationError(VaultError):
    is_fatal = True


class PermissionDeniedError(VaultError):
    is_fatal = True


class ObjectConflictError(VaultError):
    pass


class BlobRefusedError(VaultError):
    pass


class WrongSecurityDomainError(BlobRefusedError):
    """The target is in another subscription or geography: every blob will be refused the same way."""

    is_fatal = True


class TooManyVersionsError(VaultError):
    pass


class ObjectFailedError(VaultError):
    pass


_PERMISSION = re.compile(r"does not have (\w+) (\w+) permission")
_RBAC_ACTION = re.compile(r"Action: '([^']+)'")


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        inner = getattr(current, "inner_exception", None)
        current = inner if isinstance(inner, BaseException) else (current.__cause__ or current.__context__)
    return chain


def from_azure(exc: AzureError, *, vault: str, operation: str, subject: str) -> VaultError:
    """Translate an azure-core exception from ``operation`` on ``subject`` in ``vault`` into one clear error.

    ``operation`` is a permission-style verb (``backup``, ``restore``, ``list``...), ``subject`` names what was
    touched (``secret db-password`` or ``secrets``). Messages never include response bodies beyond Key Vault's own
    error message, which carries no secret material.
    """
    causes = _causes(exc)
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return TlsVerificationError(
            f"TLS verification failed for vault {vault}: its certificate is not trusted; if it is signed by a private "
            "CA pass --ca-bundle (or KVMIGRATE_CA_BUNDLE) with that CA's PEM file",
            vault=vault,
        )
    if isinstance(exc, ClientAuthenticationError) and exc.status_code is None:
        return AuthenticationError(
            f"cannot get a token for vault {vault}: {_first_line(exc.message)}; sign in (az login) or configure a "
            "managed identity or AZURE_* service-principal variables",
            vault=vault,
        )
    if isinstance(exc, ServiceRequestError | ServiceResponseError) and not isinstance(exc, HttpResponseError):
        if any(isinstance(c, socket.gaierror) for c in causes) or "Name or service not known" in str(exc):
            return VaultUnreachableError(
                f"vault {vault} cannot be resolved (DNS): check the name, or private DNS for a private endpoint",
                vault=vault,
            )
        return VaultUnreachableError(
            f"vault {vault} is unreachable during {operation} of {subject}: {_first_line(str(exc))}; check network "
            "access, firewall and private endpoints",
            vault=vault,
        )
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        code = exc.error.code if exc.error is not None else None
        message = _first_line(exc.error.message if exc.error is not None and exc.error.message else exc.message)
        if status == 401:
            return AuthenticationError(
                f"vault {vault} refused the token (401) for {operation} of {subject}: {message}; check the tenant "
                "(--tenant-id) and that the identity may use this vault",
                vault=vault,
                status=status,
                code=code,
            )
        if (
            status == 403
            and code not in ("SecretDisabled",)
            and "disabled" not in message.lower()
            and "associated with a certificate" not in message
        ):
            permission = _PERMISSION.search(message)
            action = _RBAC_ACTION.search(exc.message or "")
            if permission:
                need = f"the '{permission.group(2)}' permission on {permission.group(1)}"
            elif action:
                need = f"a role granting {action.group(1)}"
            else:
                need = f"the '{operation}' permission"
            return PermissionDeniedError(
                f"vault {vault} denied {operation} of {subject} (403): the identity needs {need} on {vault} "
                "(access policy, or an RBAC role such as Key Vault Administrator); grant it and rerun",
                vault=vault,
                status=status,
                code=code,
            )
        if status == 409:
            return ObjectConflictError(
                f"vault {vault}: {subject} conflicts (409): {message}", vault=vault, status=status, code=code
            )
        if status == 400 and "decrypt backup blob" in message.lower():
            return WrongSecurityDomainError(
                f"vault {vault} refused the backup of {subject}: backups restore only into a vault of the same Azure "
                "subscription and geography; use a target in the same subscription and geography (or value mode)",
                vault=vault,
                status=status,
                code=code,
            )
        if status == 400 and (code or "").lower().startswith("malformed"):
            return BlobRefusedError(
                f"vault {vault} refused the backup of {subject} as corrupt: {message}",
                vault=vault,
                status=status,
                code=code,
            )
        if status == 400 and "500 versions" in message:
            return TooManyVersionsError(
                f"{subject} has more than 500 versions, which Key Vault cannot back up; it cannot be copied by "
                "backup/restore",
                vault=vault,
                status=status,
                code=code,
            )
        return ObjectFailedError(
            f"vault {vault}: {operation} of {subject} failed ({status} {code}): {message}",
            vault=vault,
            status=status,
            code=code,
        )
    return ObjectFailedError(f"vault {vault}: {operation} of {subject} failed: {_first_line(str(exc))}", vault=vault)


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else "no details"


def first_expected(group: BaseExceptionGroup[Any]) -> BaseException:
    """The error to surface from a failed task group: ours first, then cancellation, then anything."""
    leaves: list[BaseException] = []

    def walk(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                walk(inner)
        else:
            leaves.append(error)

    walk(group)
    for leaf in leaves:
        if isinstance(leaf, KvmigrateError):
            return leaf
    return leaves[0]
