"""Certificate containers: the PFX or PEM an import brings, and the PFX or PEM a certificate's secret holds."""

from __future__ import annotations

import base64
import binascii
import re

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from kvmigrate.emulator.material.base import (
    PEM_CONTENT_TYPE,
    PKCS12_CONTENT_TYPE,
    MaterialError,
    PrivateKey,
    cert_matches_key,
    require_supported,
)
from kvmigrate.emulator.material.encoding import b64_std_decode
from kvmigrate.emulator.material.keys import private_key_to_pem

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
                keys.append(require_supported(loaded, "Only RSA and EC private keys are supported."))
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
        if cert_matches_key(cert, key):
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
    private_key = require_supported(key, "Only RSA and EC private keys are supported.")
    certs = ([cert] if cert is not None else []) + list(extra)
    if not certs:
        raise MaterialError("No certificate is specified in the specified PKCS#12 X.509 certificate content.")
    if cert is not None and not cert_matches_key(cert, private_key):
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
            data = b64_std_decode(value_b64)
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


def load_merged_chain(values: list[str]) -> list[x509.Certificate]:
    """The certificates of a merge request's ``x5c``: the signed leaf first, then its chain.

    Each entry is standard base64 of either DER or PEM text. The JavaScript SDK documents the PEM form, and its
    recorded request sends the PEM body on one line with the END line but no BEGIN line; every variant of armour
    and line breaks is read.
    """
    certs: list[x509.Certificate] = []
    for position, value in enumerate(values):
        try:
            data = b64_std_decode(value)
            if data[:1] == b"\x30":
                certs.append(x509.load_der_x509_certificate(data))
            elif b"-----BEGIN" in data:
                certs.extend(x509.load_pem_x509_certificates(data))
            else:
                body = re.sub(rb"-----END [A-Z0-9 ]+-----|\s", b"", data)
                certs.append(x509.load_der_x509_certificate(b64_std_decode(body.decode("ascii"))))
        except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
            raise MaterialError(
                f"x5c[{position}] is not a base64 X.509 certificate (base64 of DER or of PEM text)."
            ) from exc
    return certs
