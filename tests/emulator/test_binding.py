"""Where vaults listen and how they name themselves: (address, port) pairs, real-looking ids on any port."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from azure.core.exceptions import ResourceNotFoundError
from azure.core.pipeline.transport import AioHttpTransport
from azure.identity.aio import DefaultAzureCredential
from azure.keyvault.keys.aio import KeyClient
from azure.keyvault.secrets.aio import SecretClient

from kvmigrate.emulator import Emulator
from kvmigrate.emulator.config import ConfigError, EmulatorConfig
from tests.conftest import emulator_config


def free_port_on(*hosts: str) -> int:
    """A port that is free on every one of ``hosts`` right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = int(probe.getsockname()[1])
        try:
            for host in hosts:
                with socket.socket() as other:
                    other.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no port free on all of {hosts}")


class HostsFile(AbstractResolver):
    """Name resolution as an /etc/hosts line would give it, for this client only (tests never edit /etc/hosts)."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self.names[host]
        return [
            ResolveResult(hostname=host, host=address, port=port, family=socket.AF_INET, proto=0, flags=0),
        ]

    async def close(self) -> None:
        return None


@pytest.fixture
async def credential_env(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """Sets an emulator's environment, then yields the stock credential (created after the variables)."""

    async def start(emu: Emulator) -> DefaultAzureCredential:
        for key, value in emu.environment().items():
            monkeypatch.setenv(key, value)
        return DefaultAzureCredential()

    yield start


async def test_two_vaults_share_a_port_on_different_loopback_addresses(tmp_path: Path, monkeypatch: Any) -> None:
    port = free_port_on("127.0.0.2", "127.0.0.3")
    config = emulator_config(a={"host": "127.0.0.2", "port": port}, b={"host": "127.0.0.3", "port": port})
    async with Emulator(config, state_dir=tmp_path) as emu:
        assert emu.vaults["a"].url == f"https://127.0.0.2:{port}" and emu.vaults["b"].url == f"https://127.0.0.3:{port}"
        for key, value in emu.environment().items():
            monkeypatch.setenv(key, value)
        options: dict[str, Any] = {"connection_verify": str(emu.ca_file), "verify_challenge_resource": False}
        async with (
            DefaultAzureCredential() as credential,
            SecretClient(emu.vaults["a"].url, credential, **options) as a,
            SecretClient(emu.vaults["b"].url, credential, **options) as b,
        ):
            made = await a.set_secret("only-in-a", "v")  # TLS verified for 127.0.0.2 ...
            assert made.id is not None and made.id.startswith(f"https://127.0.0.2:{port}/secrets/only-in-a/")
            with pytest.raises(ResourceNotFoundError):
                await b.get_secret("only-in-a")  # ... and for 127.0.0.3, a different vault on the same port
            assert (await b.set_secret("only-in-b", "w")).id.startswith(f"https://127.0.0.3:{port}/")  # type: ignore[union-attr]
        assert emu.vaults["a"].vault.stats.operations["secrets.get"] == 0
        assert emu.vaults["b"].vault.stats.operations["secrets.get"] >= 1


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"vaults": {"a": {"port": 8443}, "b": {"port": 8443}}}, "both bind 127.0.0.1 port 8443"),
        ({"vaults": {"a": {"port": 8443}, "b": {"host": "localhost", "port": 8443}}}, "both bind 127.0.0.1"),
        ({"vaults": {"a": {"host": "127.0.0.2", "port": 443}}, "arm": {"host": "127.0.0.2", "port": 443}}, "arm"),
        ({"vaults": {"a": {"dns_name": "x.vault.azure.net"}, "b": {"dns_name": "X.vault.azure.net"}}}, "dns_name"),
        ({"vaults": {"a": {"dns_name": "https://x.vault.azure.net"}}}, "not a host name"),
        ({"vaults": {"a": {"dns_name": "x.vault.azure.net:8443"}}}, "not a host name"),
        ({"vaults": {"a": {"host": "10.0.0.1"}}}, "not a loopback address"),
        ({"vaults": {"a": {"tenant": "contoso"}}}, "not a GUID"),
    ],
)
def test_config_refuses_clashing_or_malformed_bindings(tables: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EmulatorConfig.from_mapping(tables)


def test_config_allows_one_port_on_several_addresses() -> None:
    config = EmulatorConfig.from_mapping(
        {
            "vaults": {
                "a": {"host": "127.0.0.2", "port": 443, "dns_name": "a.vault.azure.net"},
                "b": {"host": "127.0.0.3", "port": 443, "dns_name": "b.vault.azure.net"},
                "c": {"port": 0},
                "d": {"port": 0},
            },
            "arm": {"host": "127.0.0.5", "port": 443, "dns_name": "management.azure.com"},
        }
    )
    assert {v.port for v in config.vaults.values()} == {0, 443}


async def test_vault_on_a_non_443_port_looks_real_to_the_unmodified_sdk(tmp_path: Path, credential_env: Any) -> None:
    """``https://NAME.vault.azure.net:PORT``: the SDK's challenge check passes, ids carry no port, paging works."""
    port = free_port_on("127.0.0.2")
    config = emulator_config(
        named={"host": "127.0.0.2", "port": port, "dns_name": "kvport.vault.azure.net", "max_page_size": 2}
    )
    async with Emulator(config, state_dir=tmp_path) as emu:
        url = emu.vaults["named"].url
        assert url == f"https://kvport.vault.azure.net:{port}"
        hosts = HostsFile({"kvport.vault.azure.net": "127.0.0.2"})
        context = ssl.create_default_context(cafile=str(emu.ca_file))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=hosts)) as raw:
            async with raw.get(f"{url}/secrets?api-version=7.5", ssl=context) as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"].endswith(f'resource="https://vault.azure.net:{port}"')
        credential = await credential_env(emu)
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=hosts))
        async with (
            credential,
            # No verify_challenge_resource=False: the stock check compares netlocs, port included.
            SecretClient(
                url,
                credential,
                connection_verify=str(emu.ca_file),
                transport=AioHttpTransport(session=session, connection_verify=str(emu.ca_file)),
            ) as secrets,
            KeyClient(
                url,
                credential,
                connection_verify=str(emu.ca_file),
                transport=AioHttpTransport(session=session, connection_verify=str(emu.ca_file)),
            ) as keys,
        ):
            for i in range(5):
                await secrets.set_secret(f"p{i}", f"v{i}")
            got = await secrets.get_secret("p0")
            assert got.id == f"https://kvport.vault.azure.net/secrets/p0/{got.properties.version}"  # no port, as real
            names = sorted([p.name async for p in secrets.list_properties_of_secrets()])  # pages of 2: nextLinks
            assert names == [f"p{i}" for i in range(5)]
            key = await keys.create_rsa_key("k", size=2048)
            assert key.id is not None and urlsplit(key.id).netloc == "kvport.vault.azure.net"
            assert (await keys.get_key("k")).key.kid == key.id
        await session.close()
        assert emu.vaults["named"].vault.stats.operations["secrets.list"] >= 3  # the nextLinks reached the vault
        # nextLink keeps the listener's port so it reaches the vault; ids do not.
        token, _ = emu.authority.issue("https://vault.azure.net")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=hosts)) as raw:
            async with raw.get(
                f"{url}/secrets?api-version=7.5&maxresults=1", ssl=context, headers={"Authorization": f"Bearer {token}"}
            ) as response:
                page = await response.json()
        assert page["nextLink"].startswith(f"https://kvport.vault.azure.net:{port}/secrets?api-version=7.5&$skiptoken=")
        assert page["value"][0]["id"] == "https://kvport.vault.azure.net/secrets/p0"
