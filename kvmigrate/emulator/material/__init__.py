"""Cryptographic helpers for the emulator's Key Vault keys and certificates.

The emulator has to mint, import, export and describe RSA/EC keys and X.509 certificates exactly the way the Azure Key
Vault data plane puts them on the wire (JWK members, x5t, cer, PFX/PEM secret values). Keeping all of that here, pure
and IO-free, lets the HTTP layer stay thin and lets the crypto be unit-tested in isolation. Every bad input surfaces as
MaterialError, which the emulator maps to HTTP 400. Nothing here prints or logs key material.

One module per job: ``base`` (error, key types, curves), ``encoding`` (base64 forms), ``keys`` (generation, JWK,
PEM), ``names`` (X.500 subjects), ``issuing`` (self-signed certificates, CSRs, thumbprints) and ``containers``
(PFX/PEM import and export, merged chains).
"""

from kvmigrate.emulator.material.base import (
    DEFAULT_CURVE,
    DEFAULT_RSA_KEY_SIZE,
    PEM_CONTENT_TYPE,
    PKCS12_CONTENT_TYPE,
    RSA_KEY_SIZES,
    MaterialError,
    PrivateKey,
    curve_name,
    key_type_of,
)
from kvmigrate.emulator.material.containers import export_secret_value, load_certificate_import, load_merged_chain
from kvmigrate.emulator.material.encoding import b64url_decode, b64url_encode
from kvmigrate.emulator.material.issuing import (
    KEY_USAGES,
    cer,
    certificate_signing_request,
    key_usage_names,
    self_signed_certificate,
    x5t,
)
from kvmigrate.emulator.material.keys import (
    generate_key,
    private_key_from_jwk,
    private_key_from_pem,
    private_key_to_pem,
    public_jwk,
    public_jwk_matches,
)
from kvmigrate.emulator.material.names import subject_text

__all__ = [
    "DEFAULT_CURVE",
    "DEFAULT_RSA_KEY_SIZE",
    "KEY_USAGES",
    "PEM_CONTENT_TYPE",
    "PKCS12_CONTENT_TYPE",
    "RSA_KEY_SIZES",
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
    "key_usage_names",
    "load_certificate_import",
    "load_merged_chain",
    "private_key_from_jwk",
    "private_key_from_pem",
    "private_key_to_pem",
    "public_jwk",
    "public_jwk_matches",
    "self_signed_certificate",
    "subject_text",
    "x5t",
]
