"""Issuing certificates as the ``Self`` issuer does, CSRs for outside CAs, and the fields Key Vault derives."""

from __future__ import annotations

import base64
import calendar
import hashlib
import ipaddress
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtensionOID

from kvmigrate.emulator.material.base import MaterialError, PrivateKey, key_type_of
from kvmigrate.emulator.material.encoding import b64url_encode
from kvmigrate.emulator.material.names import DOTTED_OID_RE, parse_subject


def _add_months(moment: datetime, months: int) -> datetime:
    """Add calendar months, clamping the day to the target month's length."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


#: Key Vault's key-usage names and the ``x509.KeyUsage`` attribute each one sets: the one table the emulator has.
KEY_USAGES: dict[str, str] = {
    "digitalSignature": "digital_signature",
    "nonRepudiation": "content_commitment",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "keyCertSign": "key_cert_sign",
    "cRLSign": "crl_sign",
    "encipherOnly": "encipher_only",
    "decipherOnly": "decipher_only",
}
_AGREEMENT_ONLY = ("encipherOnly", "decipherOnly")  # meaningful (and readable) only with keyAgreement


def _key_usage(names: list[str]) -> x509.UnrecognizedExtension:
    """The KeyUsage extension of Key Vault key-usage names, DER-encoded here rather than by ``x509.KeyUsage``.

    The service accepts ``key_usage: ["decipherOnly"]`` alone and issues a certificate whose KeyUsage bit string is
    exactly that bit (recordings-2025 ``test_policy``: ``03 03 07 00 80``); cryptography refuses encipher/decipherOnly
    without keyAgreement, so the bits are written as DER requires: named bits in order, trailing zeros dropped.
    """
    unknown = [name for name in names if name not in KEY_USAGES]
    if unknown:
        raise MaterialError(f"Unknown key usage value(s): {', '.join(unknown)}. Allowed: {', '.join(KEY_USAGES)}.")
    bits = [position for position, name in enumerate(KEY_USAGES) if name in names]
    content = bytearray((max(bits) // 8 + 1) if bits else 0)
    for position in bits:
        content[position // 8] |= 0x80 >> (position % 8)
    unused = 7 - max(bits) % 8 if bits else 0
    value = bytes([0x03, len(content) + 1, unused]) + bytes(content)
    return x509.UnrecognizedExtension(ExtensionOID.KEY_USAGE, value)


def key_usage_names(usage: x509.KeyUsage | None) -> list[str]:
    """The Key Vault names of the usages a certificate's KeyUsage extension sets, in the table's order."""
    if usage is None:
        return []
    return [
        name
        for name, attribute in KEY_USAGES.items()
        if (name not in _AGREEMENT_ONLY or usage.key_agreement) and getattr(usage, attribute)
    ]


def _extended_key_usage(oids: list[str]) -> x509.ExtendedKeyUsage:
    """Build an ExtendedKeyUsage extension from dotted OIDs."""
    parsed: list[x509.ObjectIdentifier] = []
    for oid in oids:
        if not isinstance(oid, str) or not DOTTED_OID_RE.match(oid):
            raise MaterialError(f"The extended key usage '{oid}' is not a valid dotted OID.")
        try:
            parsed.append(x509.ObjectIdentifier(oid))
        except ValueError as exc:
            raise MaterialError(f"The extended key usage '{oid}' is not a valid dotted OID.") from exc
    return x509.ExtendedKeyUsage(parsed)


def _general_names(sans: dict[str, list[str]]) -> list[x509.GeneralName]:
    """Subject alternative names of a policy's ``sans`` (emails, dns_names, upns, uris, ipAddresses)."""
    try:
        names: list[x509.GeneralName] = [x509.RFC822Name(value) for value in sans.get("emails", [])]
        names += [x509.DNSName(value) for value in sans.get("dns_names", [])]
        names += [x509.OtherName(_UPN, _utf8_string(value)) for value in sans.get("upns", [])]
        names += [x509.UniformResourceIdentifier(value) for value in sans.get("uris", [])]
        names += [x509.IPAddress(ipaddress.ip_address(value)) for value in sans.get("ipAddresses", [])]
    except (ValueError, TypeError) as exc:
        raise MaterialError(f"Invalid subject alternative name: {exc}") from exc
    return names


