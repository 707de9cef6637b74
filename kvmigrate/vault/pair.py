"""Open a source and a target vault together: one credential, one rate limiter per vault, both adapters."""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType

from azure.core.credentials_async import AsyncTokenCredential

from kvmigrate.errors import SameVaultError
from kvmigrate.options import ConnectionOptions
from kvmigrate.ratelimit import AdaptiveRateLimiter
from kvmigrate.vault.adapter import VaultAdapter
from kvmigrate.vault.clients import build_clients, vault_url
from kvmigrate.vault.credential import default_credential


def vault_pair_urls(source: str, target: str) -> tuple[str, str]:
    """Normalise both references and refuse one vault named twice."""
    source_url, target_url = vault_url(source), vault_url(target)
    if source_url == target_url:
        raise SameVaultError(f"source and target are the same vault ({source_url}); pass two different vaults")
    return source_url, target_url


class VaultPair:
    """``async with VaultPair(...) as pair``: ``pair.source`` / ``pair.target`` adapters, closed on exit."""

    def __init__(self, source_url: str, target_url: str, *, connection: ConnectionOptions, rps: float,
                 credential: AsyncTokenCredential | None = None) -> None:
        self.source_url = source_url
        self.target_url = target_url
        self.connection = connection
        self.limiters = {source_url: AdaptiveRateLimiter(rps), target_url: AdaptiveRateLimiter(rps)}
        self._credential = credential
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> VaultPair:
        stack = self._stack
        credential = self._credential
        if credential is None:
            credential = default_credential(self.connection.tenant_id)
            stack.push_async_callback(credential.close)
        try:
            adapters = []
            for url in (self.source_url, self.target_url):
                clients = build_clients(url, credential, ca_bundle=self.connection.ca_bundle,
                                        limiter=self.limiters[url])
                await stack.enter_async_context(clients)
                adapters.append(VaultAdapter(clients, label=url))
        except BaseException:
            await stack.aclose()
            raise
        self.source, self.target = adapters
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._stack.aclose()

    def requests(self) -> dict[str, int]:
        return {url: limiter.requests for url, limiter in self.limiters.items()}

    def throttled(self) -> dict[str, int]:
        return {url: limiter.throttled for url, limiter in self.limiters.items()}
