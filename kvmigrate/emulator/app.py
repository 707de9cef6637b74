"""One emulated vault as an aiohttp application: routing, auth, api-version, throttling, denials, faults, stats.

Every request passes the same gates in the order the real service shows them: the 401 challenge comes before any
validation of the path or body (facts §1.1), then the api-version, then throttling (429s are not counted against the
budget), then access policy (403), then injected faults, then the handler. Collections register their routes from
``secrets.py``, ``keys.py`` (and ``rotation.py``) and ``certificates/``; listings page through ``paging.py``.

**Routing.** A path that no operation has answers as Key Vault answers an unknown route: 404 with the IIS-style
HTML page "404 - File or directory not found." (seen from the real service for a wrong path in 2019,
VirtusLab/crypt#10, and for ``/settings`` on a vault that has none in 2023, azure-sdk-for-js#26315); a path that
exists under another method answers 405 ``MethodNotAllowed`` "HTTP PUT not allowed" (recorded, facts §10). A path
segment is never taken for an object name where the service has a literal route: under ``/certificates`` the words
``contacts`` and ``issuers`` are reserved (``RESERVED``), so ``DELETE /certificates/contacts`` deletes the contacts
and ``POST /certificates/contacts/create`` is an unknown route. Guess: no recording shows whether the service lets a
certificate be named so; reserving the words keeps every such object reachable, which a real vault could not promise.

**api-version eras.** Some answers differ between the service of 2022 (api-version 7.3 recordings) and of 2026
(7.6 and 2025-07-01 recordings), e.g. key attributes gained ``exportable``, ``hsmPlatform`` and ``key_size``. The
emulator answers as the service did in the era of the request's api-version: ``is_newer_api()`` is true from 7.5
on, the first version whose spec has ``hsmPlatform``.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from kvmigrate.emulator import auth
from kvmigrate.emulator.config import VaultSettings
from kvmigrate.emulator.control import control
from kvmigrate.emulator.errors import KeyVaultError, bad_parameter
from kvmigrate.emulator.stats import Stats
from kvmigrate.emulator.store import Collection, NameIndex
from kvmigrate.emulator.throttle import SlidingWindow, Throttle

#: Every api-version the service knows, oldest first.
API_ORDER = (
    "2016-10-01",
    "7.0",
    "7.1",
    "7.2",
    "7.3",
    "7.4",
    "7.5",
    "7.6-preview.2",
    "7.6",
    "2025-06-01-preview",
    "2025-07-01",
    "2026-01-01-preview",
    "2026-03-01-preview",
    "2026-04-01",
)
API_VERSIONS = frozenset(API_ORDER)
LATEST_API_VERSION = "2026-04-01"
NEWER_API_SINCE = "7.5"
SERVICE_VERSION = "1.9.3019.1"
#: Words under /certificates that name vault-level resources (contacts, issuers) and never a certificate.
RESERVED = ("contacts", "issuers")
JsonBody = dict[str, Any]
NOT_FOUND_PAGE = (
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\r\n'
    '<html xmlns="http://www.w3.org/1999/xhtml">\r\n<head>\r\n'
    '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"/>\r\n'
    "<title>404 - File or directory not found.</title>\r\n</head>\r\n<body>\r\n"
    '<div id="header"><h1>Server Error</h1></div>\r\n<div id="content">\r\n <div class="content-container">'
    "<fieldset>\r\n  <h2>404 - File or directory not found.</h2>\r\n  <h3>The resource you are looking for might "
    "have been removed, had its name changed, or is temporarily unavailable.</h3>\r\n </fieldset></div>\r\n"
    "</div>\r\n</body>\r\n</html>\r\n"
)
_API_VERSION: contextvars.ContextVar[str] = contextvars.ContextVar("api_version", default=LATEST_API_VERSION)


def is_newer_api() -> bool:
    """Whether the request being answered uses an api-version of the 2026 service's era (see the module doc)."""
    version = _API_VERSION.get()
    return version in API_VERSIONS and API_ORDER.index(version) >= API_ORDER.index(NEWER_API_SINCE)


