"""What every material module shares: the error type, the key types, content types and the curve table."""

from __future__ import annotations

from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

PKCS12_CONTENT_TYPE = "application/x-pkcs12"
PEM_CONTENT_TYPE = "application/x-pem-file"

RSA_KEY_SIZES = (2048, 3072, 4096)
DEFAULT_RSA_KEY_SIZE = 2048
DEFAULT_PUBLIC_EXPONENT = 65537
DEFAULT_CURVE = "P-256"

RSA_KTYS = frozenset({"RSA", "RSA-HSM"})
EC_KTYS = frozenset({"EC", "EC-HSM"})

# Key Vault curve name -> (cryptography curve class, coordinate byte length).
CURVES: dict[str, tuple[type[ec.EllipticCurve], int]] = {
    "P-256": (ec.SECP256R1, 32),
    "P-384": (ec.SECP384R1, 48),
    "P-521": (ec.SECP521R1, 66),
    "P-256K": (ec.SECP256K1, 32),
}
CURVE_BY_OPENSSL_NAME: dict[str, str] = {cls().name: kv_name for kv_name, (cls, _) in CURVES.items()}


class MaterialError(ValueError):
    """Bad key or certificate input (the emulator maps it to HTTP 400)."""


def curve_for(crv: str) -> tuple[ec.EllipticCurve, int]:
    """Map a Key Vault curve name to a curve instance and its coordinate byte length."""
    entry = CURVES.get(crv)
    if entry is None:
        supported = ", ".join(CURVES)
        raise MaterialError(f"The specified curve '{crv}' is not supported. Supported curves: {supported}.")
    cls, length = entry
    return cls(), length


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
    name = CURVE_BY_OPENSSL_NAME.get(key.curve.name)
    if name is None:
        raise MaterialError(f"The curve '{key.curve.name}' is not supported.")
    return name


def require_supported(key: object, message: str) -> PrivateKey:
    """Narrow a loaded key to RSA/EC, raising MaterialError for anything else."""
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name not in CURVE_BY_OPENSSL_NAME:
            raise MaterialError(f"The curve '{key.curve.name}' is not supported.")
        return key
    raise MaterialError(message)


def public_der(key: PrivateKey) -> bytes:
    """Return the SubjectPublicKeyInfo DER of a key's public half, for equality checks."""
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def cert_matches_key(cert: x509.Certificate, key: PrivateKey) -> bool:
    """Tell whether a certificate carries the public half of ``key``."""
    try:
        cert_der = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (ValueError, UnsupportedAlgorithm):
        return False
    return cert_der == public_der(key)
