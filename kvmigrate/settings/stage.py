"""Copy what no backup blob carries: the vault's certificate contacts and issuers, and each key's rotation policy.

Contacts and issuers are copied once per run, before the objects (certificate policies name issuers); rotation
policies after the objects, for the keys the target then holds (never before a key's versions are there, so a
``timeAfterCreate`` trigger cannot fire mid-migration). Each setting is decided like an object:

* absent in the target (a key with the service's default policy counts as absent) → ``copy``;
* the same in the target → ``already-copied``; finished by an earlier run and unchanged → ``previously-done``;
* something else in the target → ``skip-existing`` (or ``conflict-existing`` with ``--on-conflict fail``), or
  ``replace`` with ``--replace-settings``. Contacts are never merged: the target keeps its list or, with
  ``--replace-settings``, gets the source's.

An issuer's password cannot be read from Key Vault: it comes from ``--issuer-credentials``; an issuer without one
is created with its provider, account and organisation and reported ``needs-credentials``. A missing permission
for a setting fails that setting (the run exits 1) and never stops the objects. Writes pass the same dry-run gate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kvmigrate.errors import KvmigrateError
from kvmigrate.fanout import fan_out
from kvmigrate.journal import Journal
from kvmigrate.models import ObjectType
from kvmigrate.options import CopyOptions
from kvmigrate.settings.model import (
    Contacts,
    Issuer,
    IssuerPasswords,
    RotationPolicy,
    SettingKind,
    setting_fingerprint,
)

log = logging.getLogger(__name__)

#: What each settings action means, in the words plan and the summary use.
SETTING_REASONS = {
    "copy": "not in the target",
    "already-copied": "the target holds the same",
    "previously-done": "finished by an earlier run and unchanged in the source since",
    "skip-existing": "the target holds another; --replace-settings replaces it",
    "conflict-existing": "the target holds another (--on-conflict fail); --replace-settings replaces it",
    "replace": "the target holds another: replaced with the source's (--replace-settings)",
    "needs-credentials": "created without its password, which Key Vault never reveals: pass it with "
    "--issuer-credentials FILE and rerun, or set it in the target",
    "failed": "could not be read or written",
}
MOVES = ("copy", "replace", "needs-credentials")


class SettingsEnd(Protocol):
    """Where settings are read from and written to: a vault (``vault/settings.py``) or an archive's manifest."""

    label: str
    keeps_passwords: bool  # a vault keeps an issuer's password; an archive never holds one

    async def rotation_policy(self, key: str) -> RotationPolicy | None: ...

    async def set_rotation_policy(self, key: str, policy: RotationPolicy) -> None: ...

    async def contacts(self) -> Contacts | None: ...

    async def set_contacts(self, contacts: Contacts) -> None: ...

    def issuer_names(self) -> AsyncIterator[str]: ...

    async def issuer(self, name: str) -> Issuer | None: ...

    async def set_issuer(self, issuer: Issuer, *, password: str | None) -> None: ...

    async def has_pending_request(self, certificate: str) -> bool: ...


@dataclass
class SettingResult:
    """One setting's line in the plan and the summary."""

    kind: SettingKind
    name: str
    action: str
    reason: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.action in ("failed", "conflict-existing")

    def as_dict(self) -> dict[str, Any]:
        body = {"kind": self.kind.value, "name": self.name, "action": self.action, "reason": self.reason}
        if self.detail:
            body["detail"] = self.detail
        return body


