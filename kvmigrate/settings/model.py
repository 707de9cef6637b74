"""What a vault holds that no backup blob carries, as IO-free values: rotation policies, contacts, issuers.

A key's **rotation policy** is not in its backup (a restored key has the service's default policy); the vault's
certificate **contacts** and **issuers** belong to no object at all. They carry no secret: an issuer's password can
never be read from Key Vault, so ``Issuer`` has no place for one, and the password a user supplies
(``--issuer-credentials``) lives only in ``IssuerPasswords``, which hides it from ``repr``.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from kvmigrate.errors import UnsafePathError, UsageError
from kvmigrate.files import read_regular
from kvmigrate.models import fingerprint


class SettingKind(StrEnum):
    CONTACTS = "contacts"
    ISSUER = "issuer"
    ROTATION_POLICY = "rotation-policy"


@dataclass(frozen=True)
class RotationPolicy:
    """A key's rotation policy: lifetime actions (action, after create, before expiry) and the versions' expiry."""

    actions: tuple[tuple[str, str | None, str | None], ...] = ()
    expires_in: str | None = None
    is_default: bool = False  # the service's answer for a key whose policy was never set

    def as_dict(self) -> dict[str, Any]:
        return {
            "actions": [list(action) for action in self.actions],
            "expires_in": self.expires_in,
            "is_default": self.is_default,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> RotationPolicy:
        if not isinstance(raw, dict) or not isinstance(raw.get("actions", []), list):
            raise ValueError("a rotation policy is not an object with actions")
        actions = []
        for action in raw.get("actions", []):
            if (
                not isinstance(action, list)
                or len(action) != 3
                or not all(a is None or isinstance(a, str) for a in action)
            ):
                raise ValueError("a rotation policy action is not [action, after create, before expiry]")
            actions.append((str(action[0]), action[1], action[2]))
        expires = raw.get("expires_in")
        if expires is not None and not isinstance(expires, str):
            raise ValueError("expires_in is not a duration")
        return cls(tuple(sorted(actions)), expires, bool(raw.get("is_default", False)))

    def same_as(self, other: RotationPolicy) -> bool:
        return self.actions == other.actions and self.expires_in == other.expires_in

    def describe(self) -> str:
        rules = ", ".join(
            f"{action} {'after create ' + after if after else ''}{'before expiry ' + before if before else ''}".strip()
            for action, after, before in self.actions
        )
        return f"{rules or 'no actions'}" + (f"; versions expire after {self.expires_in}" if self.expires_in else "")


@dataclass(frozen=True)
class Contact:
    email: str | None
    name: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Contacts:
    """The vault's certificate contacts (who is mailed before a certificate expires); compared as a set."""

    contacts: tuple[Contact, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"contacts": [[c.email, c.name, c.phone] for c in sorted(self.contacts, key=_contact_key)]}

    @classmethod
    def from_dict(cls, raw: Any) -> Contacts:
        items = raw.get("contacts") if isinstance(raw, dict) else None
        if not isinstance(items, list):
            raise ValueError("contacts is not a list")
        contacts = []
        for item in items:
            if not isinstance(item, list) or len(item) != 3 or not all(v is None or isinstance(v, str) for v in item):
                raise ValueError("a contact is not [email, name, phone]")
            contacts.append(Contact(item[0], item[1], item[2]))
        return cls(tuple(contacts))

    def same_as(self, other: Contacts) -> bool:
        return sorted(self.contacts, key=_contact_key) == sorted(other.contacts, key=_contact_key)


def _contact_key(contact: Contact) -> tuple[str, str, str]:
    return (contact.email or "", contact.name or "", contact.phone or "")


@dataclass(frozen=True)
class Issuer:
    """A certificate issuer (a CA account certificate policies name) without its password, which is never readable."""

    name: str
    provider: str
    account_id: str | None = None
    organization_id: str | None = None
    admins: tuple[tuple[str | None, str | None, str | None, str | None], ...] = ()
    enabled: bool | None = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "provider": self.provider,
            "account_id": self.account_id,
            "organization_id": self.organization_id,
            "admins": [list(admin) for admin in self.admins],
            "enabled": self.enabled,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Issuer:
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("name"), str)
            or not isinstance(raw.get("provider"), str)
        ):
            raise ValueError("an issuer has no name or provider")
        admins = []
        for admin in raw.get("admins", []):
            if (
                not isinstance(admin, list)
                or len(admin) != 4
                or not all(v is None or isinstance(v, str) for v in admin)
            ):
                raise ValueError("an issuer's admin is not [first name, last name, email, phone]")
            admins.append((admin[0], admin[1], admin[2], admin[3]))
        return cls(
            raw["name"],
            raw["provider"],
            _optional_string(raw, "account_id"),
            _optional_string(raw, "organization_id"),
            tuple(admins),
            raw.get("enabled") if isinstance(raw.get("enabled"), bool) else None,
        )

    def same_as(self, other: Issuer) -> bool:
        mine, theirs = self.as_dict(), other.as_dict()
        mine.pop("name"), theirs.pop("name")
        return mine == theirs


def _optional_string(raw: dict[str, Any], member: str) -> str | None:
    value = raw.get(member)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{member} is not a string")
    return value


def setting_fingerprint(value: RotationPolicy | Contacts | Issuer | None) -> str:
    return fingerprint(value=None if value is None else value.as_dict())


@dataclass(repr=False)
class IssuerPasswords:
    """Issuer name → password, from ``--issuer-credentials``: held in memory only, never in a repr, log or file."""

    passwords: dict[str, str] = field(default_factory=dict)
    source: Path | None = None

    def get(self, name: str) -> str | None:
        return self.passwords.get(name.lower())

    def __repr__(self) -> str:
        return f"IssuerPasswords({len(self.passwords)} issuers)"

    @classmethod
    def load(cls, path: Path | None) -> tuple[IssuerPasswords, list[str]]:
        """Read the JSON object ``{"issuer name": "password", ...}``; warnings (a file others can read) come back.

        Errors never quote the file's content: only what is wrong with its shape.
        """
        if path is None:
            return cls(), []
        try:
            raw = read_regular(path, limit=1024 * 1024, what="issuer credentials file")
        except FileNotFoundError:
            raise UsageError(f"issuer credentials file {path} does not exist; pass --issuer-credentials FILE") from None
        except UnsafePathError as exc:
            raise UsageError(str(exc)) from exc
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise UsageError(
                f"issuer credentials file {path} is not JSON; write an object of issuer name → password"
            ) from None
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise UsageError(
                f"issuer credentials file {path} must hold one JSON object mapping each issuer name to its password"
            )
        warnings = []
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(
                f"issuer credentials file {path} is readable by other users (mode {mode:04o}); run chmod 600 on it"
            )
        return cls({name.lower(): password for name, password in data.items()}, path), warnings