_UPN = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")  # Microsoft's user principal name OtherName


def _utf8_string(text: str) -> bytes:
    """DER UTF8String (the value of a UPN OtherName)."""
    data = text.encode("utf-8")
    length = bytes([len(data)]) if len(data) < 0x80 else bytes([0x82]) + len(data).to_bytes(2, "big")
    return b"\x0c" + length + data


def _name(subject: str, sans: dict[str, list[str]]) -> x509.Name:
    """The subject name; empty only when SANs name the certificate (the service issues such certificates)."""
    if not subject.strip() and any(sans.values()):
        return x509.Name([])
    return parse_subject(subject)


def _requested_extensions(
    sans: dict[str, list[str]], ekus: list[str] | None, key_usage: list[str] | None
) -> list[tuple[x509.ExtensionType, bool]]:
    """The extensions the service puts in its CSR and certificate, in its order: KU, EKU, SAN, basic constraints."""
    found: list[tuple[x509.ExtensionType, bool]] = []
    if key_usage:
        found.append((_key_usage(key_usage), True))
    if ekus:
        found.append((_extended_key_usage(ekus), False))
    general_names = _general_names(sans)
    if general_names:
        found.append((x509.SubjectAlternativeName(general_names), False))
    found.append((x509.BasicConstraints(ca=False, path_length=None), False))
    return found


def self_signed_certificate(
    key: PrivateKey,
    *,
    subject: str,
    dns_names: list[str] | None = None,
    sans: dict[str, list[str]] | None = None,
    validity_months: int = 12,
    ekus: list[str] | None = None,
    key_usage: list[str] | None = None,
    not_before: datetime | None = None,
) -> x509.Certificate:
    """Issue a self-signed end-entity certificate as Key Vault's "Self" issuer does.

    SHA-256 signature, random serial, basicConstraints CA=false. EKU/key-usage/SAN extensions are only added
    when given non-empty (policy defaults are the caller's business); ``sans`` is a policy's ``sans`` object and
    ``dns_names`` a shorthand for its ``dns_names``. A naive ``not_before`` is taken as UTC.
    """
    key_type_of(key)
    if validity_months < 1:
        raise MaterialError("validity_months must be at least 1.")
    alternative = {**(sans or {}), **({"dns_names": dns_names} if dns_names else {})}
    name = _name(subject, alternative)
    start = datetime.now(UTC) if not_before is None else not_before
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    start = start.astimezone(UTC).replace(microsecond=0)
    end = _add_months(start, validity_months)

    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    for extension, critical in _requested_extensions(alternative, ekus, key_usage):
        builder = builder.add_extension(extension, critical=critical)
    try:
        return builder.sign(key, hashes.SHA256())
    except ValueError as exc:
        raise MaterialError(f"The certificate could not be created: {exc}") from exc


def certificate_signing_request(
    key: PrivateKey,
    *,
    subject: str,
    sans: dict[str, list[str]] | None = None,
    ekus: list[str] | None = None,
    key_usage: list[str] | None = None,
) -> bytes:
    """Create a DER PKCS#10 CSR signed with ``key`` (SHA-256), as pending certificates expose: the subject and, as
    the service's CSRs carry them, the policy's key usage, EKUs, SANs and basic constraints."""
    key_type_of(key)
    builder = x509.CertificateSigningRequestBuilder().subject_name(_name(subject, sans or {}))
    for extension, critical in _requested_extensions(sans or {}, ekus, key_usage):
        builder = builder.add_extension(extension, critical=critical)
    try:
        csr = builder.sign(key, hashes.SHA256())
    except ValueError as exc:
        raise MaterialError(f"The certificate signing request could not be created: {exc}") from exc
    return csr.public_bytes(serialization.Encoding.DER)


def x5t(cert: x509.Certificate) -> str:
    """Return the certificate thumbprint as Key Vault sends it: base64url (no padding) SHA-1 of the DER."""
    return b64url_encode(hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).digest())


def cer(cert: x509.Certificate) -> str:
    """Return the certificate's ``cer`` field: standard padded base64 of the DER."""
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
