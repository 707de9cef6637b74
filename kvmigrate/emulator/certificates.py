"""Certificate routes: create (self-signed or CSR for an outside CA), import, merge, get, update, policy, pending.

Every certificate version V also makes a managed key version and a managed secret version of the same name and id
(facts §13): the key holds the private key (``kty``, ``key_ops``, ``pem``, ``exportable``), the secret holds the PFX
or PEM export. All three exist from the create call on. While the issuance is pending the certificate version has no
``cer`` and all three are disabled, which is what the service shows: GET on the certificate answers a disabled bundle
with ``policy`` and ``pending`` (azure-sdk-for-js recording), the secret answers 403 SecretDisabled (facts §13).

Issuer ``Self`` signs at once but reports ``inProgress`` for the vault's ``issuance_delay`` seconds: a timer
completes the operation, and every certificate read completes it too if the timer has not run yet. Issuer
``Unknown`` stays pending until ``POST …/pending/merge`` brings the signed certificate. Delete, recover, purge,
backup and restore of a certificate carry its key and secret along (the hooks of ``KIND``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from kvmigrate.emulator import backup_blob, material
from kvmigrate.emulator.app import Call, JsonBody, Reply, Route, Vault, attributes, now, read_attributes, route
from kvmigrate.emulator.errors import KeyVaultError, bad_parameter
from kvmigrate.emulator.objects import Kind, get_version, name_checked, shared_routes
from kvmigrate.emulator.store import Collection, Item, Version, check_tags, new_version_id

#: Seconds a ``Self`` issuance stays ``inProgress``. Guess and simplification: the recorded one took about 10 s
#: (facts §6); 1 s keeps tests quick. Not a vault setting yet (VaultSettings has no field for it); tests patch it.
MAX_TAG_LENGTH = 512
IN_PROGRESS = (
    "Pending certificate created. Certificate request is in progress. This may take some time based on "
    "the issuer provider. Please check again later."
)
RSA_KEY_OPS = ["sign", "verify", "wrapKey", "unwrapKey", "encrypt", "decrypt"]
EC_KEY_OPS = ["sign", "verify"]
DEFAULT_EKUS = ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]  # serverAuth, clientAuth (recordings)
DEFAULT_KEY_USAGE = ["digitalSignature", "keyEncipherment"]
KEY_USAGES = (
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
)
CONTENT_TYPES = (material.PKCS12_CONTENT_TYPE, material.PEM_CONTENT_TYPE)
CURVE_BITS = {"P-256": 256, "P-384": 384, "P-521": 521, "P-256K": 256}
SAN_FIELDS = ("emails", "dns_names", "upns", "uris", "ipAddresses")
BACKDATE = timedelta(minutes=10)  # recordings: nbf = created - 600 s
# Subject attribute names as Key Vault writes them (.NET style: "S" for the state, "E" for e-mail).
NAME_LABELS = {
    NameOID.COMMON_NAME: "CN",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "S",
    NameOID.COUNTRY_NAME: "C",
    NameOID.EMAIL_ADDRESS: "E",
    NameOID.STREET_ADDRESS: "STREET",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.SERIAL_NUMBER: "SERIALNUMBER",
    NameOID.TITLE: "T",
    NameOID.GIVEN_NAME: "G",
    NameOID.SURNAME: "SN",
}


# -- policy ----------------------------------------------------------------------------------------------------------
def _object(raw: Any, what: str) -> JsonBody:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad_parameter(f"{what} must be an object.")
    return raw


def _flag(raw: JsonBody, member: str, default: bool, what: str) -> bool:
    value = raw.get(member)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_parameter(f"{what}.{member} must be a boolean.")
    return value


def _strings(raw: Any, what: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(value, str) for value in raw):
        raise bad_parameter(f"{what} must be a list of strings.")
    return list(raw)


def _key_props(raw: Any) -> JsonBody:
    """``key_props`` with Key Vault's defaults (exportable RSA-2048, no key reuse)."""
    raw = _object(raw, "policy.key_props")
    kty = raw.get("kty") or "RSA"
    if kty not in ("RSA", "RSA-HSM", "EC", "EC-HSM"):
        raise bad_parameter(
            f"The key type '{kty}' is not supported for certificates. Supported: RSA, RSA-HSM, EC, EC-HSM."
        )
    props: JsonBody = {"exportable": _flag(raw, "exportable", True, "policy.key_props"), "kty": kty}
    if kty.startswith("RSA"):
        size = raw.get("key_size") or material.DEFAULT_RSA_KEY_SIZE
        if size not in material.RSA_KEY_SIZES:
            raise bad_parameter(f"The key size {size} is not valid for {kty} keys. Allowed: 2048, 3072, 4096.")
        props["key_size"] = size
    else:
        curve = raw.get("crv") or material.DEFAULT_CURVE
        if curve not in CURVE_BITS or raw.get("key_size") not in (None, CURVE_BITS[curve]):
            raise bad_parameter(
                f"The curve '{curve}' with key size {raw.get('key_size')} is not valid. Supported: "
                f"{', '.join(CURVE_BITS)}."
            )
        props["key_size"] = CURVE_BITS[curve]  # guess: the size of the curve is reported alongside crv
    props["reuse_key"] = _flag(raw, "reuse_key", False, "policy.key_props")
    if not kty.startswith("RSA"):
        props["crv"] = raw.get("crv") or material.DEFAULT_CURVE
    return props


