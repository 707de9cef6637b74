"""Cryptographic helpers for the emulator's Key Vault keys and certificates.

The emulator has to mint, import, export and describe RSA/EC keys and X.509 certificates exactly the way the
Azure Key Vault data plane puts them on the wire (JWK members, x5t, cer, PFX/PEM secret values).  Keeping all
of that here, pure and IO-free, lets the HTTP layer stay thin and lets the crypto be unit-tested in isolation.
Every bad input surfaces as MaterialError, which the emulator maps to HTTP 400.  Nothing here prints or logs
key material.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import re
from datetime import UTC, datetime
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

__all__ = [
    "MaterialError",
    "PrivateKey",
    "b64url_decode",
    "b64url_encode",
    "cer",
    "certificate_signing_request",
    "curve_name",
    "export_secret_value",
    "generate_key",
    "key_type_of",
    "load_certificate_import",
    "private_key_from_jwk",
    "private_key_from_pem",
    "private_key_to_pem",
    "public_jwk",
    "public_jwk_matches",
    "self_signed_certificate",
    "x5t",
]

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

PKCS12_CONTENT_TYPE = "application/x-pkcs12"
PEM_CONTENT_TYPE = "application/x-pem-file"

RSA_KEY_SIZES = (2048, 3072, 4096)
DEFAULT_RSA_KEY_SIZE = 2048
DEFAULT_PUBLIC_EXPONENT = 65537
DEFAULT_CURVE = "P-256"

_RSA_KTYS = frozenset({"RSA", "RSA-HSM"})
_EC_KTYS = frozenset({"EC", "EC-HSM"})

# Key Vault curve name -> (cryptography curve class, coordinate byte length).
_CURVES: dict[str, tuple[type[ec.EllipticCurve], int]] = {
    "P-256": (ec.SECP256R1, 32),
    "P-384": (ec.SECP384R1, 48),
    "P-521": (ec.SECP521R1, 66),
    "P-256K": (ec.SECP256K1, 32),
}
_CURVE_BY_OPENSSL_NAME: dict[str, str] = {cls().name: kv_name for kv_name, (cls, _) in _CURVES.items()}

_KEY_USAGE_NAMES = (
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

# X.500 attribute short names accepted in subjects (matched case-insensitively).
_NAME_ATTRIBUTES: dict[str, x509.ObjectIdentifier] = {
    "CN": NameOID.COMMON_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "S": NameOID.STATE_OR_PROVINCE_NAME,
    "C": NameOID.COUNTRY_NAME,
    "E": NameOID.EMAIL_ADDRESS,
    "EMAIL": NameOID.EMAIL_ADDRESS,
    "EMAILADDRESS": NameOID.EMAIL_ADDRESS,
    "STREET": NameOID.STREET_ADDRESS,
    "DC": NameOID.DOMAIN_COMPONENT,
    "UID": NameOID.USER_ID,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER,
    "T": NameOID.TITLE,
    "TITLE": NameOID.TITLE,
    "G": NameOID.GIVEN_NAME,
    "GN": NameOID.GIVEN_NAME,
    "GIVENNAME": NameOID.GIVEN_NAME,
    "SN": NameOID.SURNAME,
}
_DOTTED_OID_RE = re.compile(r"^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$")
_B64URL_RE = re.compile(r"^[A-Za-z0-9_-]*$")
_PEM_BLOCK_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)

_PEM_FORMAT_MESSAGE = (
    "The specified PEM X.509 certificate content is in an unexpected format. "
    "Please check if certificate is in valid PEM format."
)
_PEM_NO_KEY_MESSAGE = (
    "Private key is not specified in the specified X.509 PEM certificate content. "
    "Please specify private key in the X.509 PEM certificate content."
)
_PFX_FORMAT_MESSAGE = (
    "The specified PKCS#12 X.509 certificate content can not be read. "
    "Please check if certificate is in valid PKCS#12 format and the password is correct."
)
_PFX_NO_KEY_MESSAGE = (
    "Private key is not specified in the specified PKCS#12 X.509 certificate content. "
    "Please specify private key in the PKCS#12 X.509 certificate content."
)


class MaterialError(ValueError):
    """Bad key or certificate input (the emulator maps it to HTTP 400)."""


# --------------------------------------------------------------------------------------------------------------------
# base64 / integers


def b64url_encode(data: bytes) -> str:
    """Encode bytes as base64url without padding, as JWK members are sent."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url, tolerating missing padding.

    Clients differ on whether they pad, so both forms are accepted; anything outside the url-safe alphabet
    (or an impossible length) raises MaterialError rather than silently decoding garbage.
    """
    if not isinstance(text, str):
        raise MaterialError("Expected a base64url-encoded string.")
    stripped = text.rstrip("=")
    if not _B64URL_RE.match(stripped) or len(stripped) % 4 == 1:
        raise MaterialError("Value is not valid base64url.")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MaterialError("Value is not valid base64url.") from exc


def _b64_std_decode(text: str) -> bytes:
    """Decode standard base64, tolerating whitespace and missing padding."""
    compact = "".join(text.split()).rstrip("=")
    if len(compact) % 4 == 1:
        raise binascii.Error("impossible base64 length")
    return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)


def _int_to_b64url(value: int, length: int | None = None) -> str:
    """Encode a non-negative integer big-endian, minimal or left-padded to ``length`` bytes."""
    size = max(1, (value.bit_length() + 7) // 8) if length is None else length
    return b64url_encode(value.to_bytes(size, "big"))


def _jwk_opt_int(jwk: dict[str, object], member: str) -> int | None:
    """Read an optional base64url big-endian unsigned integer member from a JWK."""
    raw = jwk.get(member)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise MaterialError(f"The JSON Web Key member '{member}' must be a base64url string.")
    data = b64url_decode(raw)
    if not data:
        raise MaterialError(f"The JSON Web Key member '{member}' is empty.")
    return int.from_bytes(data, "big")


def _jwk_int(jwk: dict[str, object], member: str) -> int:
    """Read a required base64url big-endian unsigned integer member from a JWK."""
    value = _jwk_opt_int(jwk, member)
    if value is None:
        raise MaterialError(f"The JSON Web Key is missing the required member '{member}'.")
    return value


# --------------------------------------------------------------------------------------------------------------------
# keys


def _curve_for(crv: str) -> tuple[ec.EllipticCurve, int]:
    """Map a Key Vault curve name to a curve instance and its coordinate byte length."""
    entry = _CURVES.get(crv)
    if entry is None:
        supported = ", ".join(_CURVES)
        raise MaterialError(f"The specified curve '{crv}' is not supported. Supported curves: {supported}.")
    cls, length = entry
    return cls(), length


def generate_key(
    kty: str, *, size: int | None = None, crv: str | None = None, public_exponent: int | None = None
) -> PrivateKey:
    """Generate a new private key for a Key Vault create-key request.

    ``size``/``public_exponent`` apply to RSA and ``crv`` to EC; the irrelevant ones are ignored, as Key Vault does.
    """
    if kty in _RSA_KTYS:
        key_size = DEFAULT_RSA_KEY_SIZE if size is None else size
        if key_size not in RSA_KEY_SIZES:
            allowed = ", ".join(str(s) for s in RSA_KEY_SIZES)
            raise MaterialError(f"The specified key size {key_size} is not valid for {kty} keys. Allowed: {allowed}.")
        exponent = DEFAULT_PUBLIC_EXPONENT if public_exponent is None else public_exponent
        try:
            return rsa.generate_private_key(public_exponent=exponent, key_size=key_size)
        except ValueError as exc:
            raise MaterialError(f"The specified public exponent {exponent} is not supported.") from exc
    if kty in _EC_KTYS:
        curve, _ = _curve_for(DEFAULT_CURVE if crv is None else crv)
        return ec.generate_private_key(curve)
    raise MaterialError(f"The specified key type '{kty}' is not supported. Supported: RSA, RSA-HSM, EC, EC-HSM.")


def key_type_of(key: PrivateKey) -> str:
    """Return the base JWK key type ("RSA" or "EC") of a private key."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "EC"
    raise MaterialError("Only RSA and EC keys are supported.")


