"""Tokens the emulator issues through an App Service-style managed-identity endpoint, and their verification.

Key Vault accepts only Azure AD tokens for ``https://vault.azure.net``; here the emulator plays Azure AD. A token is
``emu1.<payload>.<hmac>`` signed with a per-process key, so a token from another emulator process (or forged) is
refused exactly like a foreign token, and an expired one too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field

from aiohttp import web

from kvmigrate.emulator.errors import KeyVaultError

RESOURCE = "https://vault.azure.net"
TOKEN_LIFETIME = 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class TokenAuthority:
    """Issue and verify bearer tokens; the identity header is the App Service shared secret."""

    signing_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    identity_header: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    lifetime: int = TOKEN_LIFETIME

    def issue(self, resource: str, *, now: float | None = None) -> tuple[str, int]:
        expires = int((now if now is not None else time.time()) + self.lifetime)
        payload = _b64(json.dumps({"aud": resource, "exp": expires, "nonce": secrets.token_hex(4)}).encode())
        signature = _b64(hmac.new(self.signing_key, payload.encode(), hashlib.sha256).digest())
        return f"emu1.{payload}.{signature}", expires

    def is_valid(self, token: str, *, now: float | None = None) -> bool:
        """True when this authority issued ``token`` for Key Vault and it has not expired."""
        try:
            prefix, payload, signature = token.split(".")
            expected = _b64(hmac.new(self.signing_key, payload.encode(), hashlib.sha256).digest())
            if prefix != "emu1" or not hmac.compare_digest(signature, expected):
                return False
            claims = json.loads(_unb64(payload))
        except (ValueError, UnicodeDecodeError):
            return False
        audience = str(claims.get("aud", "")).rstrip("/")
        return audience == RESOURCE and float(claims.get("exp", 0)) > (now if now is not None else time.time())


def challenge(tenant: str, *, message: str = "AKV10000: Request is missing a Bearer or PoP token.") -> KeyVaultError:
    """The 401 Key Vault sends to a request without a (valid) token (facts §1.1)."""
    header = f'Bearer authorization="https://login.windows.net/{tenant}", resource="{RESOURCE}"'
    return KeyVaultError(401, "Unauthorized", message, headers={"WWW-Authenticate": header})


def check_request(request: web.Request, authority: TokenAuthority, tenant: str) -> None:
    """Raise the 401 challenge unless the request carries a valid bearer token."""
    value = request.headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if not value:
        raise challenge(tenant)
    if scheme.lower() != "bearer" or not authority.is_valid(token.strip()):
        # Guess: the real service answers a bad token with the same challenge and a different message.
        raise challenge(tenant, message="AKV10032: Invalid issuer or signature, or token expired.")


def identity_app(authority: TokenAuthority) -> web.Application:
    """The managed-identity endpoint (App Service 2019-08-01 protocol) that azure-identity already speaks."""

    async def token(request: web.Request) -> web.Response:
        if request.headers.get("X-IDENTITY-HEADER") != authority.identity_header:
            return web.json_response(
                {"error": "invalid_request", "error_description": "bad X-IDENTITY-HEADER"}, status=400
            )
        resource = request.query.get("resource", "")
        if resource.rstrip("/").removesuffix("/.default") != RESOURCE:
            return web.json_response(
                {"error": "invalid_resource", "error_description": f"this emulator issues tokens for {RESOURCE} only"},
                status=400,
            )
        access_token, expires = authority.issue(RESOURCE)
        return web.json_response(
            {
                "access_token": access_token,
                "expires_on": str(expires),
                "resource": RESOURCE,
                "token_type": "Bearer",
                "client_id": "00000000-0000-0000-0000-00000000e1e1",
            }
        )

    app = web.Application()
    app.router.add_get("/msi/token", token)
    return app
