"""Every error kvmigrate reports, and the one place where Azure's exceptions become ours.

KvmigrateError                     base; ``exit_code`` is what the CLI exits with, ``str()`` the one line it prints
├── UsageError                     bad input the user can fix (exit 2); nothing was written
│   ├── VaultAddressError          a SOURCE/TARGET that is not a vault name or an https URL
│   ├── SameVaultError             source and target are one vault
│   ├── UnsafePathError            a path kvmigrate would write is a link, or not a regular file or folder
│   ├── JournalError               the state file is corrupt, of another run, or unwritable
│   ├── RunLockedError             another run holds this journal, or writes to this vault pair
│   └── ArchiveError               the archive has no manifest, is damaged, unsafe, or of a newer format
├── LocalWriteError                a file of kvmigrate's own cannot be written: disk full, quota, too large, I/O (fatal)
├── ArchiveIncompleteError         restore from an archive that is not whole, without --allow-incomplete (exit 1)
├── ArchiveBlobError               one archived blob is missing or fails its size or SHA-256 (that object fails)
├── ObjectBlockedError             an object its route cannot move (a key by value, a disabled current version...)
└── VaultError                     a vault refused or failed an operation
    ├── VaultUnreachableError      DNS, connection refused, timeouts: nothing answered (fatal)
    ├── TlsVerificationError       the vault's certificate did not verify (fatal)
    ├── AuthenticationError        401, no credential, or a challenge for another resource (fatal)
    ├── PermissionDeniedError      403 from access policy or RBAC: fails the object; the engine stops the run when
    │                              the first objects of a kind are all refused (a denial of the whole vault)
    ├── PurgeProtectedError        a purge refused because the vault has purge protection (that object)
    ├── ObjectConflictError        409: the name is taken (active, soft-deleted, or just purged)
    ├── ObjectNotFoundError        404: the object is not there
    ├── BlobRefusedError           restore refused: a corrupt blob
    │   └── WrongSecurityDomainError  the target is in another subscription or geography (fatal in backup mode)
    ├── TooManyVersionsError       backup refused: more than 500 versions
    ├── ObjectFailedError          anything else about one object (5xx or 429 after retries...)
    ├── ThrottledError             a version-creating write answered 429 (not written; paced and retried)
    └── WriteUncertainError        a version-creating write without an answer (settled by reading the target)

Messages name what went wrong and what to do, never a secret value, blob, token or response body beyond Key Vault's
own error message (which carries no secret material).
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from pathlib import Path
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


class UnsafePathError(UsageError):
    """A file or folder kvmigrate would create or write is a symlink, or not a regular file or folder."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


class JournalError(UsageError):
    """The journal cannot be used: another run's file, another schema, corrupt, unwritable, or misused."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


class RunLockedError(UsageError):
    """Another kvmigrate run holds this journal, or writes from the same source into the same target."""


class ArchiveError(UsageError):
    """The archive cannot be used as a whole: no manifest, damaged or unsafe entries, newer format, not writable."""


class LocalWriteError(KvmigrateError):
    """A file of kvmigrate's own (blob, manifest, archive log, output, lock) cannot be written: disk full, quota, I/O.

    Fatal (exit 1): every later write to that folder would fail the same way. The message names the file and the
    system's reason (ENOSPC, EDQUOT, EFBIG, EIO), never what was being written.
    """

    is_fatal = True

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


class ArchiveIncompleteError(KvmigrateError):
    """Restore from an archive whose backup did not finish or that lacks blobs, without ``--allow-incomplete``."""

    is_fatal = True


class ArchiveBlobError(KvmigrateError):
    """One object's blob is missing or does not match its size and SHA-256: that object fails, the others go on."""


class ObjectBlockedError(KvmigrateError):
    """The route cannot move this object (a key by value, an unexportable certificate, a disabled current version).

    ``action`` is the plan action it ends in (``blocked-not-exportable``, ``blocked-disabled``).
    """

    def __init__(self, message: str, *, action: str) -> None:
        super().__init__(message)
        self.action = action