@dataclass
class Reply:
    """What a handler answers: status, JSON body (None for an empty body) and extra headers."""

    body: JsonBody | None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """One matched request as a handler sees it."""

    request: web.Request
    params: dict[str, str]
    raw_body: bytes

    def json(self) -> JsonBody:
        if not self.raw_body:
            raise bad_parameter("The request body is missing.")
        try:
            body = json.loads(self.raw_body)
        except ValueError as exc:
            raise bad_parameter("The request body is not valid JSON.") from exc
        if not isinstance(body, dict):
            raise bad_parameter("The request body must be a JSON object.")
        return body


Handler = Callable[["Vault", Call], Awaitable[Reply]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    operation: str
    permission: str
    handler: Handler
    is_create: bool = False
    also: tuple[str, ...] = ()  # broader permissions whose denial denies this operation too (manageissuers)


def route(
    method: str,
    path: str,
    operation: str,
    permission: str,
    handler: Handler,
    *,
    is_create: bool = False,
    also: tuple[str, ...] = (),
) -> Route:
    """Build a route; ``{name}`` and ``{version}`` in ``path`` match one segment (version may be empty).

    Under ``/certificates/`` a ``{name}`` never matches a ``RESERVED`` word, whatever its case.
    """
    name = r"(?P<name>[^/]*)"
    if path.startswith("/certificates/{name}"):
        name = rf"(?P<name>(?!(?i:{'|'.join(RESERVED)})(?:/|$))[^/]*)"
    regex = path.replace("{name}", name).replace("{version}", r"(?P<version>[^/]*)")
    return Route(method, re.compile(f"^{regex}$"), operation, permission, handler, is_create, also)


class Vault:
    """The state and behaviour of one emulated vault."""

    def __init__(
        self,
        name: str,
        settings: VaultSettings,
        authority: auth.TokenAuthority,
        routes: list[Route],
        *,
        seed: int | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.authority = authority
        self.routes = routes
        self.base_url = ""  # set once the listener is bound
        self.stats = Stats()
        self.rng = random.Random(seed)
        retention = lambda: settings.soft_delete_days  # noqa: E731
        delay = lambda: settings.consistency_delay  # noqa: E731
        self.secrets = Collection("secret", delay, retention)
        self.keys = Collection("key", delay, retention)
        self.certificates = Collection("certificate", delay, retention)
        self.contacts: list[JsonBody] | None = None  # the vault's certificate contacts (certificates/contacts.py)
        self.issuers: NameIndex[JsonBody] = NameIndex()  # certificate issuers by lower-cased name (issuers.py)
        self.throttle = Throttle(
            SlidingWindow(lambda: settings.rate_limit), SlidingWindow(lambda: settings.create_rate_limit)
        )

    # -- rendering helpers shared by the collections --------------------------------------------------------------
    def object_id(self, collection: str, name: str, version: str | None = None) -> str:
        return f"{self.base_url}/{collection}/{name}" + (f"/{version}" if version is not None else "")

    @property
    def recovery_level(self) -> str:
        days, protected = self.settings.soft_delete_days, self.settings.purge_protection
        if not days:
            return "Purgeable"
        level = "Recoverable" if days == 90 else "CustomizedRecoverable"
        return level + ("" if protected else "+Purgeable")

    def is_denied(self, collection: str, permission: str) -> bool:
        deny = self.settings.deny
        return permission in deny or f"{collection}/{permission}" in deny

    def is_denied_on(self, collection: str, permission: str, name: str) -> bool:
        """A denial scoped to one object (``secrets/backup/NAME``), as an RBAC role assignment can be."""
        return f"{collection}/{permission}/{name.lower()}" in {op.lower() for op in self.settings.deny}

    def forbidden_by_rbac(self, collection: str, permission: str, name: str) -> KeyVaultError:
        """The RBAC 403 (facts §10) for a denial scoped to one object: it names the action, not a permission."""
        action = f"Microsoft.KeyVault/vaults/{collection}/{permission}/action"
        return KeyVaultError(
            403,
            "Forbidden",
            "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or "
            "role definitions were changed recently, please observe propagation time.\r\nCaller: "
            "appid=00000000-0000-0000-0000-00000000e1e1;oid=00000000-0000-0000-0000-00000000e1e1;"
            f"iss=https://sts.windows.net/{self.settings.tenant}/\r\nAction: '{action}'\r\nResource: "
            f"'/subscriptions/{self.settings.subscription}/resourcegroups/emulator/providers/microsoft.keyvault/"
            f"vaults/{self.name}/{collection}/{name.lower()}'\r\nAssignment: (not found)\r\nVault: {self.name};"
            f"location={self.settings.geography}\r\n",
            inner="ForbiddenByRbac",
        )

    def forbidden(self, collection: str, permission: str) -> KeyVaultError:
        """The access-policy 403 (facts §10), naming the missing permission and the vault."""
        return KeyVaultError(
            403,
            "Forbidden",
            f"The user, group or application 'appid=00000000-0000-0000-0000-00000000e1e1;oid=00000000-0000-0000-0000-"
            f"00000000e1e1;iss=https://sts.windows.net/{self.settings.tenant}/' does not have {collection} "
            f"{permission} permission on key vault '{self.name};location={self.settings.geography}'. For help "
            f"resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
            inner="ForbiddenByPolicy",
        )

    # -- request pipeline ------------------------------------------------------------------------------------------
    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """Find the route; the flag says whether the path exists under another method."""
        other_method = False
        for candidate in self.routes:
            found = candidate.pattern.match(path)
            if found:
                if candidate.method == method:
                    return candidate, {k: v for k, v in found.groupdict().items() if v is not None}, False
                other_method = True
        return None, {}, other_method

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/_emulator/"):
            return await control(self, request)
        settings = self.settings
        delay = settings.latency_ms + self.rng.uniform(0, settings.latency_jitter_ms)
        if settings.slow_rate and self.rng.random() < settings.slow_rate:
            delay += settings.slow_ms
        matched, params, other_method = self.match(request.method, request.path)
        operation = matched.operation if matched else "unknown"
        raw_body = await request.read()
        drop_after = False
        try:
            auth.check_request(request, self.authority, settings.tenant)
            if matched is None:
                if other_method:
                    raise KeyVaultError(405, "MethodNotAllowed", f"HTTP {request.method} not allowed")
                self.stats.record(operation, 404)
                await asyncio.sleep(delay / 1000)
                return web.Response(status=404, body=NOT_FOUND_PAGE.encode("ascii"), content_type="text/html")
            self._check_api_version(request)
            _API_VERSION.set(request.query["api-version"])
            wait = self.throttle.admit(is_create=matched.is_create)
            if wait is not None:
                raise KeyVaultError(
                    429,
                    "Throttled",
                    "Request was not processed because too many requests were received. Reason: "
                    "VaultRequestTypeLimitReached",
                    headers={"Retry-After": str(max(1, round(wait)))} if settings.retry_after else None,
                )
            collection = matched.operation.split(".")[0]
            denied = next((p for p in (matched.permission, *matched.also) if self.is_denied(collection, p)), None)
            if denied is not None:
                raise self.forbidden(collection, denied)
            name = params.get("name", "")
            if name and self.is_denied_on(collection, matched.permission, name):
                raise self.forbidden_by_rbac(collection, matched.permission, name)
            if settings.drop_rate and self.rng.random() < settings.drop_rate:
                # Half the drops lose the request, half lose the answer after the vault acted on it.
                if self.rng.random() < 0.5:
                    await self._drop(request, delay)
                drop_after = True
            if settings.error_rate and self.rng.random() < settings.error_rate:
                self.stats.faults += 1
                status = self.rng.choice((500, 503))
                code = "InternalServerError" if status == 500 else "ServiceUnavailable"
                raise KeyVaultError(status, code, "The service is temporarily unavailable. Retry the request.")
            self.stats.started[operation] += 1
            if operation in settings.stall_ops:
                await asyncio.sleep(settings.stall_ms / 1000)
            reply = await matched.handler(self, Call(request, params, raw_body))
            if operation in settings.hang_after_ops:
                await asyncio.sleep(settings.stall_ms / 1000)
        except KeyVaultError as error:
            self.stats.record(operation, error.status)
            await asyncio.sleep(delay / 1000)
            return error.response()
        if drop_after:
            await self._drop(request, delay)
        self.stats.record(operation, reply.status)
        await asyncio.sleep(delay / 1000)
        if reply.body is None:
            return web.Response(status=reply.status, headers=reply.headers)
        return web.Response(
            status=reply.status,
            text=json.dumps(reply.body, separators=(",", ":")),
            content_type="application/json",
            charset="utf-8",
            headers=reply.headers,
        )

    async def _drop(self, request: web.Request, delay: float) -> None:
        self.stats.faults += 1
        await asyncio.sleep(delay / 1000)
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError  # aiohttp treats this as the connection going away

    def _check_api_version(self, request: web.Request) -> None:
        version = request.query.get("api-version")
        if not version:
            raise bad_parameter("The api-version query parameter (?api-version=) is required for all requests.")
        if version not in API_VERSIONS:
            raise bad_parameter(
                f"The specified version ({version}) is not recognized. Consider using the latest "
                f"supported version ({LATEST_API_VERSION})."
            )


def attributes(vault: Vault, version: Any, *, extra: JsonBody | None = None) -> JsonBody:
    """The ``attributes`` object of a version, with the vault's recovery level."""
    body: JsonBody = {"enabled": version.enabled}
    if version.nbf is not None:
        body["nbf"] = version.nbf
    if version.exp is not None:
        body["exp"] = version.exp
    body.update(
        {
            "created": version.created,
            "updated": version.updated,
            "recoveryLevel": vault.recovery_level,
            "recoverableDays": vault.settings.soft_delete_days,
        }
    )
    if extra:
        body.update(extra)
    return body


def read_attributes(body: JsonBody) -> JsonBody:
    """Validate the writable attributes of a request: enabled (bool), nbf and exp (integer Unix seconds)."""
    raw = body.get("attributes") or {}
    if not isinstance(raw, dict):
        raise bad_parameter("attributes must be an object.")
    result: JsonBody = {}
    if "enabled" in raw and raw["enabled"] is not None:
        if not isinstance(raw["enabled"], bool):
            raise bad_parameter("attributes.enabled must be a boolean.")
        result["enabled"] = raw["enabled"]
    for name in ("nbf", "exp"):
        if name in raw and raw[name] is not None:
            if not isinstance(raw[name], int) or isinstance(raw[name], bool):
                raise bad_parameter(f"attributes.{name} must be an integer (Unix seconds).")
            result[name] = raw[name]
    return result


def now() -> int:
    return int(time.time())


def request_headers(request: web.Request, response: web.StreamResponse, region: str) -> None:
    """Headers every Key Vault answer carries (facts §14)."""
    headers = response.headers
    headers["x-ms-request-id"] = str(uuid.uuid4())
    if "x-ms-client-request-id" in request.headers:
        headers["x-ms-client-request-id"] = request.headers["x-ms-client-request-id"]
    headers["x-ms-keyvault-region"] = region
    headers["x-ms-keyvault-service-version"] = SERVICE_VERSION
    headers["x-ms-keyvault-network-info"] = f"conn_type=Ipv4;addr={request.remote};act_addr_fam=InterNetwork;"
    headers["Cache-Control"] = "no-cache"
    headers["Pragma"] = "no-cache"
    headers["Expires"] = "-1"
    headers["Strict-Transport-Security"] = "max-age=31536000;includeSubDomains"
    headers["X-Content-Type-Options"] = "nosniff"


def build_app(vault: Vault) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        request_headers(request, response, vault.settings.geography)

    app.on_response_prepare.append(on_prepare)
    app.router.add_route("*", "/{tail:.*}", vault.handle)
    return app