def curve_name(key: PrivateKey) -> str | None:
    """Return the Key Vault curve name of an EC key, or None for RSA."""
    if isinstance(key, rsa.RSAPrivateKey):
        return None
    name = _CURVE_BY_OPENSSL_NAME.get(key.curve.name)
    if name is None:
        raise MaterialError(f"The curve '{key.curve.name}' is not supported.")
    return name


def public_jwk(key: PrivateKey, *, kid: str, kty: str, key_ops: list[str]) -> dict[str, object]:
    """Build the public JSON Web Key that Key Vault returns for a key.

    ``kty`` is echoed as given so "-HSM" variants survive; EC coordinates are padded to the curve length.
    """
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        return {
            "kid": kid,
            "kty": kty,
            "key_ops": list(key_ops),
            "n": _int_to_b64url(numbers.n),
            "e": _int_to_b64url(numbers.e),
        }
    crv = curve_name(key) or DEFAULT_CURVE  # never None for an EC key
    _, length = _curve_for(crv)
    point = key.public_key().public_numbers()
    return {
        "kid": kid,
        "kty": kty,
        "key_ops": list(key_ops),
        "crv": crv,
        "x": _int_to_b64url(point.x, length),
        "y": _int_to_b64url(point.y, length),
    }


def _rsa_from_jwk(jwk: dict[str, object]) -> rsa.RSAPrivateKey:
    """Rebuild and validate an RSA private key from JWK members."""
    n = _jwk_int(jwk, "n")
    e = _jwk_int(jwk, "e")
    d = _jwk_int(jwk, "d")
    p = _jwk_int(jwk, "p")
    q = _jwk_int(jwk, "q")
    if p < 2 or q < 2 or p * q != n:
        raise MaterialError("The RSA key is invalid: p * q does not equal n.")
    lam = (p - 1) * (q - 1) // _gcd(p - 1, q - 1)
    if e < 3 or e % 2 == 0 or d >= n or (d * e) % lam != 1:
        raise MaterialError("The RSA key is invalid: the private exponent does not match the public exponent.")
    expected = {"dp": d % (p - 1), "dq": d % (q - 1), "qi": pow(q, -1, p)}
    for member, value in expected.items():
        given = _jwk_opt_int(jwk, member)
        if given is not None and given != value:
            raise MaterialError(f"The RSA key is invalid: member '{member}' is inconsistent with the other members.")
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=expected["dp"],
        dmq1=expected["dq"],
        iqmp=expected["qi"],
        public_numbers=rsa.RSAPublicNumbers(e=e, n=n),
    )
    try:
        return numbers.private_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise MaterialError("The RSA key is invalid.") from exc