def _secret_props(raw: Any, default: str = material.PKCS12_CONTENT_TYPE) -> JsonBody:
    content_type = _object(raw, "policy.secret_props").get("contentType") or default
    if content_type not in CONTENT_TYPES:
        raise bad_parameter(
            f"The content type '{content_type}' is not supported. Supported: {', '.join(CONTENT_TYPES)}."
        )
    return {"contentType": content_type}


def _sans(raw: Any) -> JsonBody | None:
    if raw is None:
        return None
    sans = _object(raw, "policy.x509_props.sans")
    return {field: _strings(sans[field], f"policy.x509_props.sans.{field}") for field in SAN_FIELDS if sans.get(field)}


def _x509_props(raw: Any) -> JsonBody:
    """``x509_props`` of a create request with the defaults the recordings show (server and client auth EKUs)."""
    raw = _object(raw, "policy.x509_props")
    subject, sans = raw.get("subject"), _sans(raw.get("sans"))
    if subject is not None and not isinstance(subject, str):
        raise bad_parameter("policy.x509_props.subject must be a string.")
    if not subject and not sans:
        raise bad_parameter("The certificate policy needs a subject or at least one subject alternative name.")
    props: JsonBody = {"subject": subject or ""}
    if sans is not None:
        props["sans"] = sans
    props["ekus"] = _strings(raw["ekus"], "policy.x509_props.ekus") if raw.get("ekus") is not None else DEFAULT_EKUS
    usage = raw.get("key_usage")
    props["key_usage"] = _strings(usage, "policy.x509_props.key_usage") if usage is not None else DEFAULT_KEY_USAGE
    unknown = [name for name in props["key_usage"] if name not in KEY_USAGES]
    if unknown:
        raise bad_parameter(f"Unknown key usage value(s): {', '.join(unknown)}.")
    months = raw.get("validity_months") or 12
    if not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= 1200:
        raise bad_parameter("policy.x509_props.validity_months must be an integer between 1 and 1200.")
    props["validity_months"] = months
    constraints = _object(raw.get("basic_constraints"), "policy.x509_props.basic_constraints")
    props["basic_constraints"] = {"ca": _flag(constraints, "ca", False, "policy.x509_props.basic_constraints")}
    return props


def _issuer(raw: Any, *, default: str | None) -> JsonBody:
    issuer = dict(_object(raw, "policy.issuer"))
    name = issuer.get("name") or default
    if not isinstance(name, str) or not name:
        raise bad_parameter("The certificate policy needs an issuer (policy.issuer.name), e.g. Self or Unknown.")
    if name.lower() not in ("self", "unknown"):
        # Guess at the wording; the emulator has no issuer registry (certificates/issuers is not served).
        raise bad_parameter(f"Issuer not found: {name}. The emulator supports only the Self and Unknown issuers.")
    issuer["name"] = name
    return {key: value for key, value in issuer.items() if value is not None}


def _lifetime_actions(raw: Any, issuer: str) -> list[Any]:
    """Given actions, or the default: renew at 80 % for Self, e-mail the contacts otherwise (recordings)."""
    if raw is None:
        action = "AutoRenew" if issuer.lower() == "self" else "EmailContacts"
        return [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": action}}]
    if not isinstance(raw, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("trigger"), dict) and isinstance(entry.get("action"), dict)
        for entry in raw
    ):
        raise bad_parameter("policy.lifetime_actions must be a list of {trigger, action} objects.")
    return copy.deepcopy(raw)


