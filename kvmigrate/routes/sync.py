"""``kvmigrate sync``: keep a standby converged — the copy route for new objects, plus what follows an object's life.

For an object the target already has, sync pairs the target's versions with the source's — by version id (a blob
copy keeps them), by the journal's version map, then by content digest — and works out the change:

* attributes drifted on a paired version (enabled, not-before, expiry, tags, content type) → updated in place, in
  every mode: a current version disabled at the source is disabled in the target, where a new object with a disabled
  current version is ``blocked-disabled`` by value (the inner route's ``blocked`` applies to new objects only);
* versions the source has and the target lacks, all newer than the paired ones → appended by value, oldest first,
  through the value route's settle-safe writes (so a lost answer or a kill never duplicates one);
* anything else is not ours to fix: a target version the source lacks (someone wrote to the standby) is reported
  ``skip-existing``; a new version the route cannot carry — any in backup mode (a blob restores only a whole new
  object), a new key version in any mode (keys cannot be exported), an older version missing — is ``cannot-follow``;
  a new current version that is disabled is ``blocked-disabled`` (its value is hidden; the target keeps the older).

Finished objects whose source listing is unchanged cost no request (the journal's fingerprint); attribute changes on
older versions do not show in a listing, which ``--deep`` finds by reading every object's version lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kvmigrate.journal import ItemRecord, Journal
from kvmigrate.models import Action, Listed, ObjectRef, ObjectType
from kvmigrate.routes.base import Assessment, Match, Route
from kvmigrate.routes.values import ValueRoute
from kvmigrate.vault.adapter import VaultAdapter, VersionInfo
from kvmigrate.vault.values import EARLIEST, VaultValues, created_at, signature


@dataclass
class Delta:
    """What one existing object needs to follow its source."""

    updates: list[tuple[str, VersionInfo]] = field(default_factory=list)  # target version id, the source's attributes
    appends: list[VersionInfo] = field(default_factory=list)  # source versions, oldest first
    target_ids: set[str] = field(default_factory=set)
    hidden: int = 0  # new versions the source will not show (disabled): not appended

    def describe(self) -> str:
        parts = []
        if self.appends:
            parts.append(f"{len(self.appends)} new version(s) to append")
        if self.updates:
            parts.append(f"attributes of {len(self.updates)} version(s) to update")
        return ", ".join(parts)


def drifted(object_type: ObjectType, mine: VersionInfo, theirs: VersionInfo) -> bool:
    """A paired version's attributes differ: the value route's ``signature`` without the content (pairing settled it),
    so what sync updates and what the value route compares are one list."""
    return signature(object_type, None, mine) != signature(object_type, None, theirs)


class SyncRoute:
    """The copy route for new objects, and updates and appends for the ones the target has (module docstring)."""

    def __init__(
        self,
        inner: Route,
        *,
        source: VaultAdapter,
        target: VaultAdapter,
        source_values: VaultValues,
        target_values: VaultValues,
        appender: ValueRoute | None,
    ) -> None:
        self.inner = inner
        self.name = f"sync by {inner.name}"
        self.source = inner.source
        self.target = inner.target
        self.limiters = inner.limiters
        self.settings = inner.settings
        self._source, self._target = source, target
        self._source_values, self._target_values = source_values, target_values
        self._appender = appender
        self.appended = 0
        self.updated = 0

    def blocked(self, listed: Listed) -> Action | None:
        """Nothing is blocked before the target is compared: the inner route's ``blocked`` says whether a *new* object
        can move (a key, a disabled current version by value), and an object the target has can follow anyway
        (attributes are updated in place, by version id). ``assess`` applies it where the target lacks the object."""
        return None

    async def assess(
        self, listed: Listed, *, present: bool, row: ItemRecord | None, journal: Journal, thorough: bool
    ) -> Assessment:
        route = "value" if self._appender is not None else "blob"
        if not present:
            return await self._new(listed, route, row=row, journal=journal, thorough=thorough)
        ref = listed.ref
        mine, theirs = await self._source.version_infos(ref), await self._target.version_infos(ref)
        if not theirs:
            return await self._new(listed, route, row=row, journal=journal, thorough=thorough)
        assessment = Assessment(Match.SAME, route, versions=len(mine))
        delta = Delta(target_ids={t.version for t in theirs})
        pairs = await self._pair(ref, mine, theirs, journal.version_map(ref), assessment)
        if assessment.match is Match.DIFFERENT:
            return assessment
        newest_paired = max((created_at(s) for s in mine if s.version in pairs), default=EARLIEST)
        if listed.enabled is False and any(
            s.version not in pairs and s.enabled is False and created_at(s) >= newest_paired for s in mine
        ):
            # A new current version, disabled: its value is hidden, and the target's current would stay an older one.
            assessment.blocked = Action.BLOCKED_DISABLED
            return assessment
        for info in sorted(mine, key=lambda i: (created_at(i), i.version)):
            target_id = pairs.get(info.version)
            if target_id is not None:
                target_info = next(t for t in theirs if t.version == target_id)
                if drifted(ref.type, info, target_info):
                    delta.updates.append((target_id, info))
            elif info.enabled is False:
                delta.hidden += 1  # a disabled new version: its value is hidden, so it cannot be appended
            elif created_at(info) < newest_paired:
                assessment.blocked = Action.CANNOT_FOLLOW
                assessment.detail = f"an older version ({info.version}) is missing in the target; it cannot be inserted"
                return assessment
            else:
                delta.appends.append(info)
        if delta.appends and (ref.type is ObjectType.KEY or self._appender is None):
            assessment.blocked = Action.CANNOT_FOLLOW
            assessment.detail = (
                "a new key version cannot follow (keys cannot be exported): delete and purge the key in the target "
                "and sync again, or rotate it there"
                if ref.type is ObjectType.KEY
                else "new versions cannot follow in backup mode (a blob restores only a whole new object): sync "
                "with --mode auto or --mode value appends them (with new version ids)"
            )
            return assessment
        assessment.hidden_versions = delta.hidden
        if delta.appends or delta.updates:
            assessment.match = Match.CHANGED
            assessment.detail = delta.describe()
        assessment.state = delta
        return assessment

    async def _new(
        self, listed: Listed, route: str, *, row: ItemRecord | None, journal: Journal, thorough: bool
    ) -> Assessment:
        """An object the target lacks moves as the inner route moves it, if that route can move it at all."""
        blocked = self.inner.blocked(listed)
        if blocked is not None:
            return Assessment(Match.ABSENT, route, blocked=blocked)
        return await self.inner.assess(listed, present=False, row=row, journal=journal, thorough=thorough)

    async def _pair(
        self,
        ref: ObjectRef,
        mine: list[VersionInfo],
        theirs: list[VersionInfo],
        mapping: dict[str, str],
        assessment: Assessment,
    ) -> dict[str, str]:
        """Source version id → target version id: by id, by the journal's map, then by content digest."""
        target_ids = {t.version for t in theirs}
        pairs = {s.version: s.version for s in mine if s.version in target_ids}
        used = set(pairs.values())
        for info in mine:
            mapped = mapping.get(info.version)
            if info.version not in pairs and mapped in target_ids and mapped not in used:
                pairs[info.version] = mapped
                used.add(mapped)
        lonely = [t for t in theirs if t.version not in used]
        if lonely and ref.type is not ObjectType.KEY:
            unpaired = [s for s in mine if s.version not in pairs and s.enabled is not False]
            digests = {s.version: await self._source_values.digest(ref, s) for s in unpaired}
            for target in sorted(lonely, key=created_at):
                digest = await self._target_values.digest(ref, target)
                match = next((s for s in unpaired if s.version not in pairs and digests[s.version] == digest), None)
                if match is not None and digest is not None:
                    pairs[match.version] = target.version
                    used.add(target.version)
            lonely = [t for t in theirs if t.version not in used]
        if lonely:
            assessment.match = Match.DIFFERENT
            assessment.detail = f"the target has {len(lonely)} version(s) the source does not (written in the target?)"
        return pairs

    async def read(self, listed: Listed, assessment: Assessment) -> Any:
        if not isinstance(assessment.state, Delta):
            return await self.inner.read(listed, assessment)
        ref, delta = listed.ref, assessment.state
        if not delta.appends:
            return None
        payload = await self._source_values.read(ref, delta.appends, latest_only=False)
        if ref.type is ObjectType.CERTIFICATE:
            payload.policy = await self._source_values.policy(ref)
        return payload

    async def write(self, listed: Listed, payload: Any, assessment: Assessment, journal: Journal) -> ObjectRef | None:
        if not isinstance(assessment.state, Delta):
            return await self.inner.write(listed, payload, assessment, journal)
        ref, delta = listed.ref, assessment.state
        for target_id, info in delta.updates:
            await self._target.update_properties(ref, target_id, info)
            self.updated += 1
        if payload is not None and self._appender is not None:
            self.appended += await self._appender.append(
                ref, payload.versions, payload.policy, delta.target_ids, journal
            )
        return None

    async def delete(self, ref: ObjectRef) -> None:
        await self._target.delete(ref)

    def counters(self) -> dict[str, int]:
        return {"appended_versions": self.appended, "updated_attributes": self.updated}

    async def recover(self, ref: ObjectRef) -> None:
        await self.inner.recover(ref)

    async def purge(self, ref: ObjectRef) -> None:
        await self.inner.purge(ref)

    async def prepare(self) -> None:
        await self.inner.prepare()

    def finish(self, *, complete: bool) -> None:
        self.inner.finish(complete=complete)

    def notes(self) -> list[str]:
        return self.inner.notes()
