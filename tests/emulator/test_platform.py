"""Cross-cutting emulator behaviour: TLS, the 401 challenge, tokens, denials, throttling, stats, config, CLI."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
from azure.keyvault.secrets.aio import SecretClient

from kvmigrate.emulator import Emulator
from kvmigrate.emulator.auth import TokenAuthority
from kvmigrate.emulator.config import ConfigError, EmulatorConfig
from kvmigrate.vault.clients import VaultClients
from tests.conftest import emulator_config
from tests.helpers import control


class StaticCredential:
    """A credential that hands out a fixed token string (foreign or expired) to see the vault refuse it."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None


async def raw(url: str, ca_file: Path, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    context = ssl.create_default_context(cafile=str(ca_file))
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url + path, ssl=context, **kwargs) as response,
    ):
        body = await response.json() if response.content_length else None
        return response.status, dict(response.headers), body


async def test_unauthenticated_request_gets_key_vault_challenge(emulator: Emulator) -> None:
    url = emulator.vaults["src"].url
    status, headers, body = await raw(
        url, emulator.ca_file, "PUT", "/secrets/x?api-version=7.5", headers={"x-ms-client-request-id": "abc"}
    )
    assert status == 401
    assert headers["WWW-Authenticate"].startswith('Bearer authorization="https://login.windows.net/')
    assert headers["WWW-Authenticate"].endswith('", resource="https://vault.azure.net"')
    assert body == {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}}
    assert headers["x-ms-client-request-id"] == "abc" and len(headers["x-ms-request-id"]) == 36
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    for name in ("x-ms-keyvault-region", "x-ms-keyvault-service-version", "Strict-Transport-Security"):
        assert name in headers


