"""The vault's certificate contacts: ``PUT``/``GET``/``DELETE /certificates/contacts`` (facts §17).

"All the certificates in the key vault share the contact information": the contacts belong to the vault, not to any
certificate, so no backup blob carries them. Shapes as recorded (recordings-2025 ``test_crud_contacts`` and
``test_example_contacts``, recordings-js ``…contacts``): the answer is ``{"id": ".../certificates/contacts",
"contacts": [{"email", "name", "phone"}]}``; DELETE answers 200 with the contacts it removed; a GET or DELETE with none
set is 404 ``ContactsNotFound`` "Contacts not found". Every operation needs the ``managecontacts`` permission, the only
contacts permission an access policy has.

Guesses (nothing recorded): each contact needs an ``email`` (the service mails them), ``name`` and ``phone`` are
optional strings, and an empty list is refused rather than taken for a delete.
"""

from __future__ import annotations

from typing import Any

from kvmigrate.emulator.app import Call, JsonBody, Reply, Route, Vault, route
from kvmigrate.emulator.errors import KeyVaultError, bad_parameter

FIELDS = ("email", "name", "phone")
MAX_CONTACTS = 20  # guess: the service documents no limit; a bound keeps a runaway client visible


def _not_found() -> KeyVaultError:
    return KeyVaultError(404, "ContactsNotFound", "Contacts not found")


def _contact(raw: Any, position: int) -> JsonBody:
    if not isinstance(raw, dict):
        raise bad_parameter(f"contacts[{position}] must be an object with email, name and phone.")
    contact: JsonBody = {}
    for member in FIELDS:
        value = raw.get(member)
        if value is not None and not isinstance(value, str):
            raise bad_parameter(f"contacts[{position}].{member} must be a string.")
        if value is not None:
            contact[member] = value
    if not contact.get("email"):
        raise bad_parameter(f"contacts[{position}].email is required.")
    return contact


def _body(vault: Vault, contacts: list[JsonBody]) -> JsonBody:
    return {"id": vault.object_id("certificates", "contacts"), "contacts": [dict(c) for c in contacts]}


async def set_contacts(vault: Vault, call: Call) -> Reply:
    """Replace the vault's contacts with the given list."""
    raw = call.json().get("contacts")
    if not isinstance(raw, list) or not raw:
        raise bad_parameter("contacts is required and must be a non-empty list of contacts.")
    if len(raw) > MAX_CONTACTS:
        raise bad_parameter(f"Too many contacts: {len(raw)}. At most {MAX_CONTACTS} are allowed.")
    vault.contacts = [_contact(entry, position) for position, entry in enumerate(raw)]
    return Reply(_body(vault, vault.contacts))


async def get_contacts(vault: Vault, call: Call) -> Reply:
    if vault.contacts is None:
        raise _not_found()
    return Reply(_body(vault, vault.contacts))


async def delete_contacts(vault: Vault, call: Call) -> Reply:
    """Remove the contacts and answer with what was removed (recorded)."""
    if vault.contacts is None:
        raise _not_found()
    removed, vault.contacts = vault.contacts, None
    return Reply(_body(vault, removed))


def routes() -> list[Route]:
    path, permission = "/certificates/contacts", "managecontacts"
    return [
        route("PUT", path, "certificates.set_contacts", permission, set_contacts),
        route("GET", path, "certificates.get_contacts", permission, get_contacts),
        route("DELETE", path, "certificates.delete_contacts", permission, delete_contacts),
    ]