@dataclass
class SettingsStage:
    """The settings part of one run (see the module docstring)."""

    source: SettingsEnd
    target: SettingsEnd
    options: CopyOptions
    journal: Journal
    passwords: IssuerPasswords = field(default_factory=IssuerPasswords)
    results: list[SettingResult] = field(default_factory=list)

    async def before_objects(self) -> None:
        if ObjectType.CERTIFICATE not in self.options.types:
            return
        await self._guard(SettingKind.CONTACTS, "vault", self._contacts)
        try:
            names = [name async for name in self.source.issuer_names()]
        except KvmigrateError as error:
            if error.is_fatal:
                raise
            self._record(SettingKind.ISSUER, "*", "failed", str(error))
            return
        for name in names:
            await self._guard(SettingKind.ISSUER, name, lambda name=name: self._issuer(name))  # type: ignore[misc]

    async def after_objects(
        self, keys: list[str], certificates: list[str], *, stop: asyncio.Event | None = None
    ) -> list[str]:
        """Rotation policies of ``keys``, the keys this run has in the target (moved, or there already); returns the
        ``certificates`` of those it moved that have a pending request for a new version (not copied: Key Vault
        moves only completed versions).

        One or two requests per key or certificate on every run, so they go ``--concurrency`` at a time through the
        one fan-out (10,000 keys are not 10,000 serial round trips); results are sorted after, so output is the same
        whatever order they finished in.
        """
        concurrency = self.options.concurrency
        first = len(self.results)

        async def rotation(key: str) -> None:
            await self._guard(SettingKind.ROTATION_POLICY, key, lambda: self._rotation(key))

        await fan_out(sorted(keys, key=str.lower), rotation, concurrency=concurrency, stop=stop)
        self.results[first:] = sorted(self.results[first:], key=lambda result: result.name.lower())
        pending: list[str] = []

        async def check(name: str) -> None:
            try:
                if await self.source.has_pending_request(name):
                    pending.append(name)
            except KvmigrateError as error:
                if error.is_fatal:
                    raise
                log.warning("certificate %s: cannot read its pending request: %s", name, error)

        await fan_out(sorted(certificates, key=str.lower), check, concurrency=concurrency, stop=stop)
        return sorted(pending, key=str.lower)

    async def _guard(self, kind: SettingKind, name: str, decide: Callable[[], Awaitable[None]]) -> None:
        """A setting's failure is reported on that setting; only what would stop every request stops the run."""
        try:
            await decide()
        except KvmigrateError as error:
            if error.is_fatal:
                raise
            log.warning("%s %s failed: %s", kind.value, name, error)
            self._record(kind, name, "failed", str(error))

    def _record(self, kind: SettingKind, name: str, action: str, detail: str = "") -> None:
        self.results.append(SettingResult(kind, name, action, SETTING_REASONS[action], detail))

    def _decide(self, kind: SettingKind, name: str, fingerprint: str, same: bool, absent: bool) -> str:
        done = self.journal.setting(kind.value, name)
        if done is not None and done == ("done", fingerprint) and same:
            return "previously-done"
        if absent:
            return "copy"
        if same:
            return "already-copied"
        if self.options.replace_settings:
            return "replace"
        return "conflict-existing" if self.options.on_conflict == "fail" else "skip-existing"

    async def _apply(
        self, kind: SettingKind, name: str, action: str, fingerprint: str, write: Callable[[], Awaitable[None]]
    ) -> None:
        if action in MOVES and not self.options.dry_run:
            await write()
        if action in ("copy", "replace", "already-copied") and not self.options.dry_run:
            self.journal.finish_setting(kind.value, name, "done", fingerprint=fingerprint, outcome=action)
        self._record(kind, name, action)

    async def _contacts(self) -> None:
        mine = await self.source.contacts()
        if mine is None:
            return  # nothing to copy: the source has no contacts
        theirs = await self.target.contacts()
        fingerprint = setting_fingerprint(mine)
        action = self._decide(
            SettingKind.CONTACTS, "vault", fingerprint, theirs is not None and mine.same_as(theirs), theirs is None
        )
        await self._apply(SettingKind.CONTACTS, "vault", action, fingerprint, lambda: self.target.set_contacts(mine))

    async def _issuer(self, name: str) -> None:
        mine = await self.source.issuer(name)
        if mine is None:
            return  # deleted meanwhile
        theirs = await self.target.issuer(name)
        password = self.passwords.get(name)
        fingerprint = setting_fingerprint(mine)
        same = theirs is not None and mine.same_as(theirs)
        action = self._decide(SettingKind.ISSUER, name, fingerprint, same, theirs is None)
        if action == "already-copied" and password is not None:
            action = "copy"  # the same issuer, and now its password: set it (the target's cannot be read)
        if action in ("copy", "replace") and password is None and self.target.keeps_passwords:
            action = "needs-credentials"
        await self._apply(
            SettingKind.ISSUER, name, action, fingerprint, lambda: self.target.set_issuer(mine, password=password)
        )

    async def _rotation(self, key: str) -> None:
        mine = await self.source.rotation_policy(key)
        if mine is None or mine.is_default:
            return  # the key has the service's default: nothing to carry
        theirs = await self.target.rotation_policy(key)
        fingerprint = setting_fingerprint(mine)
        absent = theirs is None or theirs.is_default
        action = self._decide(
            SettingKind.ROTATION_POLICY, key, fingerprint, theirs is not None and mine.same_as(theirs), absent
        )
        await self._apply(
            SettingKind.ROTATION_POLICY, key, action, fingerprint, lambda: self.target.set_rotation_policy(key, mine)
        )

    # -- what the summary says --------------------------------------------------------------------------------------
    @property
    def needs_credentials(self) -> list[str]:
        return [r.name for r in self.results if r.action == "needs-credentials"]

    @property
    def failures(self) -> list[SettingResult]:
        return [r for r in self.results if r.failed]