async def test_plain_tls_client_without_the_ca_is_refused(emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(emulator.vaults["src"].url + "/secrets?api-version=7.5")


async def test_foreign_and_expired_tokens_are_refused(emulator: Emulator, ca_bundle: Path) -> None:
    foreign, _ = TokenAuthority().issue("https://vault.azure.net")
    expired, _ = emulator.authority.issue("https://vault.azure.net", now=time.time() - 7200)
    for token in (foreign, expired, "not-a-token"):
        client = SecretClient(
            emulator.vaults["src"].url,
            StaticCredential(token),
            connection_verify=str(ca_bundle),
            verify_challenge_resource=False,
        )
        async with client:
            with pytest.raises(ClientAuthenticationError) as err:
                await client.set_secret("x", "v")
        assert err.value.status_code == 401


async def test_managed_identity_endpoint_checks_its_header(emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        response = await session.get(
            emulator.identity_endpoint, params={"api-version": "2019-08-01", "resource": "https://vault.azure.net"}
        )
        assert response.status == 400
        response = await session.get(
            emulator.identity_endpoint,
            params={"api-version": "2019-08-01", "resource": "https://vault.azure.net"},
            headers={"X-IDENTITY-HEADER": emulator.authority.identity_header},
        )
        body = await response.json()
    assert response.status == 200 and body["token_type"] == "Bearer" and int(body["expires_on"]) > time.time()
    assert emulator.authority.is_valid(body["access_token"])


async def test_unknown_api_version_is_refused(emulator: Emulator, src: VaultClients) -> None:
    await src.secrets.set_secret("x", "v")  # acquires a token through the SDK
    token = (await StaticCredentialFrom(emulator).get_token()).token
    status, _, body = await raw(
        emulator.vaults["src"].url,
        emulator.ca_file,
        "GET",
        "/secrets?api-version=1999-01-01",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert status == 400 and "is not recognized" in body["error"]["message"]


class StaticCredentialFrom:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def get_token(self) -> AccessToken:
        token, expires = self.emulator.authority.issue("https://vault.azure.net")
        return AccessToken(token, expires)


async def test_denied_operation_names_permission_and_vault(emulator: Emulator, src: VaultClients) -> None:
    emulator.vaults["src"].vault.settings.deny = ["backup", "secrets/get"]
    await src.secrets.set_secret("d", "v")
    with pytest.raises(HttpResponseError) as backup:
        await src.secrets.backup_secret("d")
    assert backup.value.status_code == 403 and "secrets backup permission on key vault 'src;" in str(
        backup.value.message
    )
    assert backup.value.error is not None and backup.value.error.code == "Forbidden"
    with pytest.raises(HttpResponseError) as get:
        await src.secrets.get_secret("d")
    assert get.value.status_code == 403 and "secrets get permission" in str(get.value.message)


@pytest.mark.parametrize("retry_after", [False, True])
async def test_throttling_answers_429_and_does_not_count_refusals(
    emulator: Emulator, src: VaultClients, retry_after: bool
) -> None:
    vault = emulator.vaults["src"].vault
    await src.secrets.set_secret("t", "v")
    vault.settings.rate_limit = 5
    vault.settings.retry_after = retry_after
    vault.throttle.general.stamps.clear()
    statuses: list[int] = []
    headers: list[dict[str, str]] = []
    token = (await StaticCredentialFrom(emulator).get_token()).token
    for _ in range(8):
        status, response_headers, body = await raw(
            emulator.vaults["src"].url,
            emulator.ca_file,
            "GET",
            "/secrets/t/?api-version=7.5",
            headers={"Authorization": f"Bearer {token}"},
        )
        statuses.append(status)
        headers.append(response_headers)
    assert statuses == [200] * 5 + [429] * 3
    assert body["error"]["code"] == "Throttled" and "VaultRequestTypeLimitReached" in body["error"]["message"]
    assert ("Retry-After" in headers[-1]) is retry_after
    assert len(vault.throttle.general.stamps) == 5  # the 429s did not count
    snapshot = await control(emulator.vaults["src"].url, emulator.ca_file, "stats")
    assert snapshot["throttled"] == 3
    if not retry_after:  # the SDK does not retry a POST on a 429 without Retry-After (facts §11)
        with pytest.raises(HttpResponseError) as err:
            await src.secrets.backup_secret("t")
        assert err.value.status_code == 429


async def test_creates_have_their_own_smaller_budget(emulator: Emulator, src: VaultClients) -> None:
    vault = emulator.vaults["src"].vault
    vault.settings.create_rate_limit = 3
    for i in range(3):
        await src.secrets.set_secret(f"c{i}", "v")
    with pytest.raises(HttpResponseError) as err:
        await src.secrets.set_secret("c9", "v", retry_total=0)  # the SDK would retry a PUT until the window frees
    assert err.value.status_code == 429
    assert (await src.secrets.get_secret("c0")).value == "v"  # reads still pass


async def test_throttle_reset_frees_the_window(emulator: Emulator, src: VaultClients) -> None:
    vault = emulator.vaults["src"].vault
    await src.secrets.set_secret("w", "v")
    vault.settings.rate_limit = 2
    await src.secrets.get_secret("w")
    await src.secrets.get_secret("w")
    with pytest.raises(HttpResponseError) as err:
        await src.secrets.get_secret("w", retry_total=0)
    assert err.value.status_code == 429
    await control(emulator.vaults["src"].url, emulator.ca_file, "throttle/reset", method="POST")
    assert (await src.secrets.get_secret("w", retry_total=0)).value == "v"


async def test_stats_count_operations(emulator: Emulator, src: VaultClients) -> None:
    from azure.keyvault.secrets._shared import http_challenge_cache

    # The SDK caches challenges per host:port for the whole process, and a port can be reused by an earlier test's
    # vault: start from an empty cache so this client's first call is the bodiless probe.
    http_challenge_cache.clear()
    await control(emulator.vaults["src"].url, emulator.ca_file, "stats/reset", method="POST")
    await src.secrets.set_secret("s", "v")
    await src.secrets.backup_secret("s")
    await src.secrets.get_secret("s")
    stats = await control(emulator.vaults["src"].url, emulator.ca_file, "stats")
    # The first call to a host is the SDK's bodiless probe (401), then the real one: both are counted.
    assert stats["operations"]["secrets.set"] == 2 and stats["statuses"]["401"] == 1
    assert stats["operations"]["secrets.backup"] == 1 and stats["operations"]["secrets.get"] == 1
    assert stats["requests"] == 4 and stats["throttled"] == 0 and stats["unauthorized"] == 1


async def test_injected_faults_are_survived_by_sdk_retries(emulator: Emulator, src: VaultClients) -> None:
    vault = emulator.vaults["src"].vault
    await src.secrets.set_secret("f", "v")
    vault.settings.error_rate = 1.0
    with pytest.raises(HttpResponseError) as err:
        await src.secrets.get_secret("f", retry_total=0)
    assert err.value.status_code in (500, 503)
    vault.settings.error_rate = 0.0
    vault.settings.drop_rate = 1.0
    with pytest.raises(ServiceRequestError.__mro__[1]):  # AzureError: the connection was dropped
        await src.secrets.get_secret("f", retry_total=0)
    vault.settings.drop_rate = 0.0
    assert vault.stats.faults >= 2


def test_config_rejects_unknown_keys_and_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rate_limt"):
        EmulatorConfig.from_mapping({"vaults": {"a": {"rate_limt": 1}}})
    with pytest.raises(ConfigError, match="soft_delete_days"):
        EmulatorConfig.from_mapping({"vaults": {"a": {"soft_delete_days": 3}}})
    with pytest.raises(ConfigError, match="deny"):
        EmulatorConfig.from_mapping({"vaults": {"a": {"deny": ["fly"]}}})
    with pytest.raises(ConfigError, match="loopback"):
        EmulatorConfig.from_mapping({"vaults": {"a": {"host": "10.0.0.1"}}})
    config_file = tmp_path / "vaults.toml"
    config_file.write_text("[defaults]\nrate_limit = 100\n[vaults.a]\nport = 0\n[vaults.b]\nrate_limit = 0\n")
    config = EmulatorConfig.load(config_file)
    assert config.vaults["a"].rate_limit == 100 and config.vaults["b"].rate_limit == 0
    config_file.write_text("[vaults.a\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        EmulatorConfig.load(config_file)


async def test_vault_reachable_under_a_real_vault_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With dns_name set, the certificate covers that name and ids use it (an /etc/hosts line does the rest)."""
    config = emulator_config(named={"dns_name": "src.vault.azure.net", "host": "127.0.0.1"})
    async with Emulator(config, state_dir=tmp_path) as emu:
        assert emu.vaults["named"].url.startswith("https://src.vault.azure.net:")
        context = ssl.create_default_context(cafile=str(emu.ca_file))
        port = int(emu.vaults["named"].url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="src.vault.azure.net"
        )
        writer.close()
        await writer.wait_closed()


BACKUP_IN_A_RESTORE_IN_B = """
import asyncio, sys
from azure.identity.aio import DefaultAzureCredential
from azure.keyvault.secrets.aio import SecretClient

async def main(a, b):
    async with DefaultAzureCredential() as credential:
        # verify_challenge_resource=False: the emulator is on 127.0.0.1, not *.vault.azure.net
        async with SecretClient(a, credential, verify_challenge_resource=False) as source, SecretClient(
            b, credential, verify_challenge_resource=False
        ) as target:
            await source.set_secret("carried", "carried-0")
            blob = await source.backup_secret("carried")
            restored = await target.restore_secret_backup(blob)
            print("restored", (await target.get_secret(restored.name)).value)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_cli_serves_until_sigterm_and_writes_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / "e.env"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kvmigrate",
            "emulator",
            "--vault",
            "a=0",
            "--vault",
            "b=0",
            "--env-file",
            str(env_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not env_file.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert env_file.exists(), process.stderr.read() if process.stderr else ""
        values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert set(values) == {
            "IDENTITY_ENDPOINT",
            "IDENTITY_HEADER",
            "KVMIGRATE_CA_BUNDLE",
            "KVMIGRATE_VAULT_A",
            "KVMIGRATE_VAULT_B",
        }
        assert values["KVMIGRATE_VAULT_A"].startswith("https://127.0.0.1:")
        assert oct(os.stat(env_file).st_mode & 0o777) == "0o600"
        # Plain SDK code with only the vault URLs, the credential's environment and the CA changed.
        sdk = subprocess.run(
            [sys.executable, "-c", BACKUP_IN_A_RESTORE_IN_B, values["KVMIGRATE_VAULT_A"], values["KVMIGRATE_VAULT_B"]],
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "MSI_"))},
                "IDENTITY_ENDPOINT": values["IDENTITY_ENDPOINT"],
                "IDENTITY_HEADER": values["IDENTITY_HEADER"],
                "SSL_CERT_FILE": values["KVMIGRATE_CA_BUNDLE"],
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert sdk.returncode == 0 and sdk.stdout.split() == ["restored", "carried-0"], sdk.stderr[-2000:]
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "KVMIGRATE_VAULT_B=" in out


def test_cli_rejects_unknown_config_key(tmp_path: Path) -> None:
    config_file = tmp_path / "bad.toml"
    config_file.write_text("[vaults.a]\nprot = 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "kvmigrate", "emulator", "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "prot" in result.stderr and "Traceback" not in result.stderr


def test_env_file_names_the_ca_absolutely_and_replaces_a_symlink_instead_of_following_it(tmp_path: Path) -> None:
    """A relative --state-dir still gives an absolute KVMIGRATE_CA_BUNDLE, so the env file works after a `cd`."""
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    env_file = tmp_path / "e.env"
    env_file.symlink_to(victim)
    process = subprocess.Popen(
        [sys.executable, "-m", "kvmigrate", "emulator", "--vault", "a=0", "--env-file", "e.env", "--state-dir", "st"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while env_file.is_symlink() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert not env_file.is_symlink(), process.stderr.read() if process.stderr else ""
        values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    ca = Path(values["KVMIGRATE_CA_BUNDLE"])
    assert ca.is_absolute() and ca == (tmp_path / "st" / "ca.pem") and ca.read_text().startswith("-----BEGIN")
    assert victim.read_text() == "untouched"
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "st").stat().st_mode & 0o777) == "0o700"
