"""A vault's settings through the SDK: key rotation policies, certificate contacts and issuers.

Errors come out translated (a 403 names the permission: ``getrotationpolicy``, ``managecontacts``, ``setissuers``...).
An issuer's password is written when the user supplies one and never read: Key Vault never returns it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from azure.core.exceptions import AzureError
from azure.keyvault.certificates import AdministratorContact, CertificateContact
from azure.keyvault.keys import KeyRotationLifetimeAction, KeyRotationPolicy

from kvmigrate.errors import from_azure, is_not_found
from kvmigrate.settings.model import Contact, Contacts, Issuer, RotationPolicy
from kvmigrate.vault.clients import VaultClients

T = TypeVar("T")


class VaultSettings:
    """The settings end of one vault."""

    keeps_passwords = True

    def __init__(self, clients: VaultClients, *, label: str) -> None:
        self.clients = clients
        self.label = label

    async def _call(self, operation: str, subject: str, call: Awaitable[T]) -> T:
        try:
            return await call
        except (AzureError, ValueError) as exc:
            raise from_azure(exc, vault=self.label, operation=operation, subject=subject) from exc

    async def _found(self, operation: str, subject: str, call: Awaitable[T]) -> T | None:
        """``_call`` for a read where Key Vault's 404 means "there is none here"."""
        try:
            return await call
        except AzureError as exc:
            if is_not_found(exc):
                return None
            raise from_azure(exc, vault=self.label, operation=operation, subject=subject) from exc

    # -- rotation policies ------------------------------------------------------------------------------------------
    async def rotation_policy(self, key: str) -> RotationPolicy | None:
        """A key's rotation policy (``is_default`` when never set); None when the key is not there."""
        policy = await self._found("getrotationpolicy", f"key {key}", self.clients.keys.get_key_rotation_policy(key))
        if policy is None:
            return None
        actions = tuple(
            sorted(
                (str(getattr(a.action, "value", a.action)).capitalize(), a.time_after_create, a.time_before_expiry)
                for a in policy.lifetime_actions or []
            )
        )
        return RotationPolicy(actions, policy.expires_in, is_default=policy.id is None)

    async def set_rotation_policy(self, key: str, policy: RotationPolicy) -> None:
        actions = [
            KeyRotationLifetimeAction(action, time_after_create=after, time_before_expiry=before)
            for action, after, before in policy.actions
        ]
        await self._call(
            "setrotationpolicy",
            f"key {key}",
            self.clients.keys.update_key_rotation_policy(
                key, KeyRotationPolicy(), lifetime_actions=actions, expires_in=policy.expires_in
            ),
        )

    # -- contacts ---------------------------------------------------------------------------------------------------
    async def contacts(self) -> Contacts | None:
        """The vault's certificate contacts; None when it has none (Key Vault answers 404 ContactsNotFound)."""
        found = await self._found("managecontacts", "certificate contacts", self.clients.certificates.get_contacts())
        if found is None:
            return None
        return Contacts(tuple(Contact(c.email, c.name, c.phone) for c in found))

    async def set_contacts(self, contacts: Contacts) -> None:
        await self._call(
            "managecontacts",
            "certificate contacts",
            self.clients.certificates.set_contacts(
                [CertificateContact(email=c.email, name=c.name, phone=c.phone) for c in contacts.contacts]
            ),
        )

    # -- issuers ----------------------------------------------------------------------------------------------------
    async def issuer_names(self) -> AsyncIterator[str]:
        try:
            async for properties in self.clients.certificates.list_properties_of_issuers():
                if properties.name:
                    yield properties.name
        except (AzureError, ValueError) as exc:
            raise from_azure(exc, vault=self.label, operation="listissuers", subject="certificate issuers") from exc

    async def issuer(self, name: str) -> Issuer | None:
        found = await self._found("getissuers", f"issuer {name}", self.clients.certificates.get_issuer(name))
        if found is None:
            return None
        admins = tuple((a.first_name, a.last_name, a.email, a.phone) for a in found.admin_contacts or [])
        return Issuer(name, found.provider or "", found.account_id, found.organization_id, admins, found.enabled)

    async def set_issuer(self, issuer: Issuer, *, password: str | None) -> None:
        """Create or replace ``issuer``; without ``password`` the target issuer has no credentials' password."""
        admins = [
            AdministratorContact(first_name=first, last_name=last, email=email, phone=phone)
            for first, last, email, phone in issuer.admins
        ]
        options: dict[str, Any] = {
            "enabled": issuer.enabled,
            "account_id": issuer.account_id,
            "organization_id": issuer.organization_id,
            "admin_contacts": admins or None,
        }
        if password is not None:
            options["password"] = password
        await self._call(
            "setissuers",
            f"issuer {issuer.name}",
            self.clients.certificates.create_issuer(issuer.name, issuer.provider, **options),
        )

    async def has_pending_request(self, certificate: str) -> bool:
        """Whether a certificate has a request in progress for a new version (``GET .../pending``)."""
        operation = await self._found(
            "get", f"certificate {certificate}", self.clients.certificates.get_certificate_operation(certificate)
        )
        return operation is not None and str(getattr(operation, "status", "") or "").lower() == "inprogress"