def _policy(
    raw: JsonBody,
    *,
    x509_props: JsonBody,
    key_props: JsonBody,
    issuer: JsonBody,
    stamp: int,
    previous: JsonBody | None,
    content_type: str = material.PKCS12_CONTENT_TYPE,
) -> JsonBody:
    """Assemble a stored policy in the recorded member order; ``created`` survives from the previous policy."""
    enabled = _flag(_object(raw.get("attributes"), "policy.attributes"), "enabled", True, "policy.attributes")
    created = previous["attributes"]["created"] if previous else stamp
    return {
        "key_props": key_props,
        "secret_props": _secret_props(raw.get("secret_props"), content_type),
        "x509_props": x509_props,
        "lifetime_actions": _lifetime_actions(raw.get("lifetime_actions"), issuer["name"]),
        "issuer": issuer,
        "attributes": {"enabled": enabled, "created": created, "updated": stamp},
    }


def _requested_policy(raw: JsonBody, *, stamp: int, previous: JsonBody | None) -> JsonBody:
    return _policy(
        raw,
        x509_props=_x509_props(raw.get("x509_props")),
        key_props=_key_props(raw.get("key_props")),
        issuer=_issuer(raw.get("issuer"), default=None),
        stamp=stamp,
        previous=previous,
    )


def _subject_text(name: x509.Name) -> str:
    """Write a subject as Key Vault does: most specific RDN first, ``", "`` between RDNs (recording: O=…, S=…, C=…)."""

    def label(attribute: x509.NameAttribute[Any]) -> str:
        value = attribute.value if isinstance(attribute.value, str) else attribute.value.decode("latin-1")
        if any(char in value for char in ',+="<>#;\n') or value != value.strip():
            value = '"' + value.replace('"', '""') + '"'
        return f"{NAME_LABELS.get(attribute.oid, 'OID.' + attribute.oid.dotted_string)}={value}"

    return ", ".join(" + ".join(label(a) for a in rdn) for rdn in reversed(list(name.rdns)))


