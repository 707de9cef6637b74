"""Azure AD as the emulator plays it: RS256 JWT access tokens, their validation by a vault, and the 401 challenge.

Tokens have the shape of the AAD v1 tokens a managed identity gets (``ver`` 1.0, ``iss`` ``https://sts.windows.net/
{tenant}/``, ``aud`` = the resource asked for), because clients read them: az CLI decodes ``tid`` after ``az login
--identity`` to find the tenant. The signing key comes from the state directory (``authority-key.pem``), so every
emulator process sharing that directory accepts the others' tokens, and a token from any other signer is refused with
Key Vault's own message for an unknown signing key.

A vault validates, in this order: the header form, the signing key (``kid``) and RS256 signature, the lifetime
(``nbf``/``exp``, five minutes of clock skew as Microsoft's token validators allow), the audience and the issuer's
tenant. Every refusal is the 401 challenge with the service's message (facts §1.1, §10); the messages without a known
live original are marked below.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kvmigrate.emulator import statefiles
from kvmigrate.emulator.errors import KeyVaultError
from kvmigrate.emulator.material.encoding import b64url_decode, b64url_encode

RESOURCE = "https://vault.azure.net"
#: Key Vault's first-party application id; AAD v2 tokens name the resource by it (seen in AKV10022 messages).
KEY_VAULT_APP_ID = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"
#: The audiences a vault accepts. Not ``https://vault.azure.net/``: Key Vault refuses the trailing slash with
#: AKV10022 (Azure/go-autorest#525, Azure/azure-sdk-for-net#4051, MicrosoftDocs/azure-docs#33212).
VAULT_AUDIENCES = frozenset({RESOURCE, KEY_VAULT_APP_ID})
#: Azure Resource Manager's resource ids; ARM takes tokens for either, with or without the trailing slash.
ARM_RESOURCE_IDS = (
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
    "https://management.azure.com/",
    "https://management.azure.com",
)
ARM_AUDIENCES = frozenset(ARM_RESOURCE_IDS)
DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
#: The emulated managed identity (the 403 messages of app.py name the same ids).
CLIENT_ID = "00000000-0000-0000-0000-00000000e1e1"
OBJECT_ID = "00000000-0000-0000-0000-00000000e1e1"
TOKEN_LIFETIME = 3600
CLOCK_SKEW = 300
KEY_FILE = "authority-key.pem"
MALFORMED = "Error validating token: the token is not a well-formed JWT (header.payload.signature)."


def unb64url(text: str) -> bytes:
    """A JWS segment: base64url that is never padded (RFC 7515 §2), so padding is refused, not tolerated."""
    if not text or "=" in text:
        raise ValueError("not base64url without padding")
    return b64url_decode(text)


def issuer(tenant: str) -> str:
    """The AAD v1 issuer of a tenant, as ``iss`` carries it and AKV10032 prints it."""
    return f"https://sts.windows.net/{tenant}/"


class TokenRejected(Exception):
    """A bearer token failed validation.

    ``reason`` is one of ``malformed``, ``unknown-key``, ``signature``, ``expired``, ``not-yet-valid``, ``audience``,
    ``issuer``; ``message`` is Key Vault's wording, which other resources (ARM) replace with their own by reason.
    """

    def __init__(self, reason: str, message: str, *, claims: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.claims = claims or {}


@dataclass
class TokenAuthority:
    """Issue and verify the emulated Azure AD's tokens; the identity header is App Service's shared secret.

    ``tenant`` is the managed identity's home tenant: every token carries it as ``tid`` and in ``iss``, so a vault
    configured for another tenant refuses it (AKV10032), as Key Vault refuses a token from a foreign directory.
    """

    key: rsa.RSAPrivateKey = field(default_factory=lambda: _new_key())
    tenant: str = DEFAULT_TENANT
    identity_header: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    lifetime: int = TOKEN_LIFETIME
    client_id: str = CLIENT_ID
    object_id: str = OBJECT_ID

    @classmethod
    def from_state_dir(cls, directory: Path, **kwargs: Any) -> TokenAuthority:
        """Load the directory's signing key or create it (0600, O_EXCL); the caller holds ``statefiles.locked``."""
        path = directory / KEY_FILE
        pem = statefiles.read_private(path)
        if pem is None:
            pem = _new_key().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            if not statefiles.create_private(path, pem):
                raise statefiles.StateDirError(f"{path} appeared while the state directory was locked")
        loaded = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise statefiles.StateDirError(f"{path} is not an RSA private key")
        return cls(key=loaded, **kwargs)

    @property
    def kid(self) -> str:
        """The key id in the JWT header: base64url SHA-1 of the public key, shaped like AAD's ``kid``/``x5t``."""
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return b64url_encode(hashlib.sha1(der).digest())  # noqa: S324 - an identifier, as x5t is, not a security hash

    # -- issuing --------------------------------------------------------------------------------------------------
    def sign(self, claims: dict[str, Any], *, header: dict[str, Any] | None = None) -> str:
        """A compact RS256 JWS of ``claims`` (tests use it to forge expired, foreign or misdirected tokens)."""
        head = header if header is not None else {"typ": "JWT", "alg": "RS256", "x5t": self.kid, "kid": self.kid}
        signing_input = f"{b64url_encode(_json(head))}.{b64url_encode(_json(claims))}"
        signature = self.key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url_encode(signature)}"

    def claims(self, audience: str, *, now: float | None = None, tenant: str | None = None) -> dict[str, Any]:
        """The claims of an AAD v1 app-only token for ``audience``, as a managed identity receives it."""
        issued = int(now if now is not None else time.time())
        tid = tenant or self.tenant
        return {
            "aud": audience,
            "iss": issuer(tid),
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.lifetime,
            "aio": b64url_encode(secrets.token_bytes(30)),
            "appid": self.client_id,
            "appidacr": "2",
            "idp": issuer(tid),
            "idtyp": "app",
            "oid": self.object_id,
            "sub": self.object_id,
            "tid": tid,
            "uti": b64url_encode(uuid.uuid4().bytes)[:22],
            "ver": "1.0",
            "xms_mirid": f"/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/emulator/providers/"
            f"Microsoft.Web/sites/kvmigrate-emulator-{self.client_id[-4:]}",
        }

    def issue(self, resource: str, *, now: float | None = None, tenant: str | None = None) -> tuple[str, int]:
        """A token for ``resource`` (the ``aud``) and its expiry in epoch seconds."""
        claims = self.claims(resource, now=now, tenant=tenant)
        return self.sign(claims), int(claims["exp"])

    # -- verifying ------------------------------------------------------------------------------------------------
    def verify(self, token: str, *, now: float | None = None) -> dict[str, Any]:
        """The claims of ``token`` if this authority signed it and it is within its lifetime; else TokenRejected.

        Audience and issuer are the resource's business (``check_vault_token``, the ARM app), as in Azure.
        """
        parts = token.split(".")
        try:
            if len(parts) != 3:
                raise ValueError("not three segments")
            header = json.loads(unb64url(parts[0]))
            claims = json.loads(unb64url(parts[1]))
            signature = unb64url(parts[2]) if parts[2] else b""  # an unsigned JWS is refused below
            if not isinstance(header, dict) or not isinstance(claims, dict):
                raise ValueError("header or payload is not a JSON object")
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            # Guess: no live answer to a non-JWT bearer token is on record.
            raise TokenRejected("malformed", MALFORMED) from exc
        if header.get("kid") != self.kid:
            # The live message for a token whose signing key the service does not know (2025-26, terraform logs).
            raise TokenRejected(
                "unknown-key",
                f"AKV10046: Unable to resolve the key used for signature validation. EncodedJwtHeader: '{parts[0]}'.",
            )
        try:
            if header.get("alg") != "RS256":
                raise InvalidSignature
            self.key.public_key().verify(
                signature, f"{parts[0]}.{parts[1]}".encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature as exc:
            # Guess: the wording of a bad signature under a known key is not on record.
            raise TokenRejected("signature", "Error validating token: the signature is invalid.") from exc
        moment = now if now is not None else time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, int | float) or exp + CLOCK_SKEW <= moment:
            # The live message, 2022 (Azure/azure-sdk-for-python#27266).
            raise TokenRejected("expired", "[TokenExpired] Error validating token: 'S2S12086'.", claims=claims)
        if isinstance(nbf, int | float) and nbf - CLOCK_SKEW > moment:
            raise TokenRejected("not-yet-valid", "[TokenNotYetValid] Error validating token.", claims=claims)  # guess
        return claims

    def is_valid(self, token: str, *, now: float | None = None) -> bool:
        """True when a vault of this authority's tenant would accept ``token``."""
        try:
            check_vault_token(self, token, self.tenant, now=now)
        except TokenRejected:
            return False
        return True


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def check_vault_token(authority: TokenAuthority, token: str, tenant: str, *, now: float | None = None) -> None:
    """Raise TokenRejected with Key Vault's message unless a vault of ``tenant`` accepts ``token``."""
    claims = authority.verify(token, now=now)
    audience = claims.get("aud")
    if audience not in VAULT_AUDIENCES:
        raise TokenRejected(
            "audience",
            f"AKV10022: Invalid audience. Expected {RESOURCE} or {KEY_VAULT_APP_ID}, found: {audience}.",
            claims=claims,
        )
    expected = (issuer(tenant), f"https://login.microsoftonline.com/{tenant}/v2.0")
    if claims.get("iss") not in expected or claims.get("tid") != tenant:
        raise TokenRejected(
            "issuer",
            f"AKV10032: Invalid issuer. Expected one of {', '.join(expected)}, found {claims.get('iss')}.",
            claims=claims,
        )