class VaultError(KvmigrateError):
    """A vault refused or failed an operation; ``status`` and ``code`` are the vault's own, when it answered."""

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
    """A 403 of access policy or RBAC; ``permission`` and ``operation`` say what was refused."""

    def __init__(self, message: str, *, vault: str, operation: str, status: int | None = None, code: str | None = None):
        super().__init__(message, vault=vault, status=status, code=code)
        self.operation = operation


class PurgeProtectedError(VaultError):
    pass


class ObjectConflictError(VaultError):
    pass


class ObjectNotFoundError(VaultError):
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


class ThrottledError(VaultError):
    """A 429: the vault did not act on the request (value writes pace and retry these themselves)."""


class WriteUncertainError(VaultError):
    """A write whose answer never came (dropped connection, timeout, 5xx): the vault may or may not have acted."""


_PERMISSION = re.compile(r"does not have (\w+) (\w+) permission")
_RBAC_ACTION = re.compile(r"Action: '([^']+)'")
_CHALLENGE = "challenge resource"


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        inner = getattr(current, "inner_exception", None)
        current = inner if isinstance(inner, BaseException) else (current.__cause__ or current.__context__)
    return chain


def error_codes(exc: BaseException) -> set[str]:
    """Key Vault's ``error.code`` and every nested ``innererror.code`` of a response error (empty for others)."""
    codes: set[str] = set()
    error = getattr(exc, "error", None)
    if error is not None and getattr(error, "code", None):
        codes.add(str(error.code))
    inner: Any = getattr(error, "innererror", None) if error is not None else None
    while isinstance(inner, dict) and len(codes) < 10:
        if inner.get("code"):
            codes.add(str(inner["code"]))
        inner = inner.get("innererror")
    return codes


def _message(exc: HttpResponseError) -> str:
    error = exc.error
    return first_line(error.message if error is not None and error.message else exc.message)


def is_disabled_secret(exc: BaseException) -> bool:
    """The one test for "Key Vault refuses to show this version because it is disabled" (403 SecretDisabled).

    Why one place: value mode, verify and the value route all meet it, and it must never be taken for a missing
    permission (which would stop the run) nor a missing permission for it (which would hide a denial).
    """
    if not isinstance(exc, HttpResponseError) or exc.status_code != 403:
        return False
    if "SecretDisabled" in error_codes(exc):
        return True
    return "disabled" in _message(exc).lower() and "permission" not in _message(exc).lower()


def is_purge_protected(exc: BaseException) -> bool:
    """A purge refused because the vault has purge protection (a condition of the vault, not a permission)."""
    if not isinstance(exc, HttpResponseError) or exc.status_code != 403:
        return False
    return "PurgeProtectionEnabled" in error_codes(exc) or "purge protection" in _message(exc).lower()


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, HttpResponseError) and exc.status_code == 404


