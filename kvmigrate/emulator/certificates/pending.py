"""The pending certificate operation: read, cancel, delete, and merge the certificate an outside CA signed."""

from __future__ import annotations

import time

from cryptography.hazmat.primitives import serialization

from kvmigrate.emulator import material
from kvmigrate.emulator.app import Call, JsonBody, Reply, Vault, read_attributes
from kvmigrate.emulator.certificates.lifecycle import advance, finish
from kvmigrate.emulator.certificates.managed import certificate_data, linked_item, validity_of
from kvmigrate.emulator.certificates.policy import read_tags
from kvmigrate.emulator.certificates.render import certificate_bundle, operation_body
from kvmigrate.emulator.errors import KeyVaultError, bad_parameter
from kvmigrate.emulator.store import Item


def _operation(vault: Vault, name: str) -> tuple[Item, JsonBody]:
    item = vault.certificates.get(name)
    advance(vault, item)
    op = item.extra.get("operation")
    if op is None:
        raise KeyVaultError(404, "PendingCertificateNotFound", f"Pending certificate not found: {name}")
    return item, op


async def get_pending(vault: Vault, call: Call) -> Reply:
    item, op = _operation(vault, call.params["name"])
    headers = {"Retry-After": "10"} if op["status"] == "inProgress" else {}
    return Reply(operation_body(vault, item, op), headers=headers)


async def update_pending(vault: Vault, call: Call) -> Reply:
    body = call.json()
    flag = body.get("cancellation_requested")
    if not isinstance(flag, bool):
        raise bad_parameter("cancellation_requested is required and must be a boolean.")
    item, op = _operation(vault, call.params["name"])
    if op["status"] == "inProgress":
        op["cancellation_requested"] = flag
        if flag:  # this answer still says inProgress; the next read finds it cancelled (recordings-2025)
            op["due"] = time.time()
    return Reply(operation_body(vault, item, op))


async def delete_pending(vault: Vault, call: Call) -> Reply:
    """Drop the operation record; a pending version stays as it is, disabled and without ``cer`` (JS recording)."""
    item, op = _operation(vault, call.params["name"])
    del item.extra["operation"]
    return Reply(operation_body(vault, item, op))


async def merge_certificate(vault: Vault, call: Call) -> Reply:
    """Bring the CA-signed certificate (and chain) for a pending request that is not ``Self``'s.

    ``x5c`` entries may be base64 of DER or base64 of PEM text, the form the JavaScript SDK documents (the service
    accepted it with 201, recordings-js ``recording_can_merge_a_self_signed_certificate.json``). The 201 carries a
    ``Location`` of the certificate, as recorded. A registered issuer's pending request can be merged too: the
    emulator has no CA to reach, so a merge is the way to complete it.
    """
    body = call.json()
    item, op = _operation(vault, call.params["name"])
    raw = body.get("x5c")
    if not isinstance(raw, list) or not raw or not all(isinstance(value, str) for value in raw):
        raise bad_parameter("x5c must be a non-empty list of base64 X.509 certificates.")
    if op["status"] != "inProgress" or op["issuer"]["name"].lower() == "self":
        raise bad_parameter(f"Certificate {item.name} has no pending request that waits for a merge.")
    try:
        certs = material.load_merged_chain(raw)
    except material.MaterialError as exc:
        raise bad_parameter(str(exc)) from exc
    key_item = linked_item(vault.keys, item.name)
    key_version = key_item.version(op["version"]) if key_item else None
    secret_item = linked_item(vault.secrets, item.name)
    secret_version = secret_item.version(op["version"]) if secret_item else None
    version = item.version(op["version"])
    if key_version is None or secret_version is None or version is None:
        raise bad_parameter(f"The pending request of certificate {item.name} has lost its key.")
    key = material.private_key_from_pem(key_version.data["pem"].encode("ascii"))
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if certs[0].public_key().public_bytes(serialization.Encoding.DER, spki) != key.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ):
        raise bad_parameter("Public key from x509 certificate and key of this instance doesn't match")
    try:
        secret_version.data["value"] = material.export_secret_value(
            key, certs[0], certs[1:], content_type=secret_version.content_type or material.PKCS12_CONTENT_TYPE
        )
    except material.MaterialError as exc:
        raise bad_parameter(str(exc)) from exc
    version.data.update(certificate_data(certs[0], pending=True))
    nbf, exp = validity_of(certs[0])
    for linked in (version, key_version, secret_version):
        linked.nbf, linked.exp = nbf, exp
    attrs = read_attributes(body)
    if "enabled" in attrs:
        op["enabled"] = attrs["enabled"]
    if "tags" in body:
        version.tags = read_tags(body)
    finish(vault, item, op)
    location = f"{vault.object_id('certificates', item.name)}?api-version={call.request.query['api-version']}"
    return Reply(certificate_bundle(vault, item, version), status=201, headers={"Location": location})