def _gcd(a: int, b: int) -> int:
    """Return the greatest common divisor (kept local so the RSA checks read plainly)."""
    while b:
        a, b = b, a % b
    return a


def _ec_from_jwk(jwk: dict[str, object]) -> ec.EllipticCurvePrivateKey:
    """Rebuild and validate an EC private key from JWK members."""
    crv = jwk.get("crv")
    if not isinstance(crv, str):
        raise MaterialError("The JSON Web Key is missing the required member 'crv'.")
    curve, length = _curve_for(crv)
    for member in ("x", "y", "d"):
        raw = jwk.get(member)
        if isinstance(raw, str) and len(b64url_decode(raw)) > length:
            raise MaterialError(f"The JSON Web Key member '{member}' is too long for curve {crv}.")
    x = _jwk_int(jwk, "x")
    y = _jwk_int(jwk, "y")
    d = _jwk_int(jwk, "d")
    public_numbers = ec.EllipticCurvePublicNumbers(x=x, y=y, curve=curve)
    try:
        key = ec.EllipticCurvePrivateNumbers(private_value=d, public_numbers=public_numbers).private_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise MaterialError("The EC key is invalid.") from exc
    derived = key.public_key().public_numbers()
    if (derived.x, derived.y) != (x, y):
        raise MaterialError("The EC key is invalid: the private value does not match the public point.")
    return key


def private_key_from_jwk(jwk: dict[str, object]) -> PrivateKey:
    """Build a private key from an import-key JWK, validating that all members are consistent.

    RSA needs n, e, d, p and q (dp, dq, qi are derived when absent and checked when present); EC needs crv, x, y, d.
    """
    kty = jwk.get("kty")
    if kty in _RSA_KTYS:
        return _rsa_from_jwk(jwk)
    if kty in _EC_KTYS:
        return _ec_from_jwk(jwk)
    raise MaterialError(
        f"The JSON Web Key type '{kty}' is not supported for import. Supported: RSA, RSA-HSM, EC, EC-HSM."
    )


