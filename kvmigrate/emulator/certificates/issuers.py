"""The vault's certificate issuers: ``PUT``/``PATCH``/``GET``/``DELETE /certificates/issuers/{name}`` and the listing.

Issuers belong to the vault, like contacts, so no certificate backup carries them (facts §17). Shapes as recorded
(recordings-2025 ``test_crud_issuer``/``test_example_issuers``, recordings-js ``…certificate_issuer``):

* an issuer answers ``id``, ``provider``, ``credentials{account_id}``, ``org_details{zip: 0, admin_details[…]}`` (the
  service adds ``zip: 0`` whenever org_details are set; without them there is no ``org_details``) and ``attributes
  {enabled, created, updated}``;
* the password ``credentials.pwd`` is stored (the emulator may compare it) but **never** sent back: not by PUT, PATCH,
  GET, DELETE or the listing, as the service's GET example and every recording show;
* PUT on an existing name replaces it and keeps ``created``; PATCH merges the given members into the stored ones
  (``admin_details`` is replaced as a whole list); DELETE answers the removed issuer;
* a missing issuer is 404 ``CertificateIssuerNotFound`` "Issuer not found";
* the listing pages like every other (``maxresults``, ``$skiptoken``) with items ``{id, provider}``.

Permissions by access-policy name: ``getissuers`` (GET), ``listissuers`` (list), ``setissuers`` (PUT, PATCH),
``deleteissuers`` (DELETE); denying ``manageissuers`` denies all of them, as it is the permission that grants them
all (access-policy docs). Guesses (nothing recorded): ``provider`` is any non-empty string (an offline emulator
reaches no CA anyway), and an unknown member type is 400 BadParameter.
"""

from __future__ import annotations

import copy
from typing import Any

from kvmigrate.emulator.app import Call, JsonBody, Reply, Route, Vault, now, route
from kvmigrate.emulator.errors import KeyVaultError, bad_parameter
from kvmigrate.emulator.paging import PageQuery, page
from kvmigrate.emulator.store import check_name

ADMIN_FIELDS = ("first_name", "last_name", "email", "phone")
MANAGE = ("manageissuers",)


def _not_found() -> KeyVaultError:
    return KeyVaultError(404, "CertificateIssuerNotFound", "Issuer not found")


def find(vault: Vault, name: str) -> JsonBody | None:
    """The stored issuer of ``name`` (case-insensitive), or None; certificate policies look issuers up here."""
    return vault.issuers.get(name.lower())


def _get(vault: Vault, name: str) -> JsonBody:
    check_name(name)
    issuer = find(vault, name)
    if issuer is None:
        raise _not_found()
    return issuer


def _string(raw: JsonBody, member: str, what: str) -> str | None:
    value = raw.get(member)
    if value is not None and not isinstance(value, str):
        raise bad_parameter(f"{what}.{member} must be a string.")
    return value


def _object(raw: Any, what: str) -> JsonBody:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad_parameter(f"{what} must be an object.")
    return raw


def _credentials(raw: Any) -> JsonBody:
    given = _object(raw, "credentials")
    found = {member: _string(given, member, "credentials") for member in ("account_id", "pwd")}
    return {member: value for member, value in found.items() if value is not None}


def _org_details(raw: Any) -> JsonBody | None:
    if raw is None:
        return None
    given = _object(raw, "org_details")
    details: JsonBody = {}
    org_id = _string(given, "id", "org_details")
    if org_id is not None:
        details["id"] = org_id
    admins = given.get("admin_details")
    if admins is not None:
        if not isinstance(admins, list):
            raise bad_parameter("org_details.admin_details must be a list.")
        details["admin_details"] = [
            {
                member: value
                for member in ADMIN_FIELDS
                if (value := _string(_object(admin, "org_details.admin_details[]"), member, "admin_details[]"))
                is not None
            }
            for admin in admins
        ]
    return details


def _enabled(raw: JsonBody, default: bool) -> bool:
    value = _object(raw.get("attributes"), "attributes").get("enabled")
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_parameter("attributes.enabled must be a boolean.")
    return value


