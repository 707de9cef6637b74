"""Certificate policies: validation of a create or PATCH request, Key Vault's defaults, and the policy an import
derives from the certificate itself (facts §6, §16)."""

from __future__ import annotations

import copy
from typing import Any

from cryptography import x509

from kvmigrate.emulator import material
from kvmigrate.emulator.app import JsonBody, Vault, is_newer_api, now
from kvmigrate.emulator.certificates.issuers import find as find_issuer
from kvmigrate.emulator.errors import bad_parameter
from kvmigrate.emulator.store import Item, check_tags

DEFAULT_EKUS = ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]  # serverAuth, clientAuth (recordings)
DEFAULT_KEY_USAGE = ["digitalSignature", "keyEncipherment"]
CONTENT_TYPES = (material.PKCS12_CONTENT_TYPE, material.PEM_CONTENT_TYPE)
CURVE_BITS = {"P-256": 256, "P-384": 384, "P-521": 521, "P-256K": 256}
SAN_FIELDS = ("emails", "dns_names", "upns", "uris", "ipAddresses")
MAX_TAG_LENGTH = 512  # as for secrets (facts §12)


def as_object(raw: Any, what: str) -> JsonBody:
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
    raw = as_object(raw, "policy.key_props")
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
    content_type = as_object(raw, "policy.secret_props").get("contentType") or default
    if content_type not in CONTENT_TYPES:
        raise bad_parameter(
            f"The content type '{content_type}' is not supported. Supported: {', '.join(CONTENT_TYPES)}."
        )
    return {"contentType": content_type}


def _sans(raw: Any) -> JsonBody | None:
    if raw is None:
        return None
    sans = as_object(raw, "policy.x509_props.sans")
    return {field: _strings(sans[field], f"policy.x509_props.sans.{field}") for field in SAN_FIELDS if sans.get(field)}


def _x509_props(raw: Any) -> JsonBody:
    """``x509_props`` of a create request with the defaults the recordings show (server and client auth EKUs)."""
    raw = as_object(raw, "policy.x509_props")
    subject, sans = raw.get("subject"), _sans(raw.get("sans"))
    if subject is not None and not isinstance(subject, str):
        raise bad_parameter("policy.x509_props.subject must be a string.")
    if not subject and not sans:
        raise bad_parameter("The certificate policy needs a subject or at least one subject alternative name.")
    props: JsonBody = {"subject": subject} if subject else {}  # a SAN-only policy has no subject (recorded)
    if sans is not None:
        props["sans"] = sans
    props["ekus"] = _strings(raw["ekus"], "policy.x509_props.ekus") if raw.get("ekus") is not None else DEFAULT_EKUS
    usage = raw.get("key_usage")
    props["key_usage"] = _strings(usage, "policy.x509_props.key_usage") if usage is not None else DEFAULT_KEY_USAGE
    unknown = [name for name in props["key_usage"] if name not in material.KEY_USAGES]
    if unknown:
        raise bad_parameter(f"Unknown key usage value(s): {', '.join(unknown)}.")
    months = raw.get("validity_months") or 12
    if not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= 1200:
        raise bad_parameter("policy.x509_props.validity_months must be an integer between 1 and 1200.")
    props["validity_months"] = months
    constraints = as_object(raw.get("basic_constraints"), "policy.x509_props.basic_constraints")
    props["basic_constraints"] = {"ca": _flag(constraints, "ca", False, "policy.x509_props.basic_constraints")}
    return props


def parse_issuer(vault: Vault, raw: Any, *, default: str | None) -> JsonBody:
    """``policy.issuer``: Self, Unknown, or an issuer registered in this vault (certificates/issuers.py)."""
    issuer = dict(as_object(raw, "policy.issuer"))
    name = issuer.get("name") or default
    if not isinstance(name, str) or not name:
        raise bad_parameter("The certificate policy needs an issuer (policy.issuer.name), e.g. Self or Unknown.")
    if name.lower() not in ("self", "unknown") and find_issuer(vault, name) is None:
        # Guess at status and wording: no recording names an issuer the vault does not have.
        raise bad_parameter(
            f"Issuer not found: {name}. Create it with PUT /certificates/issuers/{name}, or use Self or Unknown."
        )
    issuer["name"] = name
    return {key: value for key, value in issuer.items() if value is not None}


def _lifetime_actions(raw: Any, issuer: str) -> list[Any]:
    """Given actions, or the default: e-mail the contacts at 80 % for Unknown, renew at 80 % otherwise (Self and a
    registered issuer, recordings)."""
    if raw is None:
        action = "EmailContacts" if issuer.lower() == "unknown" else "AutoRenew"
        return [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": action}}]
    if not isinstance(raw, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("trigger"), dict) and isinstance(entry.get("action"), dict)
        for entry in raw
    ):
        raise bad_parameter("policy.lifetime_actions must be a list of {trigger, action} objects.")
    return copy.deepcopy(raw)


def build_policy(
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
    enabled = _flag(as_object(raw.get("attributes"), "policy.attributes"), "enabled", True, "policy.attributes")
    created = previous["attributes"]["created"] if previous else stamp
    return {
        "key_props": key_props,
        "secret_props": _secret_props(raw.get("secret_props"), content_type),
        "x509_props": x509_props,
        "lifetime_actions": _lifetime_actions(raw.get("lifetime_actions"), issuer["name"]),
        "issuer": issuer,
        "attributes": {"enabled": enabled, "created": created, "updated": stamp},
    }


def requested_policy(vault: Vault, raw: JsonBody, *, stamp: int, previous: JsonBody | None) -> JsonBody:
    return build_policy(
        raw,
        x509_props=_x509_props(raw.get("x509_props")),
        key_props=_key_props(raw.get("key_props")),
        issuer=parse_issuer(vault, raw.get("issuer"), default=None),
        stamp=stamp,
        previous=previous,
    )


def merged_policy(vault: Vault, item: Item, raw: JsonBody) -> JsonBody:
    """PATCH semantics: the given members replace or extend the current ones; the result is validated again."""
    current = copy.deepcopy(item.extra["policy"])
    for member in ("key_props", "secret_props", "x509_props", "issuer", "attributes"):
        if raw.get(member) is not None:
            current[member] = {
                **current[member],
                **{k: v for k, v in as_object(raw[member], member).items() if v is not None},
            }
    if raw.get("lifetime_actions") is not None:
        current["lifetime_actions"] = raw["lifetime_actions"]
    stamp = now()
    merged = requested_policy(vault, current, stamp=stamp, previous=current)
    merged["attributes"]["updated"] = stamp
    return merged


def _extension(cert: x509.Certificate, kind: type[Any]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def x509_of(cert: x509.Certificate) -> JsonBody:
    """``x509_props`` read back from a certificate: an import ignores the submitted ones (facts §16)."""
    props: JsonBody = {"subject": material.subject_text(cert.subject)}
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
    props["key_usage"] = material.key_usage_names(usage)
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    # The same 36500-day certificate was read back as 1200 months in 2022 (7.3) and as 1197 in 2026 (2025-07-01).
    props["validity_months"] = max(1, round(days / 30.5) if is_newer_api() else round(days * 12 / 365))
    constraints = _extension(cert, x509.BasicConstraints)
    props["basic_constraints"] = {"ca": bool(constraints is not None and constraints.ca)}
    return props


def key_props_of(key: material.PrivateKey, submitted: JsonBody) -> JsonBody:
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


def read_tags(body: JsonBody) -> dict[str, str] | None:
    return check_tags(body.get("tags"), max_len=MAX_TAG_LENGTH)
