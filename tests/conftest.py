"""Shared fixtures: emulated vaults over HTTPS and a managed-identity credential pointed at them."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from azure.identity.aio import DefaultAzureCredential

from kvmigrate.emulator import Emulator, EmulatorConfig
from kvmigrate.vault.clients import VaultClients, build_clients

_SCRUB = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "KVMIGRATE_CA_BUNDLE",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "KVMIGRATE_STATE_DIR",
    "XDG_STATE_HOME",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "https_proxy",
    "http_proxy",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No ambient Azure credentials, proxies or CA settings leak into a test; each test has its own state folder."""
    for name in _SCRUB:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KVMIGRATE_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    yield


def emulator_config(**vaults: dict[str, object]) -> EmulatorConfig:
    """Config with test-friendly defaults: fast consistency, each vault as given."""
    return EmulatorConfig.from_mapping({"defaults": {"consistency_delay": 0.2}, "vaults": vaults})


@pytest.fixture
async def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Emulator]:
    """Two vaults (``src``, ``dst``) of one subscription and geography, plus ``far`` in another subscription."""
    config = emulator_config(
        src={}, dst={}, far={"subscription": "00000000-0000-0000-0000-00000000b002", "geography": "elsewhere"}
    )
    async with Emulator(config, state_dir=tmp_path / "emulator") as emu:
        for key, value in emu.environment().items():
            monkeypatch.setenv(key, value)
        yield emu


@pytest.fixture
async def credential(emulator: Emulator) -> AsyncIterator[DefaultAzureCredential]:
    """The stock credential chain; it finds the emulator's App Service-style identity endpoint."""
    cred = DefaultAzureCredential(exclude_visual_studio_code_credential=True)
    async with cred:
        yield cred


@pytest.fixture
def ca_bundle(emulator: Emulator) -> Path:
    return emulator.ca_file


async def _clients(emulator: Emulator, credential: DefaultAzureCredential, name: str) -> AsyncIterator[VaultClients]:
    async with build_clients(emulator.vaults[name].url, credential, ca_bundle=emulator.ca_file) as clients:
        yield clients


@pytest.fixture
async def src(emulator: Emulator, credential: DefaultAzureCredential) -> AsyncIterator[VaultClients]:
    """SDK clients of the source vault, through the product's own client builder."""
    async for clients in _clients(emulator, credential, "src"):
        yield clients


@pytest.fixture
async def dst(emulator: Emulator, credential: DefaultAzureCredential) -> AsyncIterator[VaultClients]:
    """SDK clients of a second vault in the same subscription and geography."""
    async for clients in _clients(emulator, credential, "dst"):
        yield clients


@pytest.fixture
async def far(emulator: Emulator, credential: DefaultAzureCredential) -> AsyncIterator[VaultClients]:
    """SDK clients of a vault in another subscription and geography: backup blobs cannot go there."""
    async for clients in _clients(emulator, credential, "far"):
        yield clients


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("AZURE_CORE_DISABLE_TRACING", "1")