def _render(vault: Vault, issuer: JsonBody, *, item: bool = False) -> JsonBody:
    """The issuer as the service answers it: never with the password."""
    body: JsonBody = {
        "id": vault.object_id("certificates", f"issuers/{issuer['name']}"),
        "provider": issuer["provider"],
    }
    if item:
        return body
    credentials = {member: value for member, value in issuer["credentials"].items() if member != "pwd"}
    if issuer["credentials"]:
        body["credentials"] = credentials
    if issuer["org_details"] is not None:
        body["org_details"] = {"zip": 0, **copy.deepcopy(issuer["org_details"])}
    body["attributes"] = {"enabled": issuer["enabled"], "created": issuer["created"], "updated": issuer["updated"]}
    return body


async def set_issuer(vault: Vault, call: Call) -> Reply:
    """Create or replace an issuer (PUT); a replaced issuer keeps its ``created``."""
    name, body = call.params["name"], call.json()
    check_name(name)
    provider = _string(body, "provider", "issuer")
    if not provider:
        raise bad_parameter("The issuer provider (provider) is required.")
    previous, stamp = find(vault, name), now()
    issuer: JsonBody = {
        "name": previous["name"] if previous else name,
        "provider": provider,
        "credentials": _credentials(body.get("credentials")),
        "org_details": _org_details(body.get("org_details")),
        "enabled": _enabled(body, True),
        "created": previous["created"] if previous else stamp,
        "updated": stamp,
    }
    vault.issuers[name.lower()] = issuer
    return Reply(_render(vault, issuer))


async def update_issuer(vault: Vault, call: Call) -> Reply:
    """PATCH: the given members replace or extend the stored ones."""
    body = call.json()
    issuer = copy.deepcopy(_get(vault, call.params["name"]))
    provider = _string(body, "provider", "issuer")
    if provider is not None:
        if not provider:
            raise bad_parameter("The issuer provider (provider) must not be empty.")
        issuer["provider"] = provider
    if body.get("credentials") is not None:
        issuer["credentials"] = {**issuer["credentials"], **_credentials(body["credentials"])}
    if body.get("org_details") is not None:
        issuer["org_details"] = {**(issuer["org_details"] or {}), **(_org_details(body["org_details"]) or {})}
    issuer["enabled"] = _enabled(body, issuer["enabled"])
    issuer["updated"] = now()
    vault.issuers[issuer["name"].lower()] = issuer
    return Reply(_render(vault, issuer))


async def get_issuer(vault: Vault, call: Call) -> Reply:
    return Reply(_render(vault, _get(vault, call.params["name"])))


async def delete_issuer(vault: Vault, call: Call) -> Reply:
    """Remove the issuer and answer with it (recorded); certificates whose policy names it keep their policy."""
    issuer = _get(vault, call.params["name"])
    del vault.issuers[issuer["name"].lower()]
    return Reply(_render(vault, issuer))


async def list_issuers(vault: Vault, call: Call) -> Reply:
    query = PageQuery.read(vault, call)
    window: list[JsonBody] = []
    for issuer in vault.issuers.after(query.marker):
        if len(window) >= query.window:
            break
        window.append(issuer)
    return page(
        vault, call, query, window, lambda issuer: issuer["name"].upper(), lambda i: _render(vault, i, item=True)
    )


def routes() -> list[Route]:
    one = "/certificates/issuers/{name}"
    return [
        route("GET", "/certificates/issuers", "certificates.list_issuers", "listissuers", list_issuers, also=MANAGE),
        route("PUT", one, "certificates.set_issuer", "setissuers", set_issuer, also=MANAGE),
        route("PATCH", one, "certificates.update_issuer", "setissuers", update_issuer, also=MANAGE),
        route("GET", one, "certificates.get_issuer", "getissuers", get_issuer, also=MANAGE),
        route("DELETE", one, "certificates.delete_issuer", "deleteissuers", delete_issuer, also=MANAGE),
    ]
