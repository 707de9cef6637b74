"""The engine: list the source, decide each object, move what needs moving through the run's route, journal it.

One code path for ``copy``, ``backup``, ``restore``, ``plan`` and ``--dry-run``::

    preflight: the source's first pages ‖ the target's name index     (nothing written yet)
    locks (vault pair, journal) → journal
    fan_out(listing, N workers): decide (decide.py) → gate → read → journal "restoring" → write → journal "done"

Three separate controls: the *rate* of HTTP attempts per vault is the pipeline policy in ``ratelimit.py``; the
*concurrency* is the number of objects in flight; *retries* are azure-core's for reads plus ``retry.py`` and the
value route's own for writes, one layer per call. Dry run is one gate (``_gate``) before each write; ``plan`` is the
dry run with a recording subscriber. The engine asks the route and never which mode it is in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from pathlib import Path

from kvmigrate.decide import Decision, decide_assessed, decide_listed, reason_for
from kvmigrate.errors import (
    KvmigrateError,
    ObjectBlockedError,
    ObjectConflictError,
    PermissionDeniedError,
    TooManyVersionsError,
)
from kvmigrate.fanout import fan_out
from kvmigrate.hardening import disable_core_dumps
from kvmigrate.inventory import Inventory, TargetIndex, is_selected
from kvmigrate.journal import ItemRecord, Journal, run_journal
from kvmigrate.models import OUTCOME_OF, Action, ItemState, Listed, ObjectRef, ObjectType, Outcome
from kvmigrate.options import CopyOptions
from kvmigrate.ratelimit import AdaptiveRateLimiter
from kvmigrate.routes.base import Assessment, Route
from kvmigrate.routes.build import open_route, run_labels
from kvmigrate.settings.model import IssuerPasswords
from kvmigrate.settings.stage import SettingsStage
from kvmigrate.statedir import default_journal
from kvmigrate.summary import Events, Failure, RunSummary, Subscriber
from kvmigrate.vault.credential import Credential

log = logging.getLogger(__name__)
#: After a purge Key Vault frees the name only seconds later; after a recover the object shows seconds later.
SETTLE_SECONDS = 60.0
#: How often a write after a purge, or a look for a recovered object, is tried again meanwhile.
SETTLE_INTERVAL = 1.0
#: Permission denials of one operation on one kind of object, with no object of that kind moved yet, that stop the
#: run: a denial of the whole vault. Fewer (or after a success) fail only their objects (a role scoped to them).
WHOLE_VAULT_DENIALS = 3
#: The outcomes of a write: the target now holds the source's object, so it is finished (a rerun trusts its row) and
#: its settings follow (a key's rotation policy, a certificate's pending request) whether it was new or updated.
MOVED = (Outcome.COPIED, Outcome.UPDATED)


class Engine:
    """Move every selected object of the source into the target through the route ``options`` choose."""

    def __init__(
        self,
        options: CopyOptions,
        *,
        credential: Credential | None = None,
        events: Subscriber | None = None,
        stop: asyncio.Event | None = None,
        route: Route | None = None,
    ) -> None:
        """``route`` replaces the one ``options`` choose (tests give in-memory ends); it is not closed here."""
        if options.operation == "sync" and not options.replace_settings:
            options = options.model_copy(update={"replace_settings": True})  # a standby converges: its settings too
        self.options = options
        self._given_route = route
        self.stop = stop or asyncio.Event()
        self.source_url, self.target_url = run_labels(options)  # usage errors before anything else
        self.state_path: Path | None = None
        if not options.dry_run:
            self.state_path = options.state or default_journal(
                self.source_url, self.target_url, operation=options.operation
            )
        self.summary = RunSummary(
            self.source_url, self.target_url, self.state_path, dry_run=options.dry_run, operation=options.operation
        )
        self.events = Events(self.summary)
        if events is not None:
            self.events.add(events)
        self.limiters: dict[str, AdaptiveRateLimiter] = {}
        self._credential = credential
        self.passwords, warnings = IssuerPasswords.load(options.issuer_credentials)  # before anything is written
        for warning in warnings:
            log.warning("%s", warning)
            self.summary.notes.append(warning)
        self.summary.allow_missing_credentials = options.allow_missing_issuer_credentials
        self.settings: SettingsStage | None = None
        self._in_target: dict[ObjectType, list[str]] = {t: [] for t in ObjectType}
        self._source_names: set[tuple[ObjectType, str]] = set()
        self._moved_certificates: list[str] = []
        self._denials: Counter[tuple[str, str, ObjectType]] = Counter()
        self._moved: Counter[ObjectType] = Counter()
        self._purged: set[tuple[ObjectType, str]] = set()

    def subscribe(self, subscriber: Subscriber) -> None:
        self.events.add(subscriber)

    async def run(self) -> RunSummary:
        """Run to completion (or until ``stop`` is set); fatal errors are raised, per-object ones counted."""
        disable_core_dumps()
        started = time.monotonic()
        try:
            async with self._open_route() as route:
                self.route = route
                self.limiters = dict(route.limiters)
                inventory = self.inventory = Inventory(route.source, self.options.types)
                try:
                    self.index = await self._preflight(route, inventory)
                    with run_journal(
                        self.state_path,
                        source=self.source_url,
                        target=self.target_url,
                        operation=self.options.operation,
                        restart=self.options.restart,
                    ) as journal:
                        self.journal = journal
                        await self._execute(route, inventory, journal)
                finally:
                    await inventory.aclose()  # its readers use the route's clients
        finally:
            self.summary.elapsed_seconds = time.monotonic() - started
            self.summary.interrupted = self.stop.is_set()
        return self.summary

    def _open_route(self) -> contextlib.AbstractAsyncContextManager[Route]:
        if self._given_route is not None:
            return contextlib.nullcontext(self._given_route)
        return open_route(self.options, credential=self._credential)

    async def _preflight(self, route: Route, inventory: Inventory) -> TargetIndex:
        """The source's first pages and the target's name index, concurrently; nothing is written yet."""
        index = asyncio.ensure_future(TargetIndex.load(route.target, self.options.types))
        try:
            await inventory.prefetch()
            return await index
        finally:
            index.cancel()  # a no-op once done
            with contextlib.suppress(BaseException):
                await index  # its outcome is taken either way: a failed index never goes unretrieved

    async def _execute(self, route: Route, inventory: Inventory, journal: Journal) -> None:
        dry_run = self.options.dry_run
        if not dry_run:
            await route.prepare()
        if route.settings is not None:
            self.settings = SettingsStage(*route.settings, self.options, journal, self.passwords)
        ended = False  # a fatal error leaves it False: that target end (an archive) is not complete
        try:
            if self.settings is not None:
                await self.settings.before_objects()  # certificate policies name issuers: those first
            await fan_out(inventory, self._one, concurrency=self.options.concurrency, stop=self.stop)
            if self.settings is not None and not self.stop.is_set():
                keys = self._in_target[ObjectType.KEY] if ObjectType.KEY in self.options.types else []
                pending = await self.settings.after_objects(keys, self._moved_certificates, stop=self.stop)
                for name in pending:
                    self.summary.pending_requests.append(name)
            if self.options.delete and not self.stop.is_set():
                await self._delete_what_the_source_lost(route)
            ended = True
        finally:
            self.summary.counters = route.counters()
            if self.settings is not None:
                self.summary.add_settings(self.settings.results)
            self.summary.requests = {url: limiter.requests for url, limiter in route.limiters.items()}
            self.summary.throttled = {url: limiter.throttled for url, limiter in route.limiters.items()}
            self.summary.notes.extend(route.notes())
            if not dry_run:
                route.finish(complete=ended and not self.stop.is_set() and not self.summary.failures)

    # -- one object ------------------------------------------------------------------------------------------------
    async def _one(self, listed: Listed) -> None:
        ref = listed.ref
        options = self.options
        row = self.journal.get(ref) if self.journal.is_resumed else None
        present = self.index.has(listed) or self._is_there_as(row)
        decision = decide_listed(
            listed,
            selected=is_selected(ref.name, options.include, options.exclude),
            blocked=self.route.blocked(listed),
            row=row,
            present=present,
            trust_fingerprint=not options.deep,
        )
        if decision is not None and decision.action in (Action.EXCLUDED, Action.SKIP_MANAGED):
            self.events.on_decided(listed, decision, None)
            return  # not this run's objects: plan lists them, nothing counts them
        self._source_names.add((ref.type, ref.key))
        self.events.on_listed(listed)
        try:
            assessment = None
            if decision is None:
                assessment, decision = await self._assess(listed, row, present=present)
            self.events.on_decided(listed, decision, assessment)
            await self._act(listed, decision, assessment, row)
        except ObjectBlockedError as blocked:
            self._finish(listed, Outcome(blocked.action), detail=str(blocked))
        except KvmigrateError as error:
            if error.is_fatal:
                raise
            self._watch_denials(listed, error)
            self._fail(listed, error)

    def _is_there_as(self, row: ItemRecord | None) -> bool:
        """The target holds the object under the name an earlier restore learnt (a backup file's presumed one)."""
        if row is None or not row.target_ref:
            return False
        kind, _, name = row.target_ref.partition("/")
        return (ObjectType(kind), name.lower()) in self.index.active

    async def _assess(self, listed: Listed, row: ItemRecord | None, *, present: bool) -> tuple[Assessment, Decision]:
        in_flight = row is not None and row.state is ItemState.RESTORING
        assessment = await self.route.assess(
            listed, present=present or in_flight, row=row, journal=self.journal, thorough=self.options.dry_run
        )
        decision = decide_assessed(
            listed, assessment, options=self.options, target_deleted=self.index.is_deleted(listed), row=row
        )
        return assessment, decision

    async def _act(
        self, listed: Listed, decision: Decision, assessment: Assessment | None, row: ItemRecord | None
    ) -> None:
        ref = listed.ref
        action = decision.action
        if action is Action.RECOVER_DELETED:
            if not await self._gate(f"recover deleted {ref} in the target"):
                self._finish(listed, Outcome.WOULD_COPY, detail=decision.reason)
                return
            await self.route.recover(ref)
            self.summary.recovered += 1
            await self._until_present(listed)
            self.index.active[(ref.type, ref.key)] = listed
            self.index.deleted.discard((ref.type, ref.key))
            assessment, decision = await self._assess(listed, row, present=True)
            self.events.on_decided(listed, decision, assessment)
            await self._act(listed, decision, assessment, row)
            return
        if not action.writes:
            if action.fails:
                self._fail(listed, KvmigrateError(decision.reason), reason=action.value)
            else:
                # A skip of an object an earlier run copied keeps that row: the next rerun says "changed" too.
                keep = row is not None and row.state is ItemState.DONE and OUTCOME_OF[action].is_skip
                self._finish(listed, OUTCOME_OF[action], detail=decision.reason, journal=not keep)
            return
        assert assessment is not None, "a write is always decided from the route's comparison"
        if not await self._gate(f"{action.value} {ref}"):
            self._finish(listed, Outcome.WOULD_COPY, detail=decision.reason)
            return
        if action is Action.PURGE_AND_COPY:
            await self.route.purge(ref)
            self.summary.purged += 1
            self._purged.add((ref.type, ref.key))
            self.journal.forget_versions(ref)
        try:
            payload = await self.route.read(listed, assessment)
        except TooManyVersionsError as error:
            self._fail(listed, error, reason=Action.TOO_MANY_VERSIONS.value)
            return
        await self.journal.mark_restoring(ref, route=assessment.route)
        real = await self._write(listed, payload, assessment)
        del payload
        if real is not None:
            self.summary.notes.append(f"{ref} (presumed from its backup file's name) is {real} in the target")
        if row is not None and row.state is ItemState.DONE and not self.index.has(listed):
            self.summary.recopied += 1
        if assessment.hidden_versions:
            self.summary.notes.append(
                f"{ref}: {assessment.hidden_versions} disabled older version(s) were not copied: Key Vault does not "
                "reveal a disabled version's value"
            )
        self._moved[ref.type] += 1
        done = Outcome.UPDATED if action is Action.UPDATE else Outcome.COPIED
        self._finish(listed, done, route=assessment.route, real=real)

    async def _write(self, listed: Listed, payload: object, assessment: Assessment) -> ObjectRef | None:
        """The route's write; after a purge, a 409 is Key Vault still freeing the name ("retry later"): wait."""
        deadline = time.monotonic() + SETTLE_SECONDS
        just_purged = (listed.ref.type, listed.ref.key) in self._purged
        while True:
            try:
                return await self.route.write(listed, payload, assessment, self.journal)
            except ObjectConflictError:
                if just_purged and time.monotonic() < deadline:
                    await asyncio.sleep(SETTLE_INTERVAL)
                    continue
                raise

    async def _until_present(self, listed: Listed) -> None:
        """After a recover: Key Vault shows the object again only seconds later."""
        for _ in range(int(SETTLE_SECONDS / max(SETTLE_INTERVAL, 0.01))):
            if await self.route.target.versions(listed.ref):
                return
            await asyncio.sleep(SETTLE_INTERVAL)

    # -- sync --delete --------------------------------------------------------------------------------------------
    async def _delete_what_the_source_lost(self, route: Route) -> None:
        """Soft-delete the target's objects the source no longer lists — never more than the safety catch allows.

        Why a catch for the whole step: an emptied or wrong source must not wipe the standby, so when more would go
        than ``--max-delete`` (default: the smaller of 10 and 25 %) nothing is deleted and the run fails.
        """
        options = self.options
        ours = [
            listed
            for (kind, _), listed in sorted(self.index.active.items())
            if kind in options.types
            and not listed.managed
            and is_selected(listed.ref.name, options.include, options.exclude)
        ]
        gone = [listed for listed in ours if (listed.ref.type, listed.ref.key) not in self._source_names]
        limit = options.delete_limit(len(ours))
        if len(gone) > limit:
            reason = (
                f"refused: {len(gone)} of the target's {len(ours)} objects would be deleted, more than the limit of "
                f"{limit} (--max-delete, default the smaller of 10 and 25%); check that the source is the right vault, "
                "or pass --max-delete"
            )
            log.warning("deletion step %s", reason)
            self.summary.failures.append(Failure("deletion", "step", reason))
            return
        for listed in gone:
            decision = Decision(Action.DELETE, reason_for(Action.DELETE))
            self.events.on_decided(listed, decision, None)
            if await self._gate(f"delete {listed.ref} in the target"):
                try:
                    await route.delete(listed.ref)
                except KvmigrateError as error:
                    if error.is_fatal:
                        raise
                    self._fail(listed, error)
                    continue
                self.summary.deleted += 1
            self.events.on_finished(listed.ref, Outcome.DELETED, decision.reason)

    # -- bookkeeping ----------------------------------------------------------------------------------------------
    async def _gate(self, description: str) -> bool:
        """The one dry-run gate: False (and a log line) where a real run would write."""
        if self.options.dry_run:
            log.info("dry run: would %s", description)
            return False
        return True

    def _finish(
        self,
        listed: Listed,
        outcome: Outcome,
        *,
        detail: str | None = None,
        route: str | None = None,
        journal: bool = True,
        real: ObjectRef | None = None,
    ) -> None:
        """Record how ``listed`` ended (journal row under its listed name; ``real``: what the target calls it)."""
        ref = listed.ref
        shown = real or ref
        log.info("%s: %s", shown, outcome.value)
        if outcome in (*MOVED, Outcome.ALREADY_COPIED, Outcome.PREVIOUSLY_DONE, Outcome.WOULD_COPY):
            self._in_target[shown.type].append(shown.name)
            if outcome is not Outcome.PREVIOUSLY_DONE and shown.type is ObjectType.CERTIFICATE:
                self._moved_certificates.append(shown.name)
        if journal and outcome is not Outcome.PREVIOUSLY_DONE and outcome is not Outcome.WOULD_COPY:
            state = ItemState.DONE if outcome in (*MOVED, Outcome.ALREADY_COPIED) else ItemState.SKIPPED
            self.journal.finish(
                ref,
                state,
                outcome=outcome,
                fingerprint=listed.fingerprint,
                route=route,
                reason=detail,
                target_ref=None if real is None else f"{real.type.value}/{real.name}",
            )
        self.events.on_finished(shown, outcome, None if outcome is Outcome.COPIED else detail)

    def _fail(self, listed: Listed, error: KvmigrateError, *, reason: str | None = None) -> None:
        ref = listed.ref
        log.warning("%s failed: %s", ref, error)
        self.journal.finish(ref, ItemState.FAILED, outcome=Outcome.FAILED, reason=reason, error=str(error))
        self.events.on_finished(ref, Outcome.FAILED, str(error))

    def _watch_denials(self, listed: Listed, error: KvmigrateError) -> None:
        """Stop the run when the first objects of a kind are all refused the same permission (a vault-wide denial)."""
        if not isinstance(error, PermissionDeniedError):
            return
        key = (error.vault, error.operation, listed.ref.type)
        self._denials[key] += 1
        if self._denials[key] >= WHOLE_VAULT_DENIALS and not self._moved[listed.ref.type]:
            error.is_fatal = True  # this instance only: every other object would be refused the same way
            raise error
