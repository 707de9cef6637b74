"""Choose and build the route for a run: its two ends, their SDK clients and limiters, and the route object.

Everything here that can refuse a run — an address, the CA bundle, an archive's manifest, a backup folder that is not
empty — raises before any network request and before anything is written. Opening the clients costs no request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from kvmigrate.archive import Archive, ArchiveSource, ArchiveWriter
from kvmigrate.archive.folder import BackupFolder, FolderSource
from kvmigrate.archive.manifest import MANIFEST
from kvmigrate.archive.reader import ArchiveSettings
from kvmigrate.errors import ArchiveIncompleteError
from kvmigrate.options import ConnectionOptions, CopyOptions
from kvmigrate.ratelimit import AdaptiveRateLimiter
from kvmigrate.routes.auto import AutoRoute
from kvmigrate.routes.base import Route
from kvmigrate.routes.blobs import BlobRoute, VaultBlobs
from kvmigrate.routes.sync import SyncRoute
from kvmigrate.routes.values import ValueRoute
from kvmigrate.settings.stage import SettingsEnd
from kvmigrate.vault.adapter import VaultAdapter
from kvmigrate.vault.clients import build_clients, check_ca_bundle, vault_url
from kvmigrate.vault.credential import Credential, default_credential
from kvmigrate.vault.pair import vault_pair_urls
from kvmigrate.vault.settings import VaultSettings
from kvmigrate.vault.values import VaultValues


def run_labels(options: CopyOptions) -> tuple[str, str]:
    """Normalised names of both ends (vault URLs, or absolute archive paths); usage errors for bad ones."""
    if options.operation in ("copy", "sync"):
        return vault_pair_urls(options.source, options.target)
    if options.operation == "backup":
        return vault_url(options.source), str(Path(options.target).expanduser().absolute())
    return str(Path(options.source).expanduser().absolute()), vault_url(options.target)


class Vaults:
    """The adapters of the vaults a run talks to, each with its clients and limiter; closed together."""

    def __init__(
        self,
        urls: tuple[str, ...],
        *,
        connection: ConnectionOptions,
        rps: float,
        credential: Credential | None,
    ) -> None:
        check_ca_bundle(connection.ca_bundle)
        self.connection = connection
        self.limiters = {url: AdaptiveRateLimiter(rps) for url in urls}
        self._credential = credential
        self.adapters: dict[str, VaultAdapter] = {}
        self.values: dict[str, VaultValues] = {}
        self.settings: dict[str, VaultSettings] = {}

    async def open(self, stack: AsyncExitStack) -> None:
        credential = self._credential
        if credential is None:
            credential = default_credential(self.connection.tenant_id)
            stack.push_async_callback(credential.close)
        for url, limiter in self.limiters.items():
            clients = build_clients(url, credential, ca_bundle=self.connection.ca_bundle, limiter=limiter)
            await stack.enter_async_context(clients)
            adapter = VaultAdapter(clients, label=url)
            self.adapters[url] = adapter
            self.values[url] = VaultValues(clients, adapter)
            self.settings[url] = VaultSettings(clients, label=url)


@asynccontextmanager
async def open_route(options: CopyOptions, *, credential: Credential | None = None) -> AsyncIterator[Route]:
    """``async with open_route(options) as route``: the route of this run, its clients closed on exit."""
    source_label, target_label = run_labels(options)
    archive_source: ArchiveSource | None = None
    archive_target: ArchiveWriter | None = None
    notes: list[str] = []
    folder: FolderSource | None = None
    if options.operation == "restore" and not (Path(source_label) / MANIFEST).exists():
        folder = FolderSource(BackupFolder.load(Path(source_label)))  # backup files of az, PowerShell, the portal
        notes += [f"skipped {line}" for line in folder.folder.skipped]
        urls: tuple[str, ...] = (target_label,)
    elif options.operation == "restore":
        archive = Archive.load(Path(source_label))
        if not archive.is_whole:
            problems = "; ".join(archive.problems())
            if not options.allow_incomplete and not options.dry_run:
                raise ArchiveIncompleteError(
                    f"archive {archive.root} is incomplete: {problems}; restore it anyway with --allow-incomplete"
                    " (missing objects are reported failed)"
                )
            notes.append(f"archive {archive.root} is incomplete: {problems}")
        archive_source = ArchiveSource(archive)
        urls = (target_label,)
    elif options.operation == "backup":
        archive_target = ArchiveWriter(Path(target_label), source=source_label)
        urls = (source_label,)
    else:
        urls = (source_label, target_label)
    vaults = Vaults(urls, connection=options.connection, rps=options.rps, credential=credential)
    async with AsyncExitStack() as stack:
        await vaults.open(stack)
        limiters = vaults.limiters
        if folder is not None:
            target_end = VaultBlobs(vaults.adapters[target_label])
            yield BlobRoute(folder, target_end, name="restore", limiters=limiters, notes=notes)
            return
        if archive_source is not None:
            target_end = VaultBlobs(vaults.adapters[target_label])
            restored: tuple[SettingsEnd, SettingsEnd] = (
                ArchiveSettings(archive_source.archive),
                vaults.settings[target_label],
            )
            yield BlobRoute(
                archive_source, target_end, name="restore", limiters=limiters, notes=notes, settings=restored
            )
            return
        if archive_target is not None:
            source_end = VaultBlobs(vaults.adapters[source_label])
            archived: tuple[SettingsEnd, SettingsEnd] = (vaults.settings[source_label], archive_target.settings)
            yield BlobRoute(source_end, archive_target, name="backup", limiters=limiters, settings=archived)
            return
        source, target = vaults.adapters[source_label], vaults.adapters[target_label]
        settings: tuple[SettingsEnd, SettingsEnd] = (vaults.settings[source_label], vaults.settings[target_label])
        blobs = BlobRoute(VaultBlobs(source), VaultBlobs(target), name="blobs", limiters=limiters, settings=settings)
        values = ValueRoute(
            source,
            vaults.values[source_label],
            target,
            vaults.values[target_label],
            latest_only=options.latest_only,
            limiters=limiters,
            create_rps=options.create_rps,
            settings=settings,
        )
        chosen: Route = blobs if options.mode == "backup" else values
        if options.mode == "auto":
            chosen = AutoRoute(blobs, values, limiters=limiters)
        if options.operation == "sync":
            chosen = SyncRoute(
                chosen,
                source=source,
                target=target,
                source_values=vaults.values[source_label],
                target_values=vaults.values[target_label],
                appender=None if options.mode == "backup" else values,
            )
        yield chosen
