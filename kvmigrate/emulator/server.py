"""Run several emulated vaults, one managed-identity endpoint and optionally a minimal ARM, in one process.

Each vault listens on its own (address, port): several may share a port on different loopback addresses
(127.0.0.2:443 and 127.0.0.3:443), which together with ``dns_name`` and an ``/etc/hosts`` line makes them reachable
as ``https://NAME.vault.azure.net`` by tools that build that URL themselves (az CLI's ``--vault-name``).

Ids are rendered as a real vault's: ``https://{dns_name}/secrets/...`` never carries a port, even when the vault is
published on 8443 — a real id never does, and clients must not use ids to reach the vault. What must reach it keeps
the listener's port: the vault's URL, the challenge's resource (``auth.challenge_resource``) and ``nextLink``s (built
from the request's own host and port, with ``:443`` as Key Vault writes them). A vault without ``dns_name`` is
addressed by IP, for which no real form exists: its ids keep ``https://127.0.0.1:PORT``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import tempfile
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from aiohttp import web

from kvmigrate.emulator import arm, auth, identity, statefiles, tls
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


def origin(host: str, port: int, *, omit_443: bool = False) -> str:
    """``https://host:port`` with IPv6 hosts bracketed; ``:443`` left out when asked (a URL, not a nextLink)."""
    try:
        shown = f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        shown = host
    return f"https://{shown}" + ("" if omit_443 and port == 443 else f":{port}")


class Emulator:
    """Start every configured vault; ``async with Emulator(config) as emu`` yields once all listeners accept.

    With ``state_dir`` the CA and the token-signing key are kept there and shared with every other emulator process
    given the same directory; without it they live in a temporary directory for this process only.
    """

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        state_dir: Path | None = None,
        route_factory: Callable[[], list[Route]] = all_routes,
    ) -> None:
        self.config = config
        self._state_dir = state_dir
        self._route_factory = route_factory
        self._stack = AsyncExitStack()
        self._authority: auth.TokenAuthority | None = None
        self.vaults: dict[str, RunningVault] = {}
        self.identity_endpoint = ""
        self.arm_url = ""
        self.ca_file = Path()

    @property
    def authority(self) -> auth.TokenAuthority:
        """The emulated Azure AD (signing key, identity header); available once the emulator has started."""
        if self._authority is None:
            raise RuntimeError("the emulator has not started; use it as `async with Emulator(...)`")
        return self._authority

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
        state_dir = statefiles.ensure_private_dir(state_dir.absolute())
        with statefiles.locked(state_dir):
            ca = tls.load_or_create_ca(state_dir)
            self._authority = auth.TokenAuthority.from_state_dir(state_dir, tenant=self.config.identity_tenant)
        self.ca_file = ca.ca_file
        settings = self.config.vaults
        hosts = {s.host for s in settings.values()}
        names = {s.dns_name for s in settings.values() if s.dns_name}
        if self.config.arm is not None:
            hosts.add(self.config.arm.host)
            if self.config.arm.dns_name:
                names.add(self.config.arm.dns_name)
        ssl_context = ca.server_context(
            ip_addresses=sorted({"127.0.0.1", *(h for h in hosts if h != "localhost")}), dns_names=sorted(names)
        )

        identity_port = await self._serve(identity.identity_app(self.authority), "127.0.0.1", 0)
        self.identity_endpoint = f"http://127.0.0.1:{identity_port}/msi/token"

        if self.config.arm is not None:
            subscriptions = sorted({arm.Subscription(s.subscription, s.tenant) for s in settings.values()}, key=str)
            arm_settings = self.config.arm
            port = await self._serve(
                arm.arm_app(self.authority, subscriptions), arm_settings.host, arm_settings.port, ssl_context
            )
            self.arm_url = origin(
                arm_settings.dns_name or arm_settings.host, port, omit_443=bool(arm_settings.dns_name)
            )

        routes = self._route_factory()
        for name, vault_settings in settings.items():
            vault = Vault(name, vault_settings, self.authority, routes)
            port = await self._serve(build_app(vault), vault_settings.host, vault_settings.port, ssl_context)
            if vault_settings.dns_name:
                vault.base_url = f"https://{vault_settings.dns_name}"  # ids never carry a port
                url = origin(vault_settings.dns_name, port, omit_443=True)
            else:
                vault.base_url = url = origin(vault_settings.host, port)
            self.vaults[name] = RunningVault(name, url, vault)

    async def _serve(
        self, app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> int:
        """Listen on (host, port) until the emulator stops; return the bound port."""
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        return _bound_port(site)

    def environment(self) -> dict[str, str]:
        """What a client needs: the identity endpoint and header, the CA file (absolute) and one URL per vault."""
        env = {
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.authority.identity_header,
            "KVMIGRATE_CA_BUNDLE": str(self.ca_file),
        }
        for name, running in self.vaults.items():
            env[f"KVMIGRATE_VAULT_{name.upper().replace('-', '_')}"] = running.url
        if self.arm_url:
            env["KVMIGRATE_ARM_URL"] = self.arm_url
        return env

    def hosts_lines(self) -> list[str]:
        """The ``/etc/hosts`` lines that make each ``dns_name`` reach its listener."""
        pairs = [(s.host, s.dns_name) for s in self.config.vaults.values() if s.dns_name]
        if self.config.arm is not None and self.config.arm.dns_name:
            pairs.append((self.config.arm.host, self.config.arm.dns_name))
        return [f"{'127.0.0.1' if host == 'localhost' else host} {name}" for host, name in pairs]

    def write_env_file(self, path: Path) -> None:
        """Write the environment atomically (0600, replacing rather than following a symlink at ``path``)."""
        text = "".join(f"{key}={value}\n" for key, value in self.environment().items())
        if not path.parent.exists():
            path.parent.mkdir(parents=True, mode=0o700)
        statefiles.replace_private(path, text.encode("utf-8"))


def _bound_port(site: web.TCPSite) -> int:
    server = site._server  # aiohttp keeps the asyncio server here; the public API has no bound-port accessor
    assert isinstance(server, asyncio.Server)
    return int(server.sockets[0].getsockname()[1])