def _extension(cert: x509.Certificate, kind: type[Any]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _x509_of(cert: x509.Certificate) -> JsonBody:
    """``x509_props`` read back from a certificate: an import ignores the submitted ones (facts §16)."""
    props: JsonBody = {"subject": _subject_text(cert.subject)}
    san = _extension(cert, x509.SubjectAlternativeName)
    if san is not None:
        found = {
            "emails": san.get_values_for_type(x509.RFC822Name),
            "dns_names": san.get_values_for_type(x509.DNSName),
            "uris": san.get_values_for_type(x509.UniformResourceIdentifier),
            "ipAddresses": [str(ip) for ip in san.get_values_for_type(x509.IPAddress)],
        }
        props["sans"] = {field: values for field, values in found.items() if values}
    ekus = _extension(cert, x509.ExtendedKeyUsage)
    props["ekus"] = [oid.dotted_string for oid in ekus] if ekus is not None else []
    usage = _extension(cert, x509.KeyUsage)
    flags = {
        "digitalSignature": "digital_signature",
        "nonRepudiation": "content_commitment",
        "keyEncipherment": "key_encipherment",
        "dataEncipherment": "data_encipherment",
        "keyAgreement": "key_agreement",
        "keyCertSign": "key_cert_sign",
        "cRLSign": "crl_sign",
    }
    names = [name for name, attr in flags.items() if usage is not None and getattr(usage, attr)]
    if usage is not None and usage.key_agreement:
        names += [
            name
            for name, attr in (("encipherOnly", "encipher_only"), ("decipherOnly", "decipher_only"))
            if getattr(usage, attr)
        ]
    props["key_usage"] = names
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    props["validity_months"] = max(1, round(lifetime.days * 12 / 365))  # 36500 days → 1200 (recording)
    constraints = _extension(cert, x509.BasicConstraints)
    props["basic_constraints"] = {"ca": bool(constraints is not None and constraints.ca)}
    return props


def _key_props_of(key: material.PrivateKey, submitted: JsonBody) -> JsonBody:
    """``key_props`` describing an imported key; ``exportable``/``reuse_key`` and an -HSM kty come from the request."""
    base = material.key_type_of(key)
    kty = submitted.get("kty") if submitted.get("kty") in (base, f"{base}-HSM") else base
    props: JsonBody = {"exportable": _flag(submitted, "exportable", True, "policy.key_props"), "kty": kty}
    curve = material.curve_name(key)
    props["key_size"] = CURVE_BITS[curve] if curve else key.key_size
    props["reuse_key"] = _flag(submitted, "reuse_key", False, "policy.key_props")
    if curve:
        props["crv"] = curve
    return props


# -- rendering -------------------------------------------------------------------------------------------------------
def _policy_body(vault: Vault, item: Item) -> JsonBody:
    return {"id": vault.object_id("certificates", item.name, "policy"), **copy.deepcopy(item.extra["policy"])}


def _version_body(vault: Vault, item: Item, version: Version) -> JsonBody:
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
    _advance(vault, item)
    body = _version_body(vault, item, version)
    body["policy"] = _policy_body(vault, item)
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
    _advance(vault, item)
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


def _operation_body(vault: Vault, item: Item, op: JsonBody) -> JsonBody:
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


# -- the managed key and secret --------------------------------------------------------------------------------------
def _linked_item(store: Collection, name: str) -> Item | None:
    """The object of ``name`` wherever it is: active, soft-deleted or being recovered."""
    key = name.lower()
    if key in store.active:
        return store.active[key]
    if key in store.deleted:
        return store.deleted[key].item
    if key in store.recovering:
        return store.recovering[key][0]
    return None


def _versions_of(vault: Vault, item: Item, version_id: str) -> list[Version]:
    """Version ``version_id`` of the certificate and of its managed key and secret (those that exist)."""
    found = [item.version(version_id)]
    for store in (vault.keys, vault.secrets):
        linked = _linked_item(store, item.name)
        found.append(linked.version(version_id) if linked else None)
    return [version for version in found if version is not None]


def _check_free(vault: Vault, name: str) -> None:
    """Refuse a create or import that would collide, before anything is written (no half-made certificate)."""
    vault.certificates.check_writable(name)
    for store in (vault.keys, vault.secrets):
        store.check_writable(name)
        existing = store.find(name)
        if existing is not None and not existing.managed:
            # Guess at the wording: the service refuses with 409 but the facts sheet has no recorded message.
            raise KeyVaultError(
                409,
                "Conflict",
                f"There is already a {store.kind} named {name} in this key vault that does not belong to a "
                f"certificate; a certificate needs its own key and secret of that name. Choose another name.",
            )


def _add_versions(
    vault: Vault,
    name: str,
    *,
    version_id: str,
    stamp: int,
    key: material.PrivateKey,
    policy: JsonBody,
    certificate: JsonBody,
    secret_value: str,
    validity: tuple[int, int],
    enabled: bool,
    tags: dict[str, str] | None,
) -> Item:
    """Write version ``version_id`` of the certificate, its key and its secret (same id, facts §13)."""
    nbf, exp = validity
    key_props = policy["key_props"]

    def version(data: JsonBody, content_type: str | None = None, version_tags: dict[str, str] | None = None) -> Version:
        return Version(
            id=version_id,
            created=stamp,
            updated=stamp,
            enabled=enabled,
            nbf=nbf,
            exp=exp,
            tags=version_tags,
            content_type=content_type,
            data=data,
        )

    key_ops = RSA_KEY_OPS if key_props["kty"].startswith("RSA") else EC_KEY_OPS
    # Guess: the key carries the certificate's validity as nbf/exp (the secret does, facts §13); tags stay on the
    # certificate only.
    vault.keys.upsert(
        name,
        version(
            {
                "kty": key_props["kty"],
                "key_ops": list(key_ops),
                "pem": material.private_key_to_pem(key).decode("ascii"),
                "exportable": key_props["exportable"],
            }
        ),
        managed=True,
    )
    vault.secrets.upsert(name, version({"value": secret_value}, policy["secret_props"]["contentType"]), managed=True)
    item = vault.certificates.upsert(name, version(certificate, version_tags=tags))
    item.extra["policy"] = policy
    return item


def _timestamp(moment: datetime) -> int:
    return int(moment.timestamp())


def _validity_of(cert: x509.Certificate) -> tuple[int, int]:
    return _timestamp(cert.not_valid_before_utc), _timestamp(cert.not_valid_after_utc)


def _planned_validity(months: int) -> tuple[int, int]:
    """nbf/exp a pending CSR shows before any certificate exists: backdated 10 min, ``months`` long (approx.)."""
    start = datetime.now(UTC) - BACKDATE
    return _timestamp(start), _timestamp(start + timedelta(days=round(months * 30.436875)))


def _certificate_data(cert: x509.Certificate, *, pending: bool) -> JsonBody:
    return {"cer": material.cer(cert), "x5t": material.x5t(cert), "pending": pending}


# -- completing an operation -----------------------------------------------------------------------------------------
def _advance(vault: Vault, item: Item) -> None:
    """Complete a ``Self`` issuance whose time has come (the timer may not have run yet)."""
    op = item.extra.get("operation")
    if op and op["status"] == "inProgress" and op.get("due") is not None and time.time() >= op["due"]:
        _finish(vault, item, op)


def _finish(vault: Vault, item: Item, op: JsonBody) -> None:
    """Mark the operation done; enable the new certificate, key and secret versions unless cancelled."""
    op.pop("due", None)
    if op["cancellation_requested"]:
        op["status"] = "cancelled"  # guess: the status a cancelled request ends in (never recorded)
        return
    stamp = now()
    certificate = item.version(op["version"])
    if certificate is not None:
        certificate.data["pending"] = False
    for version in _versions_of(vault, item, op["version"]):
        version.enabled = op["enabled"]
        version.updated = stamp
    op["status"] = "completed"


def _schedule(vault: Vault, item: Item) -> None:
    """Complete a pending ``Self`` issuance on time even if nobody reads the certificate (its secret shows it)."""
    op = item.extra.get("operation")
    if not op or op.get("due") is None:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    name, request_id = item.name, op["request_id"]

    def on_due() -> None:
        current = _linked_item(vault.certificates, name)
        if current is not None and current.extra.get("operation", {}).get("request_id") == request_id:
            _advance(vault, current)

    loop.call_later(max(0.0, op["due"] - time.time()) + 0.01, on_due)


# -- handlers --------------------------------------------------------------------------------------------------------
def _tags(body: JsonBody) -> dict[str, str] | None:
    return check_tags(body.get("tags"), max_len=MAX_TAG_LENGTH)


def _preserve_order(body: JsonBody, data: JsonBody) -> None:
    value = body.get("preserveCertOrder")
    if value is not None:
        if not isinstance(value, bool):
            raise bad_parameter("preserveCertOrder must be a boolean.")
        data["preserveCertOrder"] = value


def _reusable_key(vault: Vault, name: str, key_props: JsonBody) -> material.PrivateKey | None:
    """The current key of ``name`` when the policy says ``reuse_key`` and its type still fits."""
    if not key_props["reuse_key"]:
        return None
    item = vault.keys.find(name)
    if item is None or "pem" not in item.latest.data:
        return None
    key = material.private_key_from_pem(item.latest.data["pem"].encode("ascii"))
    same_type = material.key_type_of(key) == key_props["kty"].removesuffix("-HSM")
    return key if same_type and material.curve_name(key) == key_props.get("crv") else None


def _no_running_operation(vault: Vault, name: str) -> Item | None:
    existing = vault.certificates.find(name)
    if existing is not None:
        _advance(vault, existing)
        op = existing.extra.get("operation")
        if op and op["status"] == "inProgress":
            # Guess at status and wording: the facts sheet has no recording of a second create while one is pending.
            raise KeyVaultError(
                409,
                "Conflict",
                f"Certificate {name} has a pending certificate operation; wait "
                "for it to complete, or delete it, before adding a new version.",
            )
    return existing


async def create_certificate(vault: Vault, call: Call) -> Reply:
    name, body = call.params["name"], call.json()
    raw_policy = body.get("policy")
    if not isinstance(raw_policy, dict):
        raise bad_parameter("The certificate policy (policy) is required.")
    existing = _no_running_operation(vault, name)
    stamp = now()
    policy = _requested_policy(raw_policy, stamp=stamp, previous=existing.extra.get("policy") if existing else None)
    attrs, tags = read_attributes(body), _tags(body)
    _check_free(vault, name)
    x509_props, key_props = policy["x509_props"], policy["key_props"]
    sans = x509_props.get("sans") or {}
    subject = x509_props["subject"] or f"CN={(sans.get('dns_names') or [name])[0]}"  # guess for SAN-only policies
    is_self = policy["issuer"]["name"].lower() == "self"
    try:
        key = _reusable_key(vault, name, key_props) or material.generate_key(
            key_props["kty"], size=key_props["key_size"], crv=key_props.get("crv")
        )
        csr = material.certificate_signing_request(key, subject=subject)
        cert: x509.Certificate | None = None
        secret = ""  # an outside CA's certificate arrives with the merge
        if is_self:  # signed now, shown once the operation completes
            cert = material.self_signed_certificate(
                key,
                subject=subject,
                dns_names=sans.get("dns_names"),
                validity_months=x509_props["validity_months"],
                ekus=x509_props["ekus"],
                key_usage=x509_props["key_usage"],
                not_before=datetime.now(UTC) - BACKDATE,
            )
            secret = material.export_secret_value(key, cert, [], content_type=policy["secret_props"]["contentType"])
    except material.MaterialError as exc:
        raise bad_parameter(str(exc)) from exc
    data = _certificate_data(cert, pending=True) if cert is not None else {"pending": True}
    _preserve_order(body, data)
    version_id = new_version_id()
    validity = _validity_of(cert) if cert is not None else _planned_validity(x509_props["validity_months"])
    item = _add_versions(
        vault,
        name,
        version_id=version_id,
        stamp=stamp,
        key=key,
        policy=policy,
        certificate=data,
        secret_value=secret,
        validity=validity,
        enabled=False,
        tags=tags,
    )
    op: JsonBody = {
        "request_id": uuid.uuid4().hex,
        "issuer": copy.deepcopy(policy["issuer"]),
        "csr": base64.b64encode(csr).decode("ascii"),
        "cancellation_requested": False,
        "status": "inProgress",
        "version": version_id,
        "enabled": attrs.get("enabled", True),
    }
    if is_self:
        op["due"] = time.time() + vault.settings.issuance_delay
    item.extra["operation"] = op
    _schedule(vault, item)
    api_version = call.request.query["api-version"]  # the app has checked it
    location = (
        f"{vault.object_id('certificates', item.name, 'pending')}?api-version={api_version}"
        f"&request_id={op['request_id']}"
    )
    return Reply(_operation_body(vault, item, op), status=202, headers={"Location": location, "Retry-After": "10"})


def _is_pem(value: str) -> bool:
    if value.lstrip().startswith("-----BEGIN"):
        return True
    head = "".join(value.split())[:64].rstrip("=")
    try:
        return base64.b64decode(head + "=" * (-len(head) % 4)).lstrip().startswith(b"-----BEGIN")
    except (binascii.Error, ValueError):
        return False


async def import_certificate(vault: Vault, call: Call) -> Reply:
    name, body = call.params["name"], call.json()
    value, password = body.get("value"), body.get("pwd")
    if not isinstance(value, str) or not value:
        raise bad_parameter("The certificate content (value) is required: base64 of a PFX file or of PEM text.")
    if password is not None and not isinstance(password, str):
        raise bad_parameter("pwd must be a string.")
    raw_policy = _object(body.get("policy"), "policy")
    hint = _object(raw_policy.get("secret_props"), "policy.secret_props").get("contentType")
    try:
        key, cert, chain = material.load_certificate_import(value, password=password, content_type=hint)
    except material.MaterialError as exc:
        raise bad_parameter(str(exc)) from exc
    existing = _no_running_operation(vault, name)
    stamp = now()
    default_type = material.PEM_CONTENT_TYPE if _is_pem(value) else material.PKCS12_CONTENT_TYPE
    policy = _policy(
        raw_policy,
        x509_props=_x509_of(cert),
        key_props=_key_props_of(key, _object(raw_policy.get("key_props"), "policy.key_props")),
        issuer=_issuer(raw_policy.get("issuer"), default="Unknown"),
        stamp=stamp,
        previous=existing.extra.get("policy") if existing else None,
        content_type=default_type,
    )
    attrs, tags = read_attributes(body), _tags(body)
    _check_free(vault, name)
    try:
        secret = material.export_secret_value(key, cert, chain, content_type=policy["secret_props"]["contentType"])
    except material.MaterialError as exc:
        raise bad_parameter(str(exc)) from exc
    data = _certificate_data(cert, pending=False)
    _preserve_order(body, data)
    item = _add_versions(
        vault,
        name,
        version_id=new_version_id(),
        stamp=stamp,
        key=key,
        policy=policy,
        certificate=data,
        secret_value=secret,
        validity=_validity_of(cert),
        enabled=attrs.get("enabled", True),
        tags=tags,
    )
    item.extra.pop("operation", None)  # an import answers without ``pending`` (recording)
    return Reply(certificate_bundle(vault, item, item.latest))


async def get_certificate(vault: Vault, call: Call) -> Reply:
    item = vault.certificates.get(call.params["name"])
    version_id = call.params.get("version", "")
    if not version_id:
        return Reply(certificate_bundle(vault, item, item.latest))
    _advance(vault, item)
    return Reply(_version_body(vault, item, get_version(KIND, item, version_id)))


async def update_certificate(vault: Vault, call: Call) -> Reply:
    body = call.json()
    item = vault.certificates.get(call.params["name"])
    _advance(vault, item)
    version = get_version(KIND, item, call.params.get("version", ""))
    attrs = read_attributes(body)  # nbf/exp come from the certificate itself and are not changed here
    tags = _tags(body) if "tags" in body else version.tags
    if body.get("policy") is not None:
        item.extra["policy"] = _merged_policy(item, _object(body["policy"], "policy"))
    stamp = now()
    if "enabled" in attrs:
        op = item.extra.get("operation")
        if version.data.get("pending") and op and op["version"] == version.id and op["status"] == "inProgress":
            op["enabled"] = attrs["enabled"]  # applies once the issuance completes
        else:
            for linked in _versions_of(vault, item, version.id):  # the key and secret follow (facts §13)
                linked.enabled = attrs["enabled"]
                linked.updated = stamp
    version.tags = tags
    version.updated = stamp
    if call.params.get("version"):
        return Reply(_version_body(vault, item, version))
    return Reply(certificate_bundle(vault, item, version))


def _merged_policy(item: Item, raw: JsonBody) -> JsonBody:
    """PATCH semantics: the given members replace or extend the current ones; the result is validated again."""
    current = copy.deepcopy(item.extra["policy"])
    for member in ("key_props", "secret_props", "x509_props", "issuer", "attributes"):
        if raw.get(member) is not None:
            current[member] = {
                **current[member],
                **{k: v for k, v in _object(raw[member], member).items() if v is not None},
            }
    if raw.get("lifetime_actions") is not None:
        current["lifetime_actions"] = raw["lifetime_actions"]
    stamp = now()
    merged = _requested_policy(current, stamp=stamp, previous=current)
    merged["attributes"]["updated"] = stamp
    return merged


async def get_policy(vault: Vault, call: Call) -> Reply:
    return Reply(_policy_body(vault, vault.certificates.get(call.params["name"])))


async def update_policy(vault: Vault, call: Call) -> Reply:
    item = vault.certificates.get(call.params["name"])
    item.extra["policy"] = _merged_policy(item, call.json())
    return Reply(_policy_body(vault, item))


def _operation(vault: Vault, name: str) -> tuple[Item, JsonBody]:
    item = vault.certificates.get(name)
    _advance(vault, item)
    op = item.extra.get("operation")
    if op is None:
        raise KeyVaultError(404, "PendingCertificateNotFound", f"Pending certificate not found: {name}")
    return item, op


async def get_pending(vault: Vault, call: Call) -> Reply:
    item, op = _operation(vault, call.params["name"])
    headers = {"Retry-After": "10"} if op["status"] == "inProgress" else {}
    return Reply(_operation_body(vault, item, op), headers=headers)


async def update_pending(vault: Vault, call: Call) -> Reply:
    body = call.json()
    flag = body.get("cancellation_requested")
    if not isinstance(flag, bool):
        raise bad_parameter("cancellation_requested is required and must be a boolean.")
    item, op = _operation(vault, call.params["name"])
    if op["status"] == "inProgress":
        op["cancellation_requested"] = flag
    return Reply(_operation_body(vault, item, op))


async def delete_pending(vault: Vault, call: Call) -> Reply:
    """Drop the operation record; a pending version stays as it is, disabled and without ``cer`` (JS recording)."""
    item, op = _operation(vault, call.params["name"])
    del item.extra["operation"]
    return Reply(_operation_body(vault, item, op))


async def merge_certificate(vault: Vault, call: Call) -> Reply:
    """Bring the CA-signed certificate (and chain) for a pending ``Unknown``-issuer request."""
    body = call.json()
    item, op = _operation(vault, call.params["name"])
    raw = body.get("x5c")
    if not isinstance(raw, list) or not raw or not all(isinstance(value, str) for value in raw):
        raise bad_parameter("x5c must be a non-empty list of base64 DER certificates.")
    if op["status"] != "inProgress" or op["issuer"]["name"].lower() == "self":
        raise bad_parameter(f"Certificate {item.name} has no pending request that waits for a merge.")
    try:
        certs = [x509.load_der_x509_certificate(base64.b64decode(value, validate=True)) for value in raw]
    except (binascii.Error, ValueError) as exc:
        raise bad_parameter("x5c holds a value that is not a base64 DER X.509 certificate.") from exc
    key_item = _linked_item(vault.keys, item.name)
    key_version = key_item.version(op["version"]) if key_item else None
    secret_item = _linked_item(vault.secrets, item.name)
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
    version.data.update(_certificate_data(certs[0], pending=True))
    nbf, exp = _validity_of(certs[0])
    for linked in (version, key_version, secret_version):
        linked.nbf, linked.exp = nbf, exp
    attrs = read_attributes(body)
    if "enabled" in attrs:
        op["enabled"] = attrs["enabled"]
    if "tags" in body:
        version.tags = _tags(body)
    _finish(vault, item, op)
    return Reply(certificate_bundle(vault, item, version), status=201)


# -- hooks for the shared routes -------------------------------------------------------------------------------------
def _cascade_delete(vault: Vault, name: str) -> None:
    for store in (vault.keys, vault.secrets):
        if store.find(name) is not None:
            store.delete(name)


def _cascade_recover(vault: Vault, name: str) -> None:
    for store in (vault.keys, vault.secrets):  # deleted together with the certificate: visible with it
        entry = store.deleted.pop(name.lower(), None)
        if entry is not None:
            store.recovering[name.lower()] = (entry.item, store.clock() + store.delay())


def _cascade_purge(vault: Vault, name: str) -> None:
    for store in (vault.keys, vault.secrets):
        if store.deleted.pop(name.lower(), None) is not None:
            store.purging[name.lower()] = store.clock() + store.delay()


def _pack(vault: Vault, item: Item) -> dict[str, Any]:
    """A certificate backup holds its key and secret (facts §8, §13)."""
    _advance(vault, item)
    linked: dict[str, Any] = {}
    for field, store in (("key", vault.keys), ("secret", vault.secrets)):
        found = store.find(item.name)
        if found is not None:
            linked[field] = found.to_blob()
    return linked


def _unpack(vault: Vault, item: Item, linked: dict[str, Any]) -> None:
    """Restore the key and secret with their version ids, or nothing at all (the caller removes the certificate)."""
    if not isinstance(linked.get("key"), dict) or not isinstance(linked.get("secret"), dict):
        raise backup_blob.malformed()
    done: list[tuple[Collection, str]] = []
    try:
        for field, store in (("key", vault.keys), ("secret", vault.secrets)):
            restored = Item.from_blob(linked[field])
            store.restore(restored, object_id=vault.object_id(f"{field}s", restored.name, restored.latest.id))
            done.append((store, restored.name.lower()))
    except KeyVaultError as exc:
        for store, key in done:
            del store.active[key]
        certificate_id = vault.object_id("certificates", item.name, item.latest.id)
        raise KeyVaultError(
            409,
            "Conflict",
            f"There was a conflict restoring the certificate '{certificate_id}'. This can happen if either: a key or "
            f"secret named {item.name} is in use or deleted in this vault; the certificate needs both names for its "
            f"own key and secret. To fix this, rename or purge that object and try the restore again. Or: multiple "
            f"operations were performed on this certificate in parallel. To fix this, retry the restore operation "
            f"again.",
        ) from exc
    _schedule(vault, item)


KIND = Kind(
    "certificate",
    lambda vault: vault.certificates,
    certificate_bundle,
    certificate_item,
    pack=_pack,
    unpack=_unpack,
    on_delete=_cascade_delete,
    on_recover=_cascade_recover,
    on_purge=_cascade_purge,
    restore_bundle=restored_bundle,
)


def routes() -> list[Route]:
    return [
        *shared_routes(KIND),
        route("POST", "/certificates/{name}/create", "certificates.create", "create", name_checked(create_certificate)),
        route(
            "POST",
            "/certificates/{name}/import",
            "certificates.import",
            "import",
            name_checked(import_certificate),
            is_create=True,
        ),
        route("GET", "/certificates/{name}/policy", "certificates.get_policy", "get", name_checked(get_policy)),
        route(
            "PATCH", "/certificates/{name}/policy", "certificates.update_policy", "update", name_checked(update_policy)
        ),
        route("GET", "/certificates/{name}/pending", "certificates.get_pending", "get", name_checked(get_pending)),
        route(
            "PATCH",
            "/certificates/{name}/pending",
            "certificates.update_pending",
            "update",
            name_checked(update_pending),
        ),
        route(
            "DELETE",
            "/certificates/{name}/pending",
            "certificates.delete_pending",
            "delete",
            name_checked(delete_pending),
        ),
        route(
            "POST",
            "/certificates/{name}/pending/merge",
            "certificates.merge",
            "create",
            name_checked(merge_certificate),
        ),
        route("GET", "/certificates/{name}", "certificates.get", "get", name_checked(get_certificate)),
        route("GET", "/certificates/{name}/{version}", "certificates.get", "get", name_checked(get_certificate)),
        route(
            "PATCH", "/certificates/{name}/{version}", "certificates.update", "update", name_checked(update_certificate)
        ),
    ]
