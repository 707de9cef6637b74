"""The sliver of Azure Resource Manager that ``az login --identity`` needs: the subscription and tenant lists.

az CLI logs a managed identity in by getting an ARM token, reading ``tid`` from it and listing
``GET /subscriptions`` with it; every later ``az keyvault ...`` command reads the subscription from its profile and
talks to the vault directly. Serving these answers (only these) lets the unmodified az CLI log in against the emulator
instead of needing a hand-written ``azureProfile.json``. The subscriptions are those of the emulated vaults; like
ARM, a token lists only the subscriptions of its own tenant. Tokens are validated as ARM does, with ARM's error codes.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kvmigrate.emulator.auth import ARM_AUDIENCES, ARM_RESOURCE_IDS, TokenAuthority, TokenRejected


@dataclass(frozen=True)
class Subscription:
    """An emulated subscription: the vaults that name it, in its tenant."""

    subscription_id: str
    tenant_id: str

    def body(self) -> dict[str, Any]:
        """The Subscriptions - List item (api-version 2022-12-01)."""
        return {
            "id": f"/subscriptions/{self.subscription_id}",
            "authorizationSource": "RoleBased",
            "managedByTenants": [],
            "subscriptionId": self.subscription_id,
            "tenantId": self.tenant_id,
            "displayName": f"kvmigrate emulator {self.subscription_id[-4:]}",
            "state": "Enabled",
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01",
                "spendingLimit": "Off",
            },
        }


class ArmError(Exception):
    """An ARM error answer: ``{"error": {"code", "message"}}`` and maybe a WWW-Authenticate header."""

    def __init__(self, status: int, code: str, message: str, *, challenge: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.challenge = status, code, message, challenge


def _utc(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%m/%d/%Y %H:%M:%S")


def check_arm_token(request: web.Request, authority: TokenAuthority) -> dict[str, Any]:
    """The claims of the request's bearer token, or the ArmError ARM answers (codes as ARM sends them)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ArmError(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
            challenge='Bearer authorization_uri="https://login.windows.net/", error="invalid_token", '
            "error_description=\"The authentication failed because of missing 'Authorization' header.\"",
        )
    try:
        claims = authority.verify(token.strip())
    except TokenRejected as rejected:
        if rejected.reason == "expired":
            exp = float(rejected.claims.get("exp", 0))
            raise ArmError(
                401,
                "ExpiredAuthenticationToken",
                f"The access token expiry UTC time '{_utc(exp)}' is earlier than current UTC time "
                f"'{_utc(dt.datetime.now(dt.UTC).timestamp())}'.",
            ) from None
        raise ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.") from None
    audience = claims.get("aud")
    if audience not in ARM_AUDIENCES:
        allowed = ",".join(f"'{a}'" for a in ARM_RESOURCE_IDS)
        raise ArmError(
            401,
            "InvalidAuthenticationTokenAudience",
            f"The access token has been obtained for wrong audience or resource '{audience}'. It should exactly "
            f"match with one of the allowed audiences {allowed}.",
        )
    return claims


def arm_app(authority: TokenAuthority, subscriptions: list[Subscription]) -> web.Application:
    """``GET /subscriptions``, ``GET /subscriptions/{id}`` and ``GET /tenants``, each with ARM's auth and errors."""

    def visible(claims: dict[str, Any]) -> list[Subscription]:
        return [s for s in subscriptions if s.tenant_id == claims.get("tid")]

    async def handle(request: web.Request) -> web.Response:
        try:
            claims = check_arm_token(request, authority)
            if not request.query.get("api-version"):
                raise ArmError(
                    400,
                    "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.",
                )
            if request.method != "GET":
                raise ArmError(405, "MethodNotAllowed", f"The emulator's ARM does not serve {request.method}.")
            body = _route(request.path.rstrip("/").lower(), visible(claims), claims)
        except ArmError as error:
            headers = {"WWW-Authenticate": error.challenge} if error.challenge else {}
            return _json({"error": {"code": error.code, "message": error.message}}, error.status, headers)
        return _json(body, 200, {})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def _route(path: str, mine: list[Subscription], claims: dict[str, Any]) -> dict[str, Any]:
    if path == "/subscriptions":
        return {"value": [s.body() for s in mine], "count": {"type": "Total", "value": len(mine)}}
    if path.startswith("/subscriptions/") and path.count("/") == 2:
        wanted = path.rsplit("/", 1)[1]
        for subscription in mine:
            if subscription.subscription_id == wanted:
                return subscription.body()
        raise ArmError(404, "SubscriptionNotFound", f"The subscription '{wanted}' could not be found.")
    if path == "/tenants":
        tenant = str(claims.get("tid"))
        return {
            "value": [
                {
                    "id": f"/tenants/{tenant}",
                    "tenantId": tenant,
                    "tenantCategory": "Home",
                    "displayName": "kvmigrate emulator",
                    "defaultDomain": "kvmigrate-emulator.onmicrosoft.com",
                    "domains": ["kvmigrate-emulator.onmicrosoft.com"],
                    "tenantType": "AAD",
                }
            ]
        }
    raise ArmError(
        404,
        "NotFound",
        f"The emulator's Azure Resource Manager serves only /subscriptions and /tenants, not {path}.",
    )


def _json(body: dict[str, Any], status: int, headers: dict[str, str]) -> web.Response:
    """An ARM answer with the headers every ARM response carries."""
    request_id = str(uuid.uuid4())
    return web.Response(
        status=status,
        text=json.dumps(body, separators=(",", ":")),
        content_type="application/json",
        charset="utf-8",
        headers={
            "Cache-Control": "no-cache",
            "Pragma": "no-cache",
            "Expires": "-1",
            "x-ms-request-id": request_id,
            "x-ms-correlation-request-id": request_id,
            "x-ms-routing-request-id": f"LOCAL:{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}:{request_id}",
            "x-ms-ratelimit-remaining-tenant-reads": "11999",
            "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
            "X-Content-Type-Options": "nosniff",
            **headers,
        },
    )
