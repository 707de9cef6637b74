"""Issuing certificates as the ``Self`` issuer does, CSRs for outside CAs, and the fields Key Vault derives."""

from __future__ import annotations

import base64
import calendar
import hashlib
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

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


def _key_usage(names: list[str]) -> x509.KeyUsage:
    """Build a KeyUsage extension from Key Vault key-usage names."""
    unknown = [name for name in names if name not in KEY_USAGES]
    if unknown:
        raise MaterialError(f"Unknown key usage value(s): {', '.join(unknown)}. Allowed: {', '.join(KEY_USAGES)}.")
    try:
        return x509.KeyUsage(**{attribute: name in names for name, attribute in KEY_USAGES.items()})
    except ValueError as exc:
        raise MaterialError("encipherOnly and decipherOnly require keyAgreement.") from exc


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


def self_signed_certificate(
    key: PrivateKey,
    *,
    subject: str,
    dns_names: list[str] | None = None,
    validity_months: int = 12,
    ekus: list[str] | None = None,
    key_usage: list[str] | None = None,
    not_before: datetime | None = None,
) -> x509.Certificate:
    """Issue a self-signed end-entity certificate as Key Vault's "Self" issuer does.

    SHA-256 signature, random serial, basicConstraints CA=false. EKU/key-usage/SAN extensions are only added
    when given non-empty (policy defaults are the caller's business). A naive ``not_before`` is taken as UTC.
    """
    key_type_of(key)
    if validity_months < 1:
        raise MaterialError("validity_months must be at least 1.")
    name = parse_subject(subject)
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
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if dns_names:
        try:
            san = x509.SubjectAlternativeName([x509.DNSName(dns) for dns in dns_names])
        except (ValueError, TypeError) as exc:
            raise MaterialError(f"Invalid DNS name in subject alternative names: {exc}") from exc
        builder = builder.add_extension(san, critical=False)
    if ekus:
        builder = builder.add_extension(_extended_key_usage(ekus), critical=False)
    if key_usage:
        builder = builder.add_extension(_key_usage(key_usage), critical=True)
    try:
        return builder.sign(key, hashes.SHA256())
    except ValueError as exc:
        raise MaterialError(f"The certificate could not be created: {exc}") from exc


def certificate_signing_request(key: PrivateKey, *, subject: str) -> bytes:
    """Create a DER PKCS#10 CSR for ``subject`` signed with ``key`` (SHA-256), as pending certificates expose."""
    key_type_of(key)
    csr = x509.CertificateSigningRequestBuilder().subject_name(parse_subject(subject)).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


def x5t(cert: x509.Certificate) -> str:
    """Return the certificate thumbprint as Key Vault sends it: base64url (no padding) SHA-1 of the DER."""
    return b64url_encode(hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).digest())


def cer(cert: x509.Certificate) -> str:
    """Return the certificate's ``cer`` field: standard padded base64 of the DER."""
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
