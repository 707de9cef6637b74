"""The emulated Azure AD: JWT access tokens, their validation by vaults, the identity endpoint, the minimal ARM, and
the signing key and CA shared by emulator processes that share a state directory."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import time
from pathlib import Path
from typing import Any

import aiohttp
import msal
import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import DefaultAzureCredential
from azure.keyvault.secrets.aio import SecretClient

from kvmigrate.emulator import Emulator
from kvmigrate.emulator.auth import KEY_VAULT_APP_ID, TokenAuthority
from kvmigrate.emulator.config import ConfigError, EmulatorConfig
from kvmigrate.emulator.statefiles import StateDirError
from kvmigrate.vault.clients import VaultClients
from tests.conftest import emulator_config
from tests.emulator.processes import EmulatorPair, emulator_process, shared_state_pair  # noqa: F401 - a fixture

VAULT = "https://vault.azure.net"
ARM = "https://management.core.windows.net/"
OTHER_TENANT = "0f0f0f0f-1111-2222-3333-444444444444"


class StaticCredential:
    """Hands the SDK a fixed token, to see exactly what a vault does with it."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None


def decode(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def reencode(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


async def ask_identity(emulator: Emulator, params: dict[str, str], *, header: str | None = None) -> tuple[int, Any]:
    """Call the identity endpoint as App Service clients do (api-version 2019-08-01, X-IDENTITY-HEADER)."""
    headers = {"X-IDENTITY-HEADER": emulator.authority.identity_header if header is None else header}
    async with (
        aiohttp.ClientSession() as session,
        session.get(emulator.identity_endpoint, params={"api-version": "2019-08-01", **params}, headers=headers) as r,
    ):
        assert r.content_type == "application/json"
        return r.status, await r.json()


async def refusal(url: str, ca_file: Path, token: str) -> str:
    """The 401 a vault gives the official SDK for ``token``; assert it is a challenge and return its message."""
    client = SecretClient(url, StaticCredential(token), connection_verify=str(ca_file), verify_challenge_resource=False)
    async with client:
        with pytest.raises(ClientAuthenticationError) as err:
            await client.set_secret("refused", "v")
    assert err.value.status_code == 401 and err.value.response is not None
    assert err.value.response.headers["WWW-Authenticate"].startswith('Bearer authorization="https://login.windows.net/')
    assert err.value.error is not None and err.value.error.code == "Unauthorized"
    return str(err.value.error.message)


# -- tokens -----------------------------------------------------------------------------------------------------------
async def test_identity_endpoint_issues_an_aad_v1_shaped_rs256_jwt(emulator: Emulator) -> None:
    status, body = await ask_identity(emulator, {"resource": VAULT})
    assert status == 200
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert body["resource"] == VAULT and body["token_type"] == "Bearer" and isinstance(body["expires_on"], str)
    header, claims, signature = body["access_token"].split(".")
    assert decode(header) == {
        "typ": "JWT",
        "alg": "RS256",
        "x5t": emulator.authority.kid,
        "kid": emulator.authority.kid,
    }
    payload = decode(claims)
    tenant = emulator.config.identity_tenant
    assert payload["aud"] == VAULT and payload["iss"] == f"https://sts.windows.net/{tenant}/"
    assert payload["tid"] == tenant and payload["ver"] == "1.0" and payload["appid"] == body["client_id"]
    assert payload["iat"] == payload["nbf"] and payload["exp"] == int(body["expires_on"]) > time.time() + 3000
    assert len(base64.urlsafe_b64decode(signature + "==")) == 256  # RSA-2048


async def test_vault_accepts_its_tokens_through_the_sdk(emulator: Emulator, src: VaultClients) -> None:
    await src.secrets.set_secret("accepted", "v")  # DefaultAzureCredential → identity endpoint → JWT → vault
    url, ca = emulator.vaults["src"].url, emulator.ca_file
    for audience in (VAULT, KEY_VAULT_APP_ID):  # v1 tokens name the resource; v2 tokens Key Vault's app id
        token, _ = emulator.authority.issue(audience)
        client = SecretClient(url, StaticCredential(token), connection_verify=str(ca), verify_challenge_resource=False)
        async with client:
            assert (await client.get_secret("accepted")).value == "v"


def _tampered(authority: TokenAuthority) -> str:
    header, claims, signature = authority.issue(VAULT)[0].split(".")
    payload = decode(claims)
    payload["oid"] = "11111111-1111-1111-1111-111111111111"
    return f"{header}.{reencode(payload)}.{signature}"


def _unsigned(authority: TokenAuthority) -> str:
    token = authority.sign(authority.claims(VAULT), header={"alg": "none", "kid": authority.kid})
    return token.rsplit(".", 1)[0] + "."


REFUSALS: dict[str, tuple[Any, str]] = {
    "expired": (lambda a: a.issue(VAULT, now=time.time() - 7200)[0], "[TokenExpired]"),
    "not-yet-valid": (lambda a: a.sign({**a.claims(VAULT), "nbf": int(time.time()) + 3600}), "[TokenNotYetValid]"),
    "arm-audience": (lambda a: a.issue(ARM)[0], "AKV10022: Invalid audience. Expected https://vault.azure.net or"),
    "trailing-slash-audience": (lambda a: a.issue(VAULT + "/")[0], "found: https://vault.azure.net/."),
    "other-tenant": (
        lambda a: a.issue(VAULT, tenant=OTHER_TENANT)[0],
        f"found https://sts.windows.net/{OTHER_TENANT}/",
    ),
    "tampered": (_tampered, "signature is invalid"),
    "alg-none": (_unsigned, "signature is invalid"),
    "foreign-key": (lambda a: TokenAuthority().issue(VAULT)[0], "AKV10046: Unable to resolve the key"),
    "not-a-jwt": (lambda a: "not-a-token", "not a well-formed JWT"),
    "garbage-segments": (lambda a: "eyJ!.e30.e30", "not a well-formed JWT"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
async def test_vault_refuses_bad_tokens_with_the_challenge_and_the_services_message(
    emulator: Emulator, case: str
) -> None:
    make, expected = REFUSALS[case]
    message = await refusal(emulator.vaults["src"].url, emulator.ca_file, make(emulator.authority))
    assert expected in message, message
    assert emulator.vaults["src"].vault.stats.unauthorized >= 2  # the probe and the refused token


async def test_vault_of_another_tenant_refuses_the_identitys_tokens(tmp_path: Path, monkeypatch: Any) -> None:
    """Key Vault refuses a token from a foreign directory with AKV10032, even when its signature is good."""
    config = EmulatorConfig.from_mapping(
        {
            "vaults": {"home": {}, "foreign": {"tenant": OTHER_TENANT}},
            "identity": {"tenant": "72f988bf-86f1-41af-91ab-2d7cd011db47"},
        }
    )
    async with Emulator(config, state_dir=tmp_path) as emu:
        for key, value in emu.environment().items():
            monkeypatch.setenv(key, value)
        async with DefaultAzureCredential() as credential:
            for name, works in (("home", True), ("foreign", False)):
                client = SecretClient(
                    emu.vaults[name].url,
                    credential,
                    connection_verify=str(emu.ca_file),
                    verify_challenge_resource=False,
                )
                async with client:
                    if works:
                        await client.set_secret("t", "v")
                        continue
                    with pytest.raises(ClientAuthenticationError) as err:
                        await client.set_secret("t", "v")
                assert err.value.error is not None and "AKV10032: Invalid issuer. Expected one of " in str(
                    err.value.error.message
                )
                challenge = err.value.response.headers["WWW-Authenticate"] if err.value.response else ""
                assert f"login.windows.net/{OTHER_TENANT}" in challenge


def test_vaults_naming_different_tenants_need_the_identitys_tenant() -> None:
    with pytest.raises(ConfigError, match=r"set \[identity\] tenant"):
        EmulatorConfig.from_mapping({"vaults": {"a": {}, "b": {"tenant": OTHER_TENANT}}})
    config = EmulatorConfig.from_mapping(
        {"defaults": {"tenant": OTHER_TENANT}, "vaults": {"a": {}, "b": {}}}  # one shared tenant: no table needed
    )
    assert config.identity_tenant == OTHER_TENANT


# -- the identity endpoint --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("resource", "audience"),
    [
        (VAULT, VAULT),
        (VAULT + "/.default", VAULT),
        (VAULT + "/", VAULT + "/"),  # issued as asked, as Azure AD does; vaults then refuse it (AKV10022)
        ("https://vault.azure.net:8443", VAULT),  # what a vault on port 8443 names in its challenge
        ("https://management.core.windows.net/", "https://management.core.windows.net/"),
        ("https://management.core.windows.net", "https://management.core.windows.net"),
        ("https://management.azure.com/", "https://management.azure.com/"),
        ("https://management.azure.com/.default", "https://management.azure.com"),
    ],
)
async def test_identity_endpoint_issues_key_vault_and_arm_tokens(
    emulator: Emulator, resource: str, audience: str
) -> None:
    status, body = await ask_identity(emulator, {"resource": resource})
    assert status == 200 and body["resource"] == resource
    assert decode(body["access_token"].split(".")[1])["aud"] == audience


@pytest.mark.parametrize(
    ("params", "header", "status", "message"),
    [
        (
            {"resource": "https://storage.azure.com"},
            None,
            500,
            "An unexpected error occured while fetching the AAD Token.",
        ),
        ({"resource": VAULT}, "wrong", 400, "X-IDENTITY-HEADER"),
        ({"resource": VAULT, "client_id": "99999999-9999-9999-9999-999999999999"}, None, 400, "Unable to load the"),
        ({"resource": VAULT, "api-version": "2017-09-01"}, None, 400, "api-version"),
    ],
)
async def test_identity_endpoint_errors_are_shaped_as_app_services(
    emulator: Emulator, params: dict[str, str], header: str | None, status: int, message: str
) -> None:
    got, body = await ask_identity(emulator, params, header=header)
    assert got == status and set(body) == {"statusCode", "message", "correlationId"}
    assert body["statusCode"] == status and message in body["message"] and len(body["correlationId"]) == 36


async def test_msal_the_library_az_uses_logs_in_and_reports_errors(emulator: Emulator) -> None:
    """MSAL's App Service client (az login --identity) gets an ARM token with tid, and prints our errors."""

    def acquire(resource: str) -> dict[str, Any]:
        client = msal.ManagedIdentityClient(msal.SystemAssignedManagedIdentity(), http_client=requests.Session())
        result: dict[str, Any] = client.acquire_token_for_client(resource=resource)
        return result

    ok = await asyncio.to_thread(acquire, ARM)
    assert decode(ok["access_token"].split(".")[1])["tid"] == emulator.config.identity_tenant
    failed = await asyncio.to_thread(acquire, "https://storage.azure.com")
    assert failed["error_description"] == "500, An unexpected error occured while fetching the AAD Token."


# -- ARM ---------------------------------------------------------------------------------------------------------------
async def test_arm_lists_the_subscriptions_of_the_tokens_tenant(tmp_path: Path) -> None:
    config = EmulatorConfig.from_mapping(
        {"vaults": {"a": {}, "b": {"subscription": "00000000-0000-0000-0000-00000000b002"}}, "arm": {"port": 0}}
    )
    async with Emulator(config, state_dir=tmp_path) as emu:
        context = ssl.create_default_context(cafile=str(emu.ca_file))

        async def get(path: str, token: str | None, query: str = "?api-version=2022-12-01") -> tuple[int, Any, Any]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with (
                aiohttp.ClientSession() as session,
                session.get(emu.arm_url + path + query, ssl=context, headers=headers) as r,
            ):
                return r.status, r.headers, await r.json()

        status, body = await ask_identity(emu, {"resource": ARM})
        token = body["access_token"]
        status, _, listing = await get("/subscriptions", token)
        ids = sorted(s["subscriptionId"] for s in listing["value"])
        assert status == 200 and ids == ["00000000-0000-0000-0000-00000000a001", "00000000-0000-0000-0000-00000000b002"]
        assert listing["count"] == {"type": "Total", "value": 2}
        assert {s["tenantId"] for s in listing["value"]} == {emu.config.identity_tenant}
        assert listing["value"][0]["state"] == "Enabled" and listing["value"][0]["id"].startswith("/subscriptions/")
        status, _, one = await get("/subscriptions/00000000-0000-0000-0000-00000000b002", token)
        assert status == 200 and one["subscriptionId"].endswith("b002")
        status, _, missing = await get("/subscriptions/00000000-0000-0000-0000-00000000c003", token)
        assert status == 404 and missing["error"]["code"] == "SubscriptionNotFound"
        foreign, _ = emu.authority.issue(ARM, tenant=OTHER_TENANT)
        assert (await get("/subscriptions", foreign))[2]["value"] == []
        status, headers, error = await get("/subscriptions", None)
        assert status == 401 and error["error"]["code"] == "AuthenticationFailed" and "WWW-Authenticate" in headers
        vault_token, _ = emu.authority.issue(VAULT)
        status, _, error = await get("/subscriptions", vault_token)
        assert status == 401 and error["error"]["code"] == "InvalidAuthenticationTokenAudience"
        expired, _ = emu.authority.issue(ARM, now=time.time() - 7200)
        assert (await get("/subscriptions", expired))[2]["error"]["code"] == "ExpiredAuthenticationToken"
        status, _, error = await get("/subscriptions", token, query="")
        assert status == 400 and error["error"]["code"] == "MissingApiVersionParameter"


# -- the state directory ----------------------------------------------------------------------------------------------
async def test_state_dir_keeps_one_ca_and_signing_key_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with Emulator(emulator_config(a={}), state_dir=state) as first:
        kid, ca = first.authority.kid, first.ca_file.read_bytes()
        token, _ = first.authority.issue(VAULT)
    async with Emulator(emulator_config(a={}), state_dir=state) as second:
        assert second.authority.kid == kid and second.ca_file.read_bytes() == ca
        assert second.authority.is_valid(token)
    assert oct(state.stat().st_mode & 0o777) == "0o700"
    for name in ("ca.pem", "ca-key.pem", "authority-key.pem"):
        assert oct((state / name).stat().st_mode & 0o777) == "0o600", name


async def test_state_dir_refuses_symlinks_and_loose_key_files(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere.pem"
    elsewhere.write_text("not a key")
    os.symlink(elsewhere, state / "authority-key.pem")
    with pytest.raises(StateDirError, match="symlink"):
        async with Emulator(emulator_config(a={}), state_dir=state):
            pass
    assert elsewhere.read_text() == "not a key"  # neither read as a key nor overwritten
    (state / "authority-key.pem").unlink()
    async with Emulator(emulator_config(a={}), state_dir=state):
        pass
    os.chmod(state / "authority-key.pem", 0o644)
    with pytest.raises(StateDirError, match="0600"):
        async with Emulator(emulator_config(a={}), state_dir=state):
            pass


async def test_a_state_dir_without_the_ca_key_gets_a_new_ca(tmp_path: Path) -> None:
    """State directories of earlier versions hold ca.pem but not its key: the CA is replaced, not half-used."""
    state = tmp_path / "state"
    async with Emulator(emulator_config(a={}), state_dir=state) as first:
        old = first.ca_file.read_bytes()
    (state / "ca-key.pem").unlink()
    async with Emulator(emulator_config(a={}), state_dir=state) as second:
        assert second.ca_file.read_bytes() != old
        context = ssl.create_default_context(cafile=str(second.ca_file))
        async with aiohttp.ClientSession() as session:
            async with session.get(second.vaults["a"].url + "/secrets?api-version=7.5", ssl=context) as r:
                assert r.status == 401  # TLS verified against the new CA


# -- two processes, one state directory --------------------------------------------------------------------------------
async def test_two_processes_sharing_a_state_dir_share_ca_and_tokens(
    shared_state_pair: EmulatorPair,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    monkeypatch: Any,
) -> None:
    first, second = shared_state_pair.first, shared_state_pair.second
    assert first.ca_file == second.ca_file and first.ca_file.is_absolute()
    context = ssl.create_default_context(cafile=str(first.ca_file))
    async with aiohttp.ClientSession() as session:  # the first process still serves a chain the shared CA trusts
        async with session.get(first.vault_url("src") + "/secrets?api-version=7.5", ssl=context) as r:
            assert r.status == 401
    # A token from the first process's identity endpoint, used by the stock credential on the second's vault.
    monkeypatch.setenv("IDENTITY_ENDPOINT", first.env["IDENTITY_ENDPOINT"])
    monkeypatch.setenv("IDENTITY_HEADER", first.env["IDENTITY_HEADER"])
    async with (
        DefaultAzureCredential() as credential,
        SecretClient(
            second.vault_url("dst"), credential, connection_verify=str(first.ca_file), verify_challenge_resource=False
        ) as client,
    ):
        await client.set_secret("shared", "across-processes")
        assert (await client.get_secret("shared")).value == "across-processes"
    # A process with its own state directory signs with another key: the second process refuses its tokens.
    with emulator_process(tmp_path / "third", {"x": {"port": 0}}, state_dir=tmp_path / "third" / "state") as third:
        async with aiohttp.ClientSession() as session:
            async with session.get(
                third.env["IDENTITY_ENDPOINT"],
                params={"api-version": "2019-08-01", "resource": VAULT},
                headers={"X-IDENTITY-HEADER": third.env["IDENTITY_HEADER"]},
            ) as r:
                foreign = (await r.json())["access_token"]
    message = await refusal(second.vault_url("dst"), first.ca_file, foreign)
    assert message.startswith("AKV10046: Unable to resolve the key used for signature validation.")