def private_key_to_pem(key: PrivateKey) -> bytes:
    """Serialize a private key as unencrypted PKCS#8 PEM (only for the emulator's own storage)."""
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def _require_supported(key: object, message: str) -> PrivateKey:
    """Narrow a loaded key to RSA/EC, raising MaterialError for anything else."""
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name not in _CURVE_BY_OPENSSL_NAME:
            raise MaterialError(f"The curve '{key.curve.name}' is not supported.")
        return key
    raise MaterialError(message)


def private_key_from_pem(data: bytes) -> PrivateKey:
    """Load an unencrypted PEM private key (PKCS#8 or traditional) produced by private_key_to_pem.

    Only the emulator's own stored keys come through here, so the full RSA consistency check (about 0.3 s for a
    4096-bit key, on every request that renders one) is skipped; keys from outside go through private_key_from_jwk
    or load_certificate_import, which validate.
    """
    try:
        key = serialization.load_pem_private_key(data, password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise MaterialError("The private key PEM could not be read.") from exc
    return _require_supported(key, "Only RSA and EC private keys are supported.")


def _public_der(key: PrivateKey) -> bytes:
    """Return the SubjectPublicKeyInfo DER of a key's public half, for equality checks."""
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _cert_matches_key(cert: x509.Certificate, key: PrivateKey) -> bool:
    """Tell whether a certificate carries the public half of ``key``."""
    try:
        cert_der = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (ValueError, UnsupportedAlgorithm):
        return False
    return cert_der == _public_der(key)


def public_jwk_matches(key: PrivateKey, jwk: dict[str, object]) -> bool:
    """Tell whether a (public) JWK describes the public half of ``key``; never raises."""
    try:
        kty = jwk.get("kty")
        if isinstance(key, rsa.RSAPrivateKey):
            numbers = key.public_key().public_numbers()
            return kty in _RSA_KTYS and (_jwk_int(jwk, "n"), _jwk_int(jwk, "e")) == (numbers.n, numbers.e)
        point = key.public_key().public_numbers()
        return (
            kty in _EC_KTYS
            and jwk.get("crv") == curve_name(key)
            and (_jwk_int(jwk, "x"), _jwk_int(jwk, "y")) == (point.x, point.y)
        )
    except MaterialError:
        return False


# --------------------------------------------------------------------------------------------------------------------
# subjects


def _split_unescaped(text: str, separators: str) -> list[str]:
    """Split on separators that are neither backslash-escaped nor inside double quotes (escapes are kept)."""
    parts: list[str] = []
    current: list[str] = []
    in_quotes = False
    escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            in_quotes = not in_quotes
        elif char in separators and not in_quotes:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if in_quotes or escaped:
        raise MaterialError("unbalanced quote or dangling escape")
    parts.append("".join(current))
    return parts


def _unescape_value(raw: str) -> str:
    """Turn an RFC 4514-style attribute value (optionally quoted, with \\X or \\HH escapes) into text."""
    value = raw.strip()
    if value.endswith("\\") and raw.rstrip() != raw:
        value += " "  # an escaped trailing space was cut by strip()
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        value = value[1:-1]
    out = bytearray()
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\":
            if i + 1 >= len(value):
                raise MaterialError("dangling escape")
            pair = value[i + 1 : i + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                out.append(int(pair, 16))
                i += 3
                continue
            out.extend(value[i + 1].encode("utf-8"))
            i += 2
            continue
        if char == '"':
            raise MaterialError("unexpected quote")
        out.extend(char.encode("utf-8"))
        i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MaterialError("invalid UTF-8 in escaped value") from exc


def _parse_subject(subject: str) -> x509.Name:
    """Parse an X.500 subject such as "CN=a, O=b" into an x509.Name.

    RDNs are separated by ',' or ';' and multi-valued RDNs by '+'. As in RFC 4514 the first RDN written is the
    most specific, i.e. the last one encoded, so ``Name.rfc4514_string()`` reads back in the order given.
    """
    if not isinstance(subject, str) or not subject.strip():
        raise MaterialError("The certificate subject must not be empty.")
    try:
        rdns: list[x509.RelativeDistinguishedName] = []
        for rdn_text in _split_unescaped(subject, ",;"):
            attributes: list[x509.NameAttribute[str]] = []
            for ava in _split_unescaped(rdn_text, "+"):
                name, sep, raw_value = ava.partition("=")
                name = name.strip()
                if not sep or not name:
                    raise MaterialError(f"'{ava.strip()}' is not of the form NAME=value")
                oid = _NAME_ATTRIBUTES.get(name.upper())
                if oid is None:
                    if not _DOTTED_OID_RE.match(name):
                        raise MaterialError(f"unknown attribute '{name}'")
                    oid = x509.ObjectIdentifier(name)
                value = _unescape_value(raw_value)
                if not value:
                    raise MaterialError(f"attribute '{name}' has an empty value")
                attributes.append(x509.NameAttribute(oid, value))
            rdns.append(x509.RelativeDistinguishedName(attributes))
        return x509.Name(list(reversed(rdns)))
    except (MaterialError, ValueError) as exc:
        raise MaterialError(
            f"The certificate subject '{subject}' is not a valid X.500 distinguished name: {exc}"
        ) from exc


# --------------------------------------------------------------------------------------------------------------------
# certificates


def _add_months(moment: datetime, months: int) -> datetime:
    """Add calendar months, clamping the day to the target month's length."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _key_usage(names: list[str]) -> x509.KeyUsage:
    """Build a KeyUsage extension from Key Vault key-usage names."""
    unknown = [name for name in names if name not in _KEY_USAGE_NAMES]
    if unknown:
        raise MaterialError(
            f"Unknown key usage value(s): {', '.join(unknown)}. Allowed: {', '.join(_KEY_USAGE_NAMES)}."
        )
    flags = set(names)
    try:
        return x509.KeyUsage(
            digital_signature="digitalSignature" in flags,
            content_commitment="nonRepudiation" in flags,
            key_encipherment="keyEncipherment" in flags,
            data_encipherment="dataEncipherment" in flags,
            key_agreement="keyAgreement" in flags,
            key_cert_sign="keyCertSign" in flags,
            crl_sign="cRLSign" in flags,
            encipher_only="encipherOnly" in flags,
            decipher_only="decipherOnly" in flags,
        )
    except ValueError as exc:
        raise MaterialError("encipherOnly and decipherOnly require keyAgreement.") from exc


def _extended_key_usage(oids: list[str]) -> x509.ExtendedKeyUsage:
    """Build an ExtendedKeyUsage extension from dotted OIDs."""
    parsed: list[x509.ObjectIdentifier] = []
    for oid in oids:
        if not isinstance(oid, str) or not _DOTTED_OID_RE.match(oid):
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
    name = _parse_subject(subject)
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
    csr = x509.CertificateSigningRequestBuilder().subject_name(_parse_subject(subject)).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


def _load_pem_import(data: bytes, password: str | None) -> tuple[PrivateKey, x509.Certificate, list[x509.Certificate]]:
    """Split PEM import content into private key, leaf certificate (the one matching the key) and chain."""
    keys: list[PrivateKey] = []
    certs: list[x509.Certificate] = []
    pw = password.encode("utf-8") if password else None
    blocks = list(_PEM_BLOCK_RE.finditer(data))
    if not blocks:
        raise MaterialError(_PEM_FORMAT_MESSAGE)
    for match in blocks:
        label = match.group(1)
        block = match.group(0)
        try:
            if label == b"CERTIFICATE":
                certs.append(x509.load_pem_x509_certificate(block))
            elif label.endswith(b"PRIVATE KEY"):
                try:
                    loaded = serialization.load_pem_private_key(block, password=pw)
                except TypeError:
                    # Either an unencrypted key given a password, or an encrypted key given none.
                    if pw is None:
                        raise MaterialError(
                            "The private key in the specified X.509 PEM certificate content is encrypted "
                            "but no password was specified."
                        ) from None
                    loaded = serialization.load_pem_private_key(block, password=None)
                keys.append(_require_supported(loaded, "Only RSA and EC private keys are supported."))
        except MaterialError:
            raise
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            hint = " If the private key is encrypted, check the password." if label.endswith(b"PRIVATE KEY") else ""
            raise MaterialError(_PEM_FORMAT_MESSAGE + hint) from exc
    if not keys:
        raise MaterialError(_PEM_NO_KEY_MESSAGE)
    if len(keys) > 1:
        raise MaterialError("The specified X.509 PEM certificate content contains more than one private key.")
    if not certs:
        raise MaterialError(
            "No certificate is specified in the specified X.509 PEM certificate content. "
            "Please specify a certificate matching the private key."
        )
    return _pick_leaf(keys[0], certs)


def _pick_leaf(
    key: PrivateKey, certs: list[x509.Certificate]
) -> tuple[PrivateKey, x509.Certificate, list[x509.Certificate]]:
    """Pick the first certificate matching ``key`` as leaf; the others, in order, are the chain."""
    for index, cert in enumerate(certs):
        if _cert_matches_key(cert, key):
            chain = [c for i, c in enumerate(certs) if i != index and c != cert]
            return key, cert, chain
    raise MaterialError("None of the certificates in the specified content matches the private key.")


def _load_pfx_import(data: bytes, password: str | None) -> tuple[PrivateKey, x509.Certificate, list[x509.Certificate]]:
    """Open PKCS#12 import content, trying the given password (or none/empty when none is given)."""
    candidates: list[bytes | None] = [password.encode("utf-8"), None] if password else [None, b""]
    last_error: Exception | None = None
    for candidate in candidates:
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, candidate)
            break
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            last_error = exc
    else:
        raise MaterialError(_PFX_FORMAT_MESSAGE) from last_error
    if key is None:
        raise MaterialError(_PFX_NO_KEY_MESSAGE)
    private_key = _require_supported(key, "Only RSA and EC private keys are supported.")
    certs = ([cert] if cert is not None else []) + list(extra)
    if not certs:
        raise MaterialError("No certificate is specified in the specified PKCS#12 X.509 certificate content.")
    if cert is not None and not _cert_matches_key(cert, private_key):
        # Some tools put the leaf among the "additional" certificates; fall back to matching by key.
        certs = list(extra) + [cert]
    return _pick_leaf(private_key, certs)


def load_certificate_import(
    value_b64: str, *, password: str | None, content_type: str | None
) -> tuple[PrivateKey, x509.Certificate, list[x509.Certificate]]:
    """Parse an import-certificate ``value`` into (private key, leaf certificate, chain).

    The value is standard base64 of a PFX or of PEM text; raw PEM text is tolerated too. PEM is chosen by
    ``content_type`` "application/x-pem-file" or by sniffing "-----BEGIN", otherwise PKCS#12 is assumed.
    """
    if not isinstance(value_b64, str) or not value_b64.strip():
        raise MaterialError("The certificate content must not be empty.")
    is_pem_type = (content_type or "").split(";")[0].strip().lower() == PEM_CONTENT_TYPE
    if value_b64.lstrip().startswith("-----BEGIN"):
        data = value_b64.encode("utf-8")
    else:
        try:
            data = _b64_std_decode(value_b64)
        except (binascii.Error, ValueError) as exc:
            message = _PEM_FORMAT_MESSAGE if is_pem_type else _PFX_FORMAT_MESSAGE
            raise MaterialError(f"{message} The value is not valid base64.") from exc
    if is_pem_type or data.lstrip().startswith(b"-----BEGIN"):
        return _load_pem_import(data, password)
    return _load_pfx_import(data, password)


def export_secret_value(
    key: PrivateKey, cert: x509.Certificate, chain: list[x509.Certificate], *, content_type: str
) -> str:
    """Render the value of a certificate's managed secret.

    PKCS#12: standard base64 of a password-less PFX with key, cert and chain. PEM: PKCS#8 key, cert, chain.
    """
    normalized = content_type.split(";")[0].strip().lower() if isinstance(content_type, str) else ""
    if normalized == PKCS12_CONTENT_TYPE:
        pfx = pkcs12.serialize_key_and_certificates(
            name=None,
            key=key,
            cert=cert,
            cas=list(chain) or None,
            encryption_algorithm=serialization.NoEncryption(),
        )
        return base64.b64encode(pfx).decode("ascii")
    if normalized == PEM_CONTENT_TYPE:
        parts = [private_key_to_pem(key)]
        parts.extend(c.public_bytes(serialization.Encoding.PEM) for c in [cert, *chain])
        return b"".join(parts).decode("ascii")
    raise MaterialError(
        f"The content type '{content_type}' is not supported. Supported: {PKCS12_CONTENT_TYPE}, {PEM_CONTENT_TYPE}."
    )


def x5t(cert: x509.Certificate) -> str:
    """Return the certificate thumbprint as Key Vault sends it: base64url (no padding) SHA-1 of the DER."""
    return b64url_encode(hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).digest())


def cer(cert: x509.Certificate) -> str:
    """Return the certificate's ``cer`` field: standard padded base64 of the DER."""
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
