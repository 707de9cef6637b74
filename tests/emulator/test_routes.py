"""Routing and permissions of the emulator's newer routes, through the SDK's own pipeline against HTTPS.

A path that is not an operation must answer as Key Vault answers an unknown route, never by taking a segment for an
object name; each permission an access policy can withhold must give the 403 that names it, so a migration can tell
the operator which permission to grant.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.keyvault.certificates import CertificateContact
from azure.keyvault.keys import KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction

from kvmigrate.emulator import Emulator, EmulatorConfig
from kvmigrate.vault.clients import VaultClients

API = "api-version=2025-07-01"


async def send(clients: VaultClients, method: str, path: str) -> tuple[int, str, str]:
    response = await clients.keys.send_request(HttpRequest(method, f"{path}?{API}"))
    await response.read()
    return response.status_code, response.headers.get("content-type", ""), response.text()


@pytest.mark.parametrize(
    "path",
    [
        "/keys/x/y/z/w",
        "/secrets/x/v/extra",
        "/certificates/contacts/extra",
        "/certificates/issuers/one/two",
        "/keys/x/rotationpolicy/extra",
        "/nothing",
    ],
)
async def test_unknown_routes_answer_the_service_404_page(src: VaultClients, path: str) -> None:
    await src.keys.create_ec_key("x")
    status, content_type, body = await send(src, "GET", path)
    assert status == 404 and content_type.startswith("text/html")
    assert "<title>404 - File or directory not found.</title>" in body


async def test_a_known_path_with_another_method_is_405(src: VaultClients) -> None:
    for method, path in (("DELETE", "/keys/x/rotationpolicy"), ("POST", "/certificates/contacts")):
        status, _, body = await send(src, method, path)
        assert status == 405 and '"code":"MethodNotAllowed"' in body and f"HTTP {method} not allowed" in body


async def test_rotation_paths_are_operations_not_versions(src: VaultClients) -> None:
    """``/keys/x/rotationpolicy`` was taken for version "rotationpolicy" of key x: now it is the policy."""
    status, _, body = await send(src, "GET", "/keys/missing/rotationpolicy")
    assert status == 404 and '"code":"KeyNotFound"' in body
    await src.keys.create_ec_key("present")
    status, _, body = await send(src, "GET", "/keys/present/rotationpolicy")
    assert status == 200 and '"timeBeforeExpiry":"P30D"' in body


async def test_the_challenge_comes_before_the_route_check(emulator: Emulator) -> None:
    context = ssl.create_default_context(cafile=str(emulator.ca_file))
    url = f"{emulator.vaults['src'].url}/keys/x/y/z/w?{API}"
    async with aiohttp.ClientSession() as session, session.get(url, ssl=context) as response:
        assert response.status == 401 and "WWW-Authenticate" in response.headers


Call = Callable[[VaultClients], Awaitable[Any]]
POLICY = KeyRotationPolicy(
    lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P30D")]
)
DENIALS: list[tuple[str, str, Call]] = [
    ("getrotationpolicy", "keys", lambda c: c.keys.get_key_rotation_policy("k")),
    ("setrotationpolicy", "keys", lambda c: c.keys.update_key_rotation_policy("k", POLICY)),
    ("rotate", "keys", lambda c: c.keys.rotate_key("k")),
    ("getissuers", "certificates", lambda c: c.certificates.get_issuer("i")),
    ("listissuers", "certificates", lambda c: _first(c.certificates.list_properties_of_issuers())),
    ("setissuers", "certificates", lambda c: c.certificates.create_issuer("j", "Test")),
    ("setissuers", "certificates", lambda c: c.certificates.update_issuer("i", enabled=False)),
    ("deleteissuers", "certificates", lambda c: c.certificates.delete_issuer("i")),
    ("manageissuers", "certificates", lambda c: c.certificates.get_issuer("i")),
    ("manageissuers", "certificates", lambda c: c.certificates.delete_issuer("i")),
    ("managecontacts", "certificates", lambda c: c.certificates.get_contacts()),
    ("managecontacts", "certificates", lambda c: c.certificates.set_contacts([CertificateContact(email="a@b.c")])),
    ("managecontacts", "certificates", lambda c: c.certificates.delete_contacts()),
]


async def _first(paged: Any) -> Any:
    async for item in paged:
        return item
    return None


@pytest.mark.parametrize(("permission", "collection", "call"), DENIALS, ids=[d[0] for d in DENIALS])
async def test_each_new_permission_can_be_denied_by_name(
    src: VaultClients, emulator: Emulator, permission: str, collection: str, call: Call
) -> None:
    await src.keys.create_ec_key("k")
    await src.certificates.create_issuer("i", "Test")
    await src.certificates.set_contacts([CertificateContact(email="a@b.c")])
    emulator.vaults["src"].vault.settings.deny = [f"{collection}/{permission}"]
    with pytest.raises(HttpResponseError) as denied:
        await call(src)
    assert denied.value.status_code == 403 and denied.value.error is not None
    assert f"does not have {collection} {permission} permission" in str(denied.value.message)
    emulator.vaults["src"].vault.settings.deny = []
    await call(src)  # granted again, the same call goes through


def test_the_new_permission_names_are_valid_in_a_config() -> None:
    names = ["getrotationpolicy", "keys/setrotationpolicy", "rotate", "certificates/managecontacts", "manageissuers"]
    config = EmulatorConfig.from_mapping({"vaults": {"v": {"deny": names}}})
    assert config.vaults["v"].deny == names
