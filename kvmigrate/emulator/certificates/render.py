"""How certificates, their policy and their pending operation are written on the wire, route by route."""

from __future__ import annotations

import copy

from kvmigrate.emulator.app import JsonBody, Vault, attributes
from kvmigrate.emulator.certificates.lifecycle import advance
from kvmigrate.emulator.store import Item, Version

IN_PROGRESS = (
    "Pending certificate created. Certificate request is in progress. This may take some time based on "
    "the issuer provider. Please check again later."
)


def policy_body(vault: Vault, item: Item) -> JsonBody:
    return {"id": vault.object_id("certificates", item.name, "policy"), **copy.deepcopy(item.extra["policy"])}


def version_body(vault: Vault, item: Item, version: Version) -> JsonBody:
    """The bundle of one version as GET by version returns it: no ``policy``, no ``pending``."""
    body: JsonBody = {"id": vault.object_id("certificates", item.name, version.id)}
    if not version.data.get("pending"):
        body.update(
            {
                "kid": vault.object_id("keys", item.name, version.id),
                "sid": vault.object_id("secrets", item.name, version.id),
                "x5t": version.data["x5t"],
                "cer": version.data["cer"],
            }
        )
    body["attributes"] = attributes(vault, version)
    if version.tags:
        body["tags"] = version.tags
    if "preserveCertOrder" in version.data:
        body["preserveCertOrder"] = version.data["preserveCertOrder"]
    return body


def certificate_bundle(vault: Vault, item: Item, version: Version) -> JsonBody:
    """The latest-version form (GET, update, delete, recover): with ``policy``, and ``pending`` while an operation
    record exists, even after it completed (recordings)."""
    advance(vault, item)
    body = version_body(vault, item, version)
    body["policy"] = policy_body(vault, item)
    if "operation" in item.extra:
        body["pending"] = {"id": vault.object_id("certificates", item.name, "pending")}
    return body


def restored_bundle(vault: Vault, item: Item, version: Version) -> JsonBody:
    """The restore answer keeps ``policy`` but has no ``pending`` (recording)."""
    body = certificate_bundle(vault, item, version)
    body.pop("pending", None)
    return body


def certificate_item(vault: Vault, item: Item, version: Version, versioned: bool) -> JsonBody:
    """A CertificateItem: ``subject`` is always empty and the attributes carry no recovery level (recordings)."""
    advance(vault, item)
    body: JsonBody = {"id": vault.object_id("certificates", item.name, version.id if versioned else None)}
    if not version.data.get("pending"):
        body["x5t"] = version.data["x5t"]
    attrs = attributes(vault, version)
    attrs.pop("recoveryLevel")
    attrs.pop("recoverableDays")
    body["attributes"] = attrs
    if version.tags:
        body["tags"] = version.tags
    body["subject"] = ""
    return body


def operation_body(vault: Vault, item: Item, op: JsonBody) -> JsonBody:
    body: JsonBody = {
        "id": vault.object_id("certificates", item.name, "pending"),
        "issuer": op["issuer"],
        "csr": op["csr"],
        "cancellation_requested": op["cancellation_requested"],
        "status": op["status"],
    }
    if op["status"] == "inProgress":
        body["status_details"] = IN_PROGRESS
    if op["status"] == "completed":
        body["target"] = vault.object_id("certificates", item.name)
    body["request_id"] = op["request_id"]
    return body
