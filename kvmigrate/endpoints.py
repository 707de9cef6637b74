"""The two ends of a run, opened together: vault → vault (copy), vault → archive (backup), archive → vault
(restore). The engine's stages do not change between them; only the source and the sink do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol

from azure.core.credentials_async import AsyncTokenCredential

from kvmigrate.archive import Archive, ArchiveSink, ArchiveSource
from kvmigrate.models import ObjectRef, ObjectType
from kvmigrate.options import ConnectionOptions
from kvmigrate.ratelimit import AdaptiveRateLimiter
from kvmigrate.valuemode import ValueSink, ValueSource
from kvmigrate.vault.adapter import Listed, VaultAdapter
from kvmigrate.vault.clients import build_clients, check_ca_bundle, vault_url
from kvmigrate.vault.credential import default_credential
from kvmigrate.vault.pair import vault_pair_urls
from kvmigrate.vault.values import ValueAdapter

Operation = Literal["copy", "backup", "restore"]


class Source(Protocol):
    """Where objects and their blobs come from."""

    label: str

    def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]: ...

    async def versions(self, ref: ObjectRef) -> list[str]: ...

    async def backup(self, ref: ObjectRef) -> Any: ...


class Sink(Protocol):
    """Where blobs go, and what is already there."""

    label: str
    wants_versions: bool

    def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]: ...

    def list_deleted(self, object_type: ObjectType) -> AsyncIterator[str]: ...

    async def versions(self, ref: ObjectRef) -> list[str]: ...

    async def restore(
        self, ref: ObjectRef, blob: Any, *, versions: tuple[str, ...] = (), enabled: bool | None = None
    ) -> None: ...

    async def recover_deleted(self, ref: ObjectRef) -> None: ...

    async def purge_deleted(self, ref: ObjectRef) -> None: ...


def endpoint_labels(operation: Operation, source: str, target: str) -> tuple[str, str]:
    """Normalised names of both ends: vault URLs, or absolute archive paths."""
    if operation == "copy":
        return vault_pair_urls(source, target)
    if operation == "backup":
        return vault_url(source), str(Path(target).expanduser().resolve())
    return str(Path(source).expanduser().resolve()), vault_url(target)


class Endpoints:
    """``async with Endpoints(...) as ends``: ``ends.source`` and ``ends.target``, closed on exit."""

    def __init__(
        self,
        operation: Operation,
        source: str,
        target: str,
        *,
        connection: ConnectionOptions,
        rps: float,
        credential: AsyncTokenCredential | None = None,
        latest_only: bool = False,
    ) -> None:
        self.operation = operation
        self.latest_only = latest_only
        self.value_source: ValueSource | None = None
        self.value_sink: ValueSink | None = None
        self.source_label, self.target_label = endpoint_labels(operation, source, target)
        check_ca_bundle(connection.ca_bundle)  # before anything is written
        self.connection = connection
        vaults = {
            "copy": (self.source_label, self.target_label),
            "backup": (self.source_label,),
            "restore": (self.target_label,),
        }[operation]
        self.limiters = {url: AdaptiveRateLimiter(rps) for url in vaults}
        self._credential = credential
        self._stack = AsyncExitStack()
        self.archive: Archive | None = None

    async def __aenter__(self) -> Endpoints:
        try:
            await self._open()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def _open(self) -> None:
        credential = self._credential
        if credential is None:
            credential = default_credential(self.connection.tenant_id)
            self._stack.push_async_callback(credential.close)
        adapters: dict[str, VaultAdapter] = {}
        for url, limiter in self.limiters.items():
            clients = build_clients(url, credential, ca_bundle=self.connection.ca_bundle, limiter=limiter)
            await self._stack.enter_async_context(clients)
            adapters[url] = VaultAdapter(clients, label=url)
        self.source: Source
        self.target: Sink
        if self.operation == "copy":
            self.source, self.target = adapters[self.source_label], adapters[self.target_label]
            # Value mode reads and writes values through the same clients (same limiters).
            source, target = adapters[self.source_label], adapters[self.target_label]
            self.value_source = ValueSource(
                source, ValueAdapter(source.clients, label=source.label), latest_only=self.latest_only
            )
            self.value_sink = ValueSink(target, ValueAdapter(target.clients, label=target.label))
        elif self.operation == "backup":
            self.archive = Archive.create_or_resume(Path(self.target_label), source=self.source_label)
            self.source, self.target = adapters[self.source_label], ArchiveSink(self.archive)
        else:
            self.archive = Archive.load(Path(self.source_label))
            self.source, self.target = ArchiveSource(self.archive), adapters[self.target_label]

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    def requests(self) -> dict[str, int]:
        return {url: limiter.requests for url, limiter in self.limiters.items()}

    def throttled(self) -> dict[str, int]:
        return {url: limiter.throttled for url, limiter in self.limiters.items()}