def challenge_resource(host: str | None, port: int | None) -> str:
    """The ``resource`` a vault's challenge names for the host and port the client addressed.

    Key Vault always says ``https://vault.azure.net``. The SDK checks that the request's netloc ends with
    ``"." + <resource netloc>`` (the port counts), so a vault published as ``NAME.vault.azure.net`` on a port other
    than 443 names the resource with that port: then the unmodified SDK accepts it, asks for
    ``https://vault.azure.net:PORT/.default``, and the identity endpoint answers with a normal Key Vault token.
    """
    if host and host.lower().endswith(".vault.azure.net") and port not in (None, 443):
        return f"{RESOURCE}:{port}"
    return RESOURCE


def challenge(
    tenant: str,
    *,
    message: str = "AKV10000: Request is missing a Bearer or PoP token.",
    resource: str = RESOURCE,
) -> KeyVaultError:
    """The 401 Key Vault sends to a request without a (valid) token (facts §1.1)."""
    header = f'Bearer authorization="https://login.windows.net/{tenant}", resource="{resource}"'
    return KeyVaultError(401, "Unauthorized", message, headers={"WWW-Authenticate": header})


def check_request(request: web.Request, authority: TokenAuthority, tenant: str) -> None:
    """Raise the 401 challenge unless the request carries a token a vault of ``tenant`` accepts."""
    resource = challenge_resource(request.url.host, request.url.explicit_port)
    value = request.headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise challenge(tenant, resource=resource)
    try:
        check_vault_token(authority, token.strip(), tenant)
    except TokenRejected as rejected:
        raise challenge(tenant, message=rejected.message, resource=resource) from None
