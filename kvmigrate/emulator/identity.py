"""The managed-identity endpoint, speaking App Service's 2019-08-01 protocol exactly as clients expect it.

azure-identity (``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER``), MSAL's managed identity and so az CLI's ``az login
--identity`` all send ``GET {endpoint}?api-version=2019-08-01&resource=R`` with ``X-IDENTITY-HEADER``. The answer is
``{access_token, expires_on (epoch seconds, a string), resource, token_type, client_id}``; errors are App Service's
``{statusCode, message, correlationId}`` — MSAL prints ``statusCode, message``, which is why a body without those
fields made az say "ERROR: None, None".

Tokens are issued for Key Vault and Azure Resource Manager, the resources this emulator serves. Like Azure AD v1, the
token's ``aud`` is the resource as asked for (so ``https://vault.azure.net/`` gets a token that vaults refuse, as
Key Vault does); the one emulator-only form is ``https://vault.azure.net:PORT``, which a vault published on a port
other than 443 names in its challenge (``auth.challenge_resource``) and which gets a plain Key Vault token.
"""

from __future__ import annotations

import re
import sys
import uuid

from aiohttp import web

from kvmigrate.emulator.auth import ARM_AUDIENCES, RESOURCE, TokenAuthority

API_VERSION = "2019-08-01"
_VAULT_WITH_PORT = re.compile(r"^https://vault\.azure\.net:\d{1,5}/?$")
# App Service's live message for a resource Azure AD refuses (the endpoint answers 500, not 400).
UNKNOWN_RESOURCE = "An unexpected error occured while fetching the AAD Token."
# App Service's live message when the requested identity (client_id, object_id, mi_res_id) is not assigned.
UNKNOWN_IDENTITY = "Unable to load the proper Managed Identity."


def audience_for(resource: str) -> str | None:
    """The ``aud`` to issue for a requested resource (scope form accepted), or None for a resource not served here."""
    requested = resource.strip()
    requested = requested.removesuffix("/.default")
    if requested in (RESOURCE, RESOURCE + "/") or requested in ARM_AUDIENCES:
        return requested
    if _VAULT_WITH_PORT.match(requested):
        return RESOURCE
    return None


def _error(status: int, message: str) -> web.Response:
    correlation = str(uuid.uuid4())
    return web.json_response(
        {"statusCode": status, "message": message, "correlationId": correlation},
        status=status,
        headers={"X-CORRELATION-ID": correlation, "Server": "Kestrel"},
    )


def _note(text: str) -> None:
    """Say on the emulator's stderr why a token was refused: App Service's own message does not."""
    print(f"# identity endpoint: {text}", file=sys.stderr, flush=True)


def identity_app(authority: TokenAuthority) -> web.Application:
    """The App Service-style endpoint at ``/msi/token`` that azure-identity, MSAL and az CLI already speak."""
    resource_id = authority.claims(RESOURCE)["xms_mirid"]

    async def token(request: web.Request) -> web.Response:
        if request.headers.get("X-IDENTITY-HEADER") != authority.identity_header:
            _note("refused a request without the right X-IDENTITY-HEADER (IDENTITY_HEADER)")
            return _error(400, "The X-IDENTITY-HEADER header is missing or invalid.")  # guess: not on record
        query = request.query
        if query.get("api-version") != API_VERSION:
            _note(f"refused api-version {query.get('api-version')!r}; App Service's header protocol is {API_VERSION}")
            return _error(400, f"The api-version '{query.get('api-version', '')}' is not supported.")  # guess
        wanted = {
            "client_id": authority.client_id,
            "object_id": authority.object_id,
            "principal_id": authority.object_id,
            "mi_res_id": resource_id,
        }
        for parameter, ours in wanted.items():
            if parameter in query and query[parameter].lower() != ours.lower():
                _note(f"no identity with {parameter}={query[parameter]} (the emulated one: client_id {ours})")
                return _error(400, UNKNOWN_IDENTITY)
        resource = query.get("resource", "")
        audience = audience_for(resource)
        if audience is None:
            _note(f"refused resource {resource!r}: only {RESOURCE} and Azure Resource Manager are served here")
            return _error(500, UNKNOWN_RESOURCE)
        access_token, expires = authority.issue(audience)
        return web.json_response(
            {
                "access_token": access_token,
                "expires_on": str(expires),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": authority.client_id,
            },
            headers={"Server": "Kestrel"},
        )

    app = web.Application()
    app.router.add_get("/msi/token", token)
    return app