def from_azure(exc: BaseException, *, vault: str, operation: str, subject: str) -> KvmigrateError:
    """Translate an exception of an SDK call (``operation`` on ``subject`` in ``vault``) into one clear error.

    ``operation`` is a permission-style verb (``backup``, ``restore``, ``list``...), ``subject`` names what was
    touched (``secret db-password`` or ``secrets``). Besides azure-core's errors it maps the ``ValueError`` the SDK's
    challenge policy raises when a vault's 401 names a resource that does not match its address.
    """
    if isinstance(exc, KvmigrateError):
        return exc
    causes = _causes(exc)
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return TlsVerificationError(
            f"TLS verification failed for vault {vault}: its certificate is not trusted; if it is signed by a private "
            "CA pass --ca-bundle (or KVMIGRATE_CA_BUNDLE) with that CA's PEM file",
            vault=vault,
        )
    if isinstance(exc, ValueError) and _CHALLENGE in str(exc):
        return AuthenticationError(
            f"vault {vault} answered with an authentication challenge for a resource that does not match its "
            "address (Key Vault's own addresses end in .vault.azure.net without a port); check the vault URL",
            vault=vault,
        )
    if isinstance(exc, ClientAuthenticationError) and exc.status_code is None:
        return AuthenticationError(
            f"cannot get a token for vault {vault}: {first_line(exc.message)}; sign in (az login) or configure a "
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
            f"vault {vault} is unreachable ({operation} of {subject}): {first_line(str(exc))}; check network "
            "access, firewall and private endpoints",
            vault=vault,
        )
    if isinstance(exc, HttpResponseError):
        return _from_response(exc, vault=vault, operation=operation, subject=subject)
    if isinstance(exc, AzureError):
        return ObjectFailedError(f"vault {vault}: {operation} of {subject} failed: {first_line(str(exc))}", vault=vault)
    return ObjectFailedError(
        f"vault {vault}: {operation} of {subject} failed: {type(exc).__name__}: {first_line(str(exc))}", vault=vault
    )


def _from_response(exc: HttpResponseError, *, vault: str, operation: str, subject: str) -> KvmigrateError:
    status = exc.status_code
    codes = error_codes(exc)
    code = exc.error.code if exc.error is not None else None
    message = _message(exc)
    context: dict[str, Any] = {"vault": vault, "status": status, "code": code}
    if status == 401:
        return AuthenticationError(
            f"vault {vault} refused the token (401) for {operation} of {subject}: {message}; check the tenant "
            "(--tenant-id) and that the identity may use this vault",
            **context,
        )
    if is_purge_protected(exc):
        return PurgeProtectedError(
            f"vault {vault} has purge protection: the soft-deleted {subject} cannot be purged before its retention "
            "ends; use --recover-deleted, or --exclude it",
            **context,
        )
    if status == 403 and not is_disabled_secret(exc) and "associated with a certificate" not in message:
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
            operation=operation,
            **context,
        )
    if status == 404:
        return ObjectNotFoundError(f"vault {vault}: {subject} was not found (404)", **context)
    if status == 409:
        return ObjectConflictError(f"vault {vault}: {subject} conflicts (409): {message}", **context)
    if status == 400 and "decrypt backup blob" in message.lower():
        return WrongSecurityDomainError(
            f"vault {vault} refused the backup of {subject}: backups restore only into a vault of the same Azure "
            "subscription and geography; use a target in the same subscription and geography (or --mode value)",
            **context,
        )
    if status == 400 and any(c.lower().startswith("malformed") for c in codes):
        return BlobRefusedError(f"vault {vault} refused the backup of {subject} as corrupt: {message}", **context)
    if status == 400 and "500 versions" in message:
        return TooManyVersionsError(
            f"{subject} has more than 500 versions, which Key Vault cannot back up; --mode value copies it",
            **context,
        )
    return ObjectFailedError(f"vault {vault}: {operation} of {subject} failed ({status} {code}): {message}", **context)


def first_line(text: str | None) -> str:
    """The first non-empty line of ``text`` ("no details" when there is none)."""
    stripped = (text or "").strip()
    return stripped.splitlines()[0] if stripped else "no details"


def first_expected(group: BaseExceptionGroup[Any]) -> BaseException:
    """The error to surface from a failed task group: a fatal one of ours first, then ours, then cancellation."""
    leaves: list[BaseException] = []

    def walk(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                walk(inner)
        else:
            leaves.append(error)

    walk(group)
    ours = [leaf for leaf in leaves if isinstance(leaf, KvmigrateError)]
    for leaf in ours:
        if leaf.is_fatal:
            return leaf
    if ours:
        return ours[0]
    # A bug's exception says more than the cancellation it caused.
    return next((leaf for leaf in leaves if not isinstance(leaf, asyncio.CancelledError)), leaves[0])
