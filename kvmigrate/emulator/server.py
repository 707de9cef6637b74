"""Run several emulated vaults (one HTTPS listener each) and one managed-identity endpoint in one process."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from aiohttp import web

from kvmigrate.emulator import auth, tls
from kvmigrate.emulator.app import Route, Vault, build_app
from kvmigrate.emulator.config import EmulatorConfig


def all_routes() -> list[Route]:
    from kvmigrate.emulator import certificates, keys, secrets

    return [*secrets.routes(), *keys.routes(), *certificates.routes()]


@dataclass
class RunningVault:
    """A vault that accepts connections: its URL and its live state (tests read ``vault.stats``)."""

    name: str
    url: str
    vault: Vault


class Emulator:
    """Start every configured vault; ``async with Emulator(config) as emu`` yields once all listeners accept."""

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        state_dir: Path | None = None,
        route_factory: Callable[[], list[Route]] = all_routes,
    ) -> None:
        self.config = config
        self.authority = auth.TokenAuthority()
        self._state_dir = state_dir
        self._route_factory = route_factory
        self._stack = AsyncExitStack()
        self.vaults: dict[str, RunningVault] = {}
        self.identity_endpoint = ""
        self.ca_file = Path()

    async def __aenter__(self) -> Emulator:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        state_dir = self._state_dir
        if state_dir is None:
            state_dir = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="kvmigrate-emulator-")))
        settings = self.config.vaults
        files = tls.issue(
            state_dir,
            ip_addresses=sorted({"127.0.0.1", *(s.host for s in settings.values() if s.host != "localhost")}),
            dns_names=[s.dns_name for s in settings.values() if s.dns_name],
        )
        self.ca_file = files.ca_file
        ssl_context = files.server_context()

        identity = web.AppRunner(auth.identity_app(self.authority), access_log=None)
        await identity.setup()
        self._stack.push_async_callback(identity.cleanup)
        site = web.TCPSite(identity, "127.0.0.1", 0)
        await site.start()
        self.identity_endpoint = f"http://127.0.0.1:{_bound_port(site)}/msi/token"

        routes = self._route_factory()
        for name, vault_settings in settings.items():
            vault = Vault(name, vault_settings, self.authority, routes)
            runner = web.AppRunner(build_app(vault), access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            self._stack.push_async_callback(runner.cleanup)
            vault_site = web.TCPSite(runner, vault_settings.host, vault_settings.port, ssl_context=ssl_context)
            await vault_site.start()
            port = _bound_port(vault_site)
            if vault_settings.dns_name:
                vault.base_url = f"https://{vault_settings.dns_name}" + ("" if port == 443 else f":{port}")
            else:
                vault.base_url = f"https://{vault_settings.host}:{port}"
            self.vaults[name] = RunningVault(name, vault.base_url, vault)

    def environment(self) -> dict[str, str]:
        """What a client needs: the identity endpoint and header, the CA file and one URL per vault."""
        env = {
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.authority.identity_header,
            "KVMIGRATE_CA_BUNDLE": str(self.ca_file),
        }
        for name, running in self.vaults.items():
            env[f"KVMIGRATE_VAULT_{name.upper().replace('-', '_')}"] = running.url
        return env

    def write_env_file(self, path: Path) -> None:
        """Write the environment atomically (0600) so a watcher never reads half a file."""
        text = "".join(f"{key}={value}\n" for key, value in self.environment().items())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _bound_port(site: web.TCPSite) -> int:
    server = site._server  # aiohttp keeps the asyncio server here; the public API has no bound-port accessor
    assert isinstance(server, asyncio.Server)
    return int(server.sockets[0].getsockname()[1])
