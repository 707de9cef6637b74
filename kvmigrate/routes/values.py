"""Move secrets and certificates by value: read each version's value at the source, recreate it at the target.

Backup blobs restore only inside one subscription and geography; values cross subscriptions, geographies and tenants.
Versions get new ids in the target, so what the target holds is matched to the source by content digest (a secret's
value, a certificate's thumbprint) and attributes, in creation order — never by trusting the journal alone:

* ``assess`` settles an object the target already has: its versions must be the source's first ones, in order
  (``prefix``: an interrupted run; the rest are appended), all of them (``same``), or it is someone else's
  (``different``: reported, never overwritten). The journal's version map spares reading a value for versions it
  recorded, but only for target versions the target itself still lists.
* ``write`` appends the missing versions oldest first, journaling each (source id → target id) before the next.
  A write whose answer was lost — a dropped connection, a timeout, a 5xx after the request went out — is settled by
  reading the target for a new version with that content, never re-sent blindly; nothing below re-sends it either
  (azure-core's retries are off for it, aiohttp's re-send is off for the session).

So a rerun is correct with its journal, without it, from another directory or after ``--restart``. Creates and
imports draw on Key Vault's separate budget (300 per 10 s), paced by a limiter of their own.

Keys cannot be exported, and a version whose current state is disabled hides its value: a key is ``blocked``; an
object whose current version is disabled is ``blocked-disabled`` (copying the older versions would make an older
value current and readable in the target); older disabled versions are not copied and are reported.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kvmigrate.errors import ObjectFailedError, ThrottledError, VaultUnreachableError, WriteUncertainError
from kvmigrate.journal import ItemRecord, Journal
from kvmigrate.models import Action, Listed, ObjectRef, ObjectType
from kvmigrate.options import DEFAULT_CREATE_RPS
from kvmigrate.ratelimit import AdaptiveRateLimiter
from kvmigrate.routes.base import Assessment, Match, TargetUpkeep
from kvmigrate.settings.stage import SettingsEnd
from kvmigrate.vault.adapter import VaultAdapter, VersionInfo
from kvmigrate.vault.values import ValuePayload, VaultValues, VersionValue, created_at, signature

log = logging.getLogger(__name__)
#: Failed write attempts (not 429s) before an object fails; with backoff this rides out about a minute of outage.
WRITE_ATTEMPTS = 10
THROTTLE_PATIENCE = 300.0
_JITTER = random.Random()


@dataclass
class _Settled:
    """What ``assess`` found, handed to ``read`` and ``write``."""

    infos: list[VersionInfo]
    policy: Any = None
    payload: ValuePayload | None = None
    start: int = 0  # source versions already in the target, in order
    target_ids: set[str] = field(default_factory=set)
    adopted: dict[str, str] = field(default_factory=dict)  # source id → target id found by settling


class ValueRoute(TargetUpkeep):
    """Values vault → vault (see the module docstring)."""

    route = "value"
    target: VaultAdapter

    def __init__(
        self,
        source: VaultAdapter,
        source_values: VaultValues,
        target: VaultAdapter,
        target_values: VaultValues,
        *,
        latest_only: bool,
        limiters: dict[str, AdaptiveRateLimiter],
        create_rps: float = DEFAULT_CREATE_RPS,
        settings: tuple[SettingsEnd, SettingsEnd] | None = None,
    ) -> None:
        self.settings = settings
        self.source = source
        self.target = target
        self.source_values = source_values
        self.target_values = target_values
        self.latest_only = latest_only
        self.name = "values"
        self.limiters = limiters
        self.creates = AdaptiveRateLimiter(create_rps)

    def blocked(self, listed: Listed) -> Action | None:
        if listed.ref.type is ObjectType.KEY:
            return Action.BLOCKED_NOT_EXPORTABLE
        if listed.enabled is False:
            return Action.BLOCKED_DISABLED
        return None

    async def assess(
        self, listed: Listed, *, present: bool, row: ItemRecord | None, journal: Journal, thorough: bool
    ) -> Assessment:
        ref = listed.ref
        infos = await self.source.version_infos(ref)
        settled = _Settled(infos)
        current_only = self.latest_only
        hidden = 0 if current_only else sum(1 for info in infos if info.enabled is False)
        assessment = Assessment(Match.ABSENT, self.route, versions=len(infos), hidden_versions=hidden, state=settled)
        if ref.type is ObjectType.CERTIFICATE:
            settled.policy = await self.source_values.policy(ref)
            if not self.source_values.is_exportable(settled.policy):
                assessment.blocked = Action.BLOCKED_NOT_EXPORTABLE
                return assessment
        if not present:
            return assessment
        target_infos = await self.target.version_infos(ref)
        if not target_infos:
            return assessment
        payload = await self._payload(ref, settled)
        await self._settle(ref, payload, target_infos, journal.version_map(ref), assessment)
        return assessment

    async def _payload(self, ref: ObjectRef, settled: _Settled) -> ValuePayload:
        if settled.payload is None:
            settled.payload = await self.source_values.read(ref, settled.infos, latest_only=self.latest_only)
            settled.payload.policy = settled.policy
        return settled.payload

    async def _settle(
        self,
        ref: ObjectRef,
        payload: ValuePayload,
        target_infos: list[VersionInfo],
        mapping: dict[str, str],
        assessment: Assessment,
    ) -> None:
        """Match the target's versions to the source's: a prefix in creation order, or not ours."""
        settled: _Settled = assessment.state
        source = payload.versions
        wanted = [signature(ref.type, version.digest, version) for version in source]
        index_of = {version.version: index for index, version in enumerate(source)}
        by_target = {target_id: source_id for source_id, target_id in mapping.items()}
        used: dict[int, VersionInfo] = {}
        ordered = sorted(target_infos, key=lambda info: (created_at(info), info.version))
        settled.target_ids = {info.version for info in target_infos}
        for info in ordered:
            index = index_of.get(by_target.get(info.version, ""))
            if index is not None and (
                index in used or signature(ref.type, source[index].digest, info) != wanted[index]
            ):
                index = None  # mapped, but its attributes drifted since: compare by content below
            if index is None:
                digest = await self.target_values.digest(ref, info)
                mine = signature(ref.type, digest, info)
                index = next((i for i, sig in enumerate(wanted) if i not in used and sig == mine), None)
            if index is None:
                assessment.match = Match.DIFFERENT
                assessment.detail = f"the target's version {info.version} matches no source version"
                return
            used[index] = info
        count = len(used)
        if set(used) != set(range(count)):
            assessment.match = Match.DIFFERENT
            assessment.detail = "the target lacks older versions the source has"
            return
        previous: tuple[datetime, int] | None = None
        for index in range(count):
            moment = created_at(used[index])
            if previous is not None and moment < previous[0]:
                assessment.match = Match.DIFFERENT
                assessment.detail = "the target holds the source's versions in another order"
                return
            previous = (moment, index)
        settled.start = count
        settled.adopted = {source[i].version: info.version for i, info in used.items()}
        if count < len(source):
            assessment.match = Match.PREFIX
            assessment.detail = f"{count} of {len(source)} versions are in the target"
            return
        current = await self.target_values.current_version(ref)
        if current != used[count - 1].version:
            assessment.match = Match.DIFFERENT
            assessment.detail = "the target's current version is not the source's current version"
            return
        assessment.match = Match.SAME

    async def read(self, listed: Listed, assessment: Assessment) -> ValuePayload:
        return await self._payload(listed.ref, assessment.state)

    async def write(self, listed: Listed, payload: Any, assessment: Assessment, journal: Journal) -> ObjectRef | None:
        ref = listed.ref
        settled: _Settled = assessment.state
        for source_id, target_id in settled.adopted.items():
            journal.map_version(ref, source_id, target_id)
        written = await self.append(ref, payload.versions[settled.start :], payload.policy, settled.target_ids, journal)
        log.debug("%s: %d version(s) written by value", ref, written)
        return None

    async def append(
        self, ref: ObjectRef, versions: list[VersionValue], policy: Any, target_ids: set[str], journal: Journal
    ) -> int:
        """Create ``versions`` in the target, oldest first, each journaled (source id → target id) before the next;
        returns how many were written. ``target_ids``: the target's versions before (not changed here).

        A version the journal maps to one of those is skipped: an earlier attempt of this run wrote it (the engine
        retries a write that got 409 right after a purge). Copy's writes and sync's appends both come through here.
        """
        mapping = journal.version_map(ref)
        known = set(target_ids)
        written = 0
        for version in versions:
            if mapping.get(version.version) in known:
                continue
            target_id = await self.create(ref, version, policy, known)
            known.add(target_id)
            journal.map_version(ref, version.version, target_id)
            written += 1
        return written

    async def create(self, ref: ObjectRef, version: VersionValue, policy: Any, known: set[str]) -> str:
        """One create/import under the create budget; a lost answer is settled by looking, never by re-sending."""
        delay, failures, throttled_wait = 0.5, 0, 0.0
        while True:
            await self.creates.acquire()
            try:
                written = await self.target_values.write(ref, version, policy)
                self.creates.on_response(200)
                return written
            except ThrottledError as throttled:
                self.creates.on_response(429)
                wait = _JITTER.uniform(delay / 2, delay)
                throttled_wait += wait
                if throttled_wait > THROTTLE_PATIENCE:
                    raise throttled
                await asyncio.sleep(wait)
                delay = min(delay * 2, 10.0)
                continue
            except WriteUncertainError as uncertain:
                self.creates.on_response(uncertain.status or 0)
                last = uncertain
                failures += 1
            # The write may have happened: nothing is sent again until the target has been read.
            while True:
                if failures >= WRITE_ATTEMPTS:
                    raise VaultUnreachableError(str(last), vault=self.target.label) if last.status is None else last
                await asyncio.sleep(_JITTER.uniform(delay / 2, delay))
                delay = min(delay * 2, 10.0)
                try:
                    found = await self._find_written(ref, version, known)
                except (VaultUnreachableError, ObjectFailedError):
                    failures += 1
                    continue
                break
            if found is not None:
                log.debug("%s: a write whose answer was lost had happened (version %s)", ref, found)
                return found

    async def _find_written(self, ref: ObjectRef, version: VersionValue, known: set[str]) -> str | None:
        """A target version this run does not know yet that holds ``version``'s content and attributes."""
        wanted = signature(ref.type, version.digest, version)
        infos = await self.target.version_infos(ref)
        for info in sorted(infos, key=lambda i: (created_at(i), i.version)):
            if info.version in known:
                continue
            if signature(ref.type, await self.target_values.digest(ref, info), info) == wanted:
                return info.version
        return None
