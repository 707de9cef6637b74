"""What a route is: how an object is read at the source and written at the target, and what it costs to check.

The engine asks the route and never which mode it is in (as rclone's ``operations.Copy`` falls back from server-side
to manual copy without the sync engine knowing). A route answers four questions about one listed object:

* ``blocked`` — can this route move it at all? (no IO: a key by value cannot move)
* ``assess`` — what does the target already hold of it, compared with the source? (absent, the same, the first
  versions of it, or something else)
* ``read`` — the payload to move (a backup blob, or the values of its versions)
* ``write`` — put the payload into the target; settle a lost answer by looking, never by writing blindly again

Ends are what a route reads from and writes to: a vault (``vault/adapter.py``), an archive folder, a folder of
per-object backup files. A new way of moving an object is a new route or end class, never a flag the engine tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from kvmigrate.journal import ItemRecord, Journal
from kvmigrate.models import Action, Listed, ObjectRef, ObjectType
from kvmigrate.ratelimit import AdaptiveRateLimiter
from kvmigrate.settings.stage import SettingsEnd


@dataclass(repr=False)
class Blob:
    """A backup blob in flight (opaque, encrypted by Azure) with what the archive manifest records of it."""

    data: bytes
    versions: tuple[str, ...] = ()
    enabled: bool | None = None
    others: tuple[ObjectType, ...] = ()  # a key-tagged backup file may hold a certificate: types to try next

    def __repr__(self) -> str:  # never the bytes
        return f"Blob({len(self.data)} bytes, {len(self.versions)} versions)"


class Match(StrEnum):
    """What the target holds of one source object, as its route compares them."""

    ABSENT = "absent"
    SAME = "same"  # every source version is there (by id for blobs, by value and attributes for values)
    PREFIX = "prefix"  # by value: the first versions are there, in order (an interrupted run); the rest can follow
    DIFFERENT = "different"  # something else of that name: not ours to overwrite
    CHANGED = "changed"  # sync: ours, and the source moved on (new versions, attributes): it can follow


@dataclass
class Assessment:
    """The route's comparison of one object; ``state`` is route-private (what the write will need)."""

    match: Match
    route: str  # "blob" or "value": which route compared it, and will write it
    versions: int | None = None  # source versions, when they were read (plan shows the count)
    detail: str = ""  # why it differs, or how far an earlier run got
    blocked: Action | None = None  # learnt while comparing (a certificate whose key is not exportable...)
    too_many_versions: bool = False
    hidden_versions: int = 0  # by value: disabled versions the source will not show (not copied)
    state: Any = field(default=None, repr=False)


class SourceEnd(Protocol):
    """Where objects come from: listings, version ids and (for blob routes) backups."""

    label: str

    def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]: ...

    async def versions(self, ref: ObjectRef) -> list[str]: ...


class TargetEnd(Protocol):
    """Where objects go, and what is already there."""

    label: str

    def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]: ...

    def list_deleted(self, object_type: ObjectType) -> AsyncIterator[str]: ...

    async def versions(self, ref: ObjectRef) -> list[str]: ...

    async def delete(self, ref: ObjectRef) -> None: ...

    async def recover_deleted(self, ref: ObjectRef) -> None: ...

    async def purge_deleted(self, ref: ObjectRef) -> None: ...


class Route(Protocol):
    """One run's way of moving objects from its source end to its target end (see the module docstring)."""

    name: str
    limiters: dict[str, AdaptiveRateLimiter]
    #: The settings ends (source, target) of this run, or None where there are none (in-memory test ends).
    settings: tuple[SettingsEnd, SettingsEnd] | None

    @property
    def source(self) -> SourceEnd: ...

    @property
    def target(self) -> TargetEnd: ...

    def blocked(self, listed: Listed) -> Action | None: ...

    async def assess(
        self, listed: Listed, *, present: bool, row: ItemRecord | None, journal: Journal, thorough: bool
    ) -> Assessment:
        """Compare the target with the source; ``present``: the target listed the name (or a write was in flight).

        ``thorough`` (plan and dry run) also reads what only the prediction needs, such as version counts.
        """
        ...

    async def read(self, listed: Listed, assessment: Assessment) -> Any: ...

    async def write(self, listed: Listed, payload: Any, assessment: Assessment, journal: Journal) -> ObjectRef | None:
        """Put ``payload`` into the target; returns the object's real identity when the target named another
        (a backup file's presumed name or type), else None."""
        ...

    async def delete(self, ref: ObjectRef) -> None:
        """Soft-delete an object in the target (sync --delete; never a purge)."""
        ...

    def counters(self) -> dict[str, int]:
        """The route's own counts for the summary (sync: appended versions, updated attributes)."""
        ...

    async def recover(self, ref: ObjectRef) -> None: ...

    async def purge(self, ref: ObjectRef) -> None: ...

    async def prepare(self) -> None:
        """Create what the target end needs before the first write (an archive folder); after every check."""
        ...

    def finish(self, *, complete: bool) -> None:
        """Close the target end's own records (an archive's manifest); ``complete``: nothing failed or stopped."""
        ...

    def notes(self) -> list[str]:
        """What the route learnt that the summary should say (auto mode switching to values...)."""
        ...


class UpkeptTarget(Protocol):
    async def delete(self, ref: ObjectRef) -> None: ...

    async def recover_deleted(self, ref: ObjectRef) -> None: ...

    async def purge_deleted(self, ref: ObjectRef) -> None: ...


class TargetUpkeep:
    """What a route does to its target besides moving objects (sync's deletions, recovery, purge), with the defaults
    of a route that keeps no records of its own; the routes that wrap another one delegate instead."""

    target: UpkeptTarget

    async def delete(self, ref: ObjectRef) -> None:
        await self.target.delete(ref)

    async def recover(self, ref: ObjectRef) -> None:
        await self.target.recover_deleted(ref)

    async def purge(self, ref: ObjectRef) -> None:
        await self.target.purge_deleted(ref)

    def counters(self) -> dict[str, int]:
        return {}

    async def prepare(self) -> None:
        return None

    def finish(self, *, complete: bool) -> None:
        return None

    def notes(self) -> list[str]:
        return []
