"""The copy engine: list the source, back objects up, restore them into the target; every step journaled.

Stages are joined by bounded queues so memory stays flat however large the vault::

    inventory ──todo(≤4·N)──▶ N backup workers ──blobs(≤N)──▶ N restore workers ──▶ journal

Three separate controls: the *rate* of HTTP attempts per vault is the pipeline policy in ``ratelimit.py``; the
*concurrency* is the number of workers per stage; *retries* are azure-core's plus ``retry.py`` for the POSTs
azure-core will not retry. Dry run is one gate (``_gate``) before each write, not a second code path.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from azure.core.credentials_async import AsyncTokenCredential

from kvmigrate.endpoints import Endpoints, endpoint_labels
from kvmigrate.errors import KvmigrateError, ObjectConflictError, WrongSecurityDomainError, first_expected
from kvmigrate.inventory import TargetIndex, is_selected
from kvmigrate.journal import ItemRecord, Journal
from kvmigrate.models import Action, ItemState, ObjectRef, ObjectType, Outcome
from kvmigrate.options import CopyOptions
from kvmigrate.plan import decide
from kvmigrate.vault.adapter import Listed
from kvmigrate.vault.values import NotExportableError, ValuePayload

log = logging.getLogger(__name__)
_OUTCOME_OF = {
    Action.ALREADY_COPIED: Outcome.ALREADY_COPIED,
    Action.SKIP_EXISTING: Outcome.SKIPPED_EXISTING,
    Action.CONFLICT_DELETED: Outcome.CONFLICT_DELETED,
}
#: After a purge Key Vault frees the name only seconds later (facts §9): keep retrying a 409 this long.
PURGE_SETTLE_SECONDS = 60.0


#: What the inventory hands a backup worker: the listed object and its journal row as read then (None: new).
Todo = tuple[Listed, ItemRecord | None]


class EngineEvents(Protocol):
    """What the engine tells a subscriber (progress display, tests); every method must be cheap."""

    def on_listed(self, ref: ObjectRef) -> None: ...

    def on_finished(self, ref: ObjectRef, outcome: str) -> None: ...


class NoEvents:
    def on_listed(self, ref: ObjectRef) -> None:
        return None

    def on_finished(self, ref: ObjectRef, outcome: str) -> None:
        return None


@dataclass
class Failure:
    type: str
    name: str
    error: str


@dataclass
class RunSummary:
    """What a run did; ``as_dict`` is the ``-o json`` document."""

    source: str
    target: str
    state: Path
    dry_run: bool = False
    operation: str = "copy"
    copied: int = 0
    already_copied: int = 0
    previously_done: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    blocked: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    per_type: dict[str, Counter[str]] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    throttled: dict[str, int] = field(default_factory=dict)
    elapsed_seconds: float = 0.0
    interrupted: bool = False

    @property
    def failed(self) -> int:
        return len(self.failures)

    def count(self, ref: ObjectRef, outcome: str) -> None:
        self.per_type.setdefault(ref.type.plural, Counter())[outcome] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "source": self.source,
            "target": self.target,
            "dry_run": self.dry_run,
            "copied": self.copied,
            "already_copied": self.already_copied,
            "previously_done": self.previously_done,
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(self.skipped),
            "failed": self.failed,
            "failures": [{"type": f.type, "name": f.name, "error": f.error} for f in self.failures],
            "blocked": [{"type": f.type, "name": f.name, "reason": f.error} for f in self.blocked],
            "notes": self.notes,
            "by_type": {t: dict(c) for t, c in sorted(self.per_type.items())},
            "requests": sum(self.requests.values()),
            "requests_by_vault": self.requests,
            "throttled": sum(self.throttled.values()),
            "throttled_by_vault": self.throttled,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "interrupted": self.interrupted,
            "state": str(self.state),
        }


def default_state_path(source_url: str, target_url: str, base: Path | None = None) -> Path:
    """``./.kvmigrate/<source>__<target>.db``: one journal per pair of ends (vault hosts or archive paths)."""

    def slug(label: str) -> str:
        text = label.removeprefix("https://").strip("/")
        return "".join(c if c.isalnum() or c in ".-" else "_" for c in text)[-80:]

    return (base or Path.cwd()) / ".kvmigrate" / f"{slug(source_url)}__{slug(target_url)}.db"


class CopyEngine:
    """Copy every selected object of one vault into another by backup → restore."""

    def __init__(
        self,
        options: CopyOptions,
        *,
        credential: AsyncTokenCredential | None = None,
        events: EngineEvents | None = None,
        stop: asyncio.Event | None = None,
        state_base: Path | None = None,
    ) -> None:
        self.options = options
        self.events: EngineEvents = events or NoEvents()
        self.stop = stop or asyncio.Event()
        self.source_url, self.target_url = endpoint_labels(options.operation, options.source, options.target)
        self.state_path = options.state or default_state_path(self.source_url, self.target_url, state_base)
        self.summary = RunSummary(
            self.source_url, self.target_url, self.state_path, dry_run=options.dry_run, operation=options.operation
        )
        self.purged: set[tuple[ObjectType, str]] = set()
        self.resuming: set[tuple[ObjectType, str]] = set()
        self.ends = Endpoints(
            options.operation,
            options.source,
            options.target,
            connection=options.connection,
            rps=options.rps,
            credential=credential,
            latest_only=options.latest_only,
        )
        self.by_value = options.mode == "value"  # auto mode turns it on when the target refuses blobs
        self.index = TargetIndex()
        self.index_loaded = asyncio.Event()  # decisions wait for the target's names; the source listing does not
        self.limiters = self.ends.limiters

    async def run(self) -> RunSummary:
        """Run to completion (or until ``stop`` is set); fatal vault errors are raised, per-object ones counted."""
        started = time.monotonic()
        options = self.options
        with tempfile.TemporaryDirectory(prefix="kvmigrate-dry-run-") as scratch:
            # A dry run writes nothing, its journal included: it keeps a throwaway one.
            state_path = Path(scratch) / "dry-run.db" if options.dry_run else self.state_path
            await self._run_with_journal(state_path)
        self.summary.elapsed_seconds = time.monotonic() - started
        self.summary.interrupted = self.stop.is_set()
        return self.summary

    async def _run_with_journal(self, state_path: Path) -> None:
        options = self.options
        with Journal.open(
            state_path,
            source=self.source_url,
            target=self.target_url,
            operation=options.operation,
            restart=options.restart,
        ) as journal:
            self.journal = journal
            async with self.ends as ends:
                self.source, self.target = ends.source, ends.target
                if ends.value_sink is not None:
                    ends.value_sink.journal = journal
                try:
                    await self._execute()
                finally:
                    self.summary.requests = ends.requests()
                    self.summary.throttled = ends.throttled()
                    if ends.value_sink is not None and self.by_value:
                        self.summary.throttled[f"{self.target_url} (creates)"] = ends.value_sink.creates.throttled
                        for ref, version in ends.value_sink.unreadable:
                            self.summary.notes.append(
                                f"{ref} version {version} is disabled in the source: Key "
                                "Vault does not reveal its value, so it was not copied"
                            )
                if ends.archive is not None and options.operation == "backup" and not options.dry_run:
                    finished = not self.stop.is_set() and not self.summary.failures
                    ends.archive.write_manifest(complete=finished)

    async def _execute(self) -> None:
        concurrency = self.options.concurrency
        todo: asyncio.Queue[Todo | None] = asyncio.Queue(maxsize=4 * concurrency)
        blobs: asyncio.Queue[tuple[Listed, bytes, tuple[str, ...]] | None] = asyncio.Queue(maxsize=concurrency)
        try:
            async with asyncio.TaskGroup() as group:
                # The source listing starts while the target's names load: only decisions wait for them.
                group.create_task(self._load_index())
                group.create_task(self._produce(todo, concurrency))
                backups = [group.create_task(self._backup_worker(todo, blobs)) for _ in range(concurrency)]
                for _ in range(concurrency):
                    group.create_task(self._restore_worker(blobs))

                async def close_blobs() -> None:
                    await asyncio.wait(backups)
                    for _ in range(concurrency):
                        await blobs.put(None)

                group.create_task(close_blobs())
        except BaseExceptionGroup as group_error:
            raise first_expected(group_error) from None

    # -- stage 1: inventory ----------------------------------------------------------------------------------------
    async def _load_index(self) -> None:
        self.index = await TargetIndex.load(self.target, self.options.types)
        self.index_loaded.set()

    async def _produce(self, todo: asyncio.Queue[Todo | None], workers: int) -> None:
        try:
            for object_type in self.options.types:
                async for listed in self.source.list_objects(object_type):
                    if self.stop.is_set():
                        return
                    ref = listed.ref
                    if listed.managed or not is_selected(ref.name, self.options.include, self.options.exclude):
                        continue  # managed keys/secrets travel inside their certificate's backup
                    self.events.on_listed(ref)
                    # A new journal has no rows: skip a read per object (names are unique within a type).
                    record = self.journal.get(ref) if self.journal.is_resumed else None
                    if record is not None and record.state.is_final:
                        self.summary.previously_done += 1
                        self.summary.count(ref, "previously-done")
                        self.events.on_finished(ref, "previously-done")
                        continue
                    if record is None:
                        self.journal.record_pending(ref, ())
                    await todo.put((listed, record))
        finally:
            for _ in range(workers):
                await todo.put(None)

    # -- stage 2: decide and back up -------------------------------------------------------------------------------
    async def _backup_worker(
        self, todo: asyncio.Queue[Todo | None], blobs: asyncio.Queue[tuple[Listed, bytes, tuple[str, ...]] | None]
    ) -> None:
        await self.index_loaded.wait()
        while (item := await todo.get()) is not None:
            if self.stop.is_set():
                continue  # leave it pending: a rerun picks it up
            listed, record = item
            ref = listed.ref
            versions: tuple[str, ...] = ()
            try:
                outcome = await self._decide(ref, record)
                if outcome is not None:
                    self._finish(ref, outcome)
                    continue
                if not await self._gate(f"copy {ref}", _nothing):
                    self._finish(ref, Outcome.COPIED)
                    continue
                if self.target.wants_versions:
                    versions = tuple(await self.source.versions(ref))
                blob = await self._read(ref)
                log.debug("backed up %s (%d %s)", ref, len(blob), "versions" if self.by_value else "bytes")
                if record is not None and record.state is ItemState.RESTORING:
                    # Settled above: the in-flight row may now be written again. Fresh objects skip this commit
                    # (the blob lives only in memory, so ``backed_up`` would tell a rerun nothing).
                    self.journal.mark(ref, ItemState.BACKED_UP)
            except NotExportableError as blocked:
                self._finish(ref, Outcome.BLOCKED, reason=str(blocked))
                continue
            except KvmigrateError as error:
                if error.is_fatal:
                    raise
                self._fail(ref, error)
                continue
            await blobs.put((listed, blob, versions))

    async def _decide(self, ref: ObjectRef, record: ItemRecord | None) -> Outcome | None:
        """Settle what the target already holds (through ``plan.decide``); None means: copy it.

        ``record`` is the journal's row as the inventory read it (no write has touched the object since).
        """
        in_flight = record is not None and record.state is ItemState.RESTORING
        key = (ref.type, ref.key)
        if self.by_value and (in_flight or (record is not None and self.journal.version_map(ref))):
            # An earlier run was writing it (interrupted, or failed midway): the value sink settles what is there.
            self.resuming.add(key)
            return None
        target_versions: list[str] = []
        if in_flight or key in self.index.active:
            target_versions = await self.target.versions(ref)
        source_versions = await self.source.versions(ref) if target_versions and not self.by_value else None
        decision = decide(
            ref,
            options=self.options,
            source_versions=source_versions,
            by_value=self.by_value,
            target_versions=target_versions,
            target_deleted=key in self.index.deleted,
        )
        action = decision.action
        if action is Action.BLOCKED_NOT_EXPORTABLE:
            raise NotExportableError(f"{ref}: {decision.reason}")
        if action is Action.COPY:
            return None
        if action is Action.CONFLICT_EXISTING:
            raise ObjectConflictError(
                f"{ref} already exists in the target with other versions (--on-conflict fail)",
                vault=self.target_url,
                status=409,
            )
        if action is Action.RECOVER_DELETED:
            if not await self._gate(f"recover deleted {ref} in the target", lambda: self.target.recover_deleted(ref)):
                return Outcome.CONFLICT_DELETED
            self.index.deleted.discard(key)
            self.index.active.add(key)
            return await self._decide(ref, record)
        if action is Action.PURGE_AND_COPY:
            if not await self._gate(f"purge deleted {ref} from the target", lambda: self.target.purge_deleted(ref)):
                return Outcome.CONFLICT_DELETED
            self.index.deleted.discard(key)
            self.purged.add(key)
            return None
        return _OUTCOME_OF[action]

    # -- stage 3: restore ------------------------------------------------------------------------------------------
    async def _restore_worker(self, blobs: asyncio.Queue[tuple[Listed, bytes, tuple[str, ...]] | None]) -> None:
        while (entry := await blobs.get()) is not None:
            listed, blob, versions = entry
            ref = listed.ref
            try:
                await self.journal.mark_restoring(ref)
                try:
                    await self._write(ref, blob, versions, listed.enabled)
                except WrongSecurityDomainError:
                    if self.options.mode != "auto":
                        raise
                    self._switch_to_values()
                    await self._write(ref, await self._read(ref), versions, listed.enabled)
                log.debug("restored %s", ref)
                self._finish(ref, Outcome.COPIED)
            except NotExportableError as blocked:
                self._finish(ref, Outcome.BLOCKED, reason=str(blocked))
            except KvmigrateError as error:
                if error.is_fatal:
                    raise
                self._fail(ref, error)
            finally:
                del blob

    async def _read(self, ref: ObjectRef) -> Any:
        """Stage 2's read: a backup blob, or (value mode) the object's versions with their values."""
        if self.by_value:
            assert self.ends.value_source is not None
            return await self.ends.value_source.backup(ref)
        return await self.source.backup(ref)

    async def _write(self, ref: ObjectRef, payload: Any, versions: tuple[str, ...], enabled: bool | None) -> None:
        """Stage 3's write: restore a blob, or (value mode) write the versions the target lacks.

        A 409 right after this run purged the name is Key Vault still finishing the purge ("currently being deleted
        ... retry later"): wait for it, up to ``PURGE_SETTLE_SECONDS``. Retrying value mode is safe, since its sink
        skips versions the journal has mapped.
        """
        deadline = time.monotonic() + PURGE_SETTLE_SECONDS
        just_purged = (ref.type, ref.key) in self.purged
        while True:
            try:
                if isinstance(payload, ValuePayload):
                    assert self.ends.value_sink is not None
                    await self.ends.value_sink.restore(ref, payload, resuming=(ref.type, ref.key) in self.resuming)
                else:
                    await self.target.restore(ref, payload, versions=versions, enabled=enabled)
                return
            except ObjectConflictError:
                if not isinstance(payload, ValuePayload) and await self._restored_already(ref):
                    return
                if just_purged and time.monotonic() < deadline:
                    await asyncio.sleep(2.0)
                    continue
                raise

    async def _restored_already(self, ref: ObjectRef) -> bool:
        """After a 409 on restore: did an earlier attempt, whose answer was lost, restore exactly these versions?"""
        target_versions = await self.target.versions(ref)
        return bool(target_versions) and target_versions == await self.source.versions(ref)

    def _switch_to_values(self) -> None:
        """Auto mode: the target refused a blob for its subscription/geography; move the rest by value."""
        if not self.by_value:
            self.by_value = True
            note = (
                "the target refused backup blobs (another subscription or geography): switched to value mode for "
                "secrets and certificates; keys cannot move this way"
            )
            log.warning("%s", note)
            self.summary.notes.append(note)

    # -- bookkeeping ----------------------------------------------------------------------------------------------
    async def _gate(self, description: str, action: Callable[[], Awaitable[None]]) -> bool:
        """The one dry-run gate: run ``action`` unless this is a dry run; say what was skipped."""
        if self.options.dry_run:
            log.info("dry run: would %s", description)
            return False
        await action()
        return True

    def _finish(self, ref: ObjectRef, outcome: Outcome, *, reason: str | None = None) -> None:
        log.info("%s: %s", ref, outcome.value)
        summary = self.summary
        if outcome is Outcome.BLOCKED:
            summary.blocked.append(Failure(ref.type.value, ref.name, reason or outcome.value))
        if self.options.dry_run:  # nothing was written; the journal is a throwaway one
            label = "would-copy" if outcome is Outcome.COPIED else outcome.value
            summary.count(ref, label)
            if outcome is Outcome.COPIED:
                summary.copied += 1
            else:
                summary.skipped[outcome.value] += 1
            self.events.on_finished(ref, label)
            return
        if outcome is Outcome.COPIED:
            summary.copied += 1
            self.journal.mark(ref, ItemState.DONE, outcome=outcome)
        elif outcome is Outcome.ALREADY_COPIED:
            summary.already_copied += 1
            self.journal.mark(ref, ItemState.DONE, outcome=outcome)
        else:
            summary.skipped[outcome.value] += 1
            self.journal.mark(ref, ItemState.SKIPPED, outcome=outcome, reason=reason or outcome.value)
        summary.count(ref, outcome.value)
        self.events.on_finished(ref, outcome.value)

    def _fail(self, ref: ObjectRef, error: KvmigrateError) -> None:
        log.warning("%s failed: %s", ref, error)
        self.summary.failures.append(Failure(ref.type.value, ref.name, str(error)))
        self.summary.count(ref, Outcome.FAILED.value)
        self.journal.mark(ref, ItemState.FAILED, outcome=Outcome.FAILED, error=str(error))
        self.events.on_finished(ref, Outcome.FAILED.value)


async def _nothing() -> None:
    """The write of a dry run's "copy" decision is the whole backup → restore; the gate needs an action."""
